"""File names built from what runs recorded (their dataset and model names, their setup).

Those names come from files on disk, possibly from a shared tree, so each becomes one safe part
of a file name (no path separator, no '..', no control character, bounded length), and different
names always give different parts (no figure overwrites another's).
"""

from __future__ import annotations

import hashlib
import string

# Kept as they are; every other character is percent-encoded (its UTF-8 bytes as %XX).
KEPT = frozenset(string.ascii_letters + string.digits + "_.")
MAX_PART = 60  # characters of one encoded part: a figure name stays far below 255 bytes
SHORTENED = "+"  # marks a shortened part; any '+' of the data itself is encoded (%2B)
DIGEST = 12  # hex digits of the whole name that a shortened part ends with
SETUP_TAG = 6  # hex digits naming a setup (its differing settings) in file names and tables


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # JSON may hold lone surrogates: keep them distinct


def _encoded(char: str) -> str:
    return char if char in KEPT else "".join(f"%{byte:02X}" for byte in _utf8(char))


def file_part(text: str) -> str:
    """``text`` as one part of a file name: letters, digits, '_' and '.' kept, anything else
    percent-encoded ('/' is %2F, '-' is %2D: '-' joins the parts), and so is a '.' that comes
    first or after another '.'. One-to-one, since ``urllib.parse.unquote`` reads it back. A part
    longer than MAX_PART is cut and ends with '+' and a digest of the whole text."""
    # A '.' first or after another '.' is encoded too: never a hidden file, never '..' anywhere.
    encoded = "".join("%2E" if char == "." and (i == 0 or text[i - 1] == ".") else _encoded(char)
                      for i, char in enumerate(text))
    if len(encoded) <= MAX_PART:
        return encoded
    cut = encoded[:MAX_PART - DIGEST - 1]
    if "%" in cut[-2:]:  # never half an escape
        cut = cut[:cut.rindex("%")]
    return f"{cut}{SHORTENED}{hashlib.sha256(_utf8(text)).hexdigest()[:DIGEST]}"


def setup_tag(cell) -> str:
    """A short digest of the settings that tell this setup apart from the other runs of its
    dataset and model ('' where none do): the report lists each tag with its settings."""
    if not cell["setup"]:
        return ""
    return hashlib.sha256(cell["setup"].encode()).hexdigest()[:SETUP_TAG]


def setup_key(cell) -> str:
    """``<dataset>-<model>[-<setup tag>]``, each name a file_part: safe in a file name, and two
    setups give one key only where their tags (digests of their settings) coincide."""
    key = f"{file_part(str(cell['dataset']))}-{file_part(str(cell['model']))}"
    tag = setup_tag(cell)
    return f"{key}-{tag}" if tag else key
