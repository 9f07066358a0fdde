"""The user's own code as part of a run's identity: a hash of the source file of every ``_target_``
class that is neither latentexp's nor an installed library's (a loss, model, optimizer or dataset
of the user's), so that editing it trains anew instead of returning the old result. Installed
libraries are named by the versions result.json records instead."""

from __future__ import annotations

import functools
import hashlib
import inspect
import site
import sys
import sysconfig
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent


@functools.cache
def _library_roots() -> tuple[Path, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= set(site.getsitepackages()) | {site.getusersitepackages(), sys.base_prefix, sys.prefix}
    return tuple(Path(p).resolve() for p in paths if p)


def _is_users(path: Path) -> bool:
    return not (path.is_relative_to(PACKAGE) or any(path.is_relative_to(r) for r in _library_roots()))


def source_file(target: str) -> Path | None:
    """The file that defines the class ``target`` names, when it is the user's code; else None."""
    from hydra.utils import get_class

    try:
        cls = get_class(target)
        path = Path(inspect.getfile(cls)).resolve()
    except (TypeError, OSError, ImportError, ValueError):
        return None  # a built-in or C class: a library's
    return path if path.is_file() and _is_users(path) else None


def user_code(config: dict[str, Any]) -> dict[str, str]:
    """``{group: "sha256:…"}`` of the source file of each group's ``_target_`` that is user code."""
    code = {}
    for group, node in config.items():
        if isinstance(node, dict) and isinstance(node.get("_target_"), str):
            path = source_file(node["_target_"])
            if path is not None:
                code[group] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    return code
