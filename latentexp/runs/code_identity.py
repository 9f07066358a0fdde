"""The user's own code as part of a run's identity, so that editing it trains anew instead of
returning the old result. For every ``_target_`` class that is neither latentexp's nor an installed
library's (a loss, model, optimizer or dataset of the user's), the identity holds one hash of the
source files of the user's modules that class runs: the module defining it and, transitively,
every module of the user's that a covered module holds at module level (``import helpers``,
``from helpers import scale``, ``from .layers import Block``, and the packages around them).
Code imported inside a function at call time, data files the code reads, and compiled
extensions are not covered. Installed libraries are named by the versions result.json records."""

from __future__ import annotations

import functools
import hashlib
import site
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent  # latentexp/


@functools.cache
def _library_roots() -> tuple[Path, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= set(site.getsitepackages()) | {site.getusersitepackages(), sys.base_prefix, sys.prefix}
    return tuple(Path(p).resolve() for p in paths if p)


def _is_users(path: Path) -> bool:
    return not (path.is_relative_to(PACKAGE) or any(path.is_relative_to(r) for r in _library_roots()))


def _user_file(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or not file.endswith(".py"):
        return None
    path = Path(file).resolve()
    return path if path.is_file() and _is_users(path) else None


def _held_modules(module: ModuleType) -> set[str]:
    """Names of the modules a module holds at module level: imported modules, and the modules
    that define the classes, functions and objects it imported or made."""
    names = set()
    for value in list(vars(module).values()):
        if isinstance(value, ModuleType):
            names.add(value.__name__)
            continue
        try:
            defined_in = getattr(value, "__module__", None)
        except Exception:  # an object whose attribute lookup fails: it names no module
            continue
        if isinstance(defined_in, str):
            names.add(defined_in)
    parent = module.__name__.rpartition(".")[0]
    if parent:
        names.add(parent)  # a package's __init__ runs before its submodules
    return names


def user_modules(cls: type) -> dict[str, Path]:
    """The user's modules that ``cls`` runs (see the module's docstring), by module name."""
    found: dict[str, Path] = {}
    pending = [cls.__module__]
    while pending:
        name = pending.pop()
        module = sys.modules.get(name)
        if name in found or module is None:
            continue
        path = _user_file(module)
        if path is None:  # a library's or latentexp's: its code is named by its version
            continue
        found[name] = path
        pending += sorted(_held_modules(module) - set(found))
    return found


def _class(target: str) -> type | None:
    from hydra.utils import get_class

    try:
        return get_class(target)
    except (ImportError, ValueError, TypeError):
        return None


def user_code(config: dict[str, Any]) -> dict[str, str]:
    """``{group: "sha256:…"}`` of each group's ``_target_`` that is user code: one hash of the
    user's modules it runs (their names and contents)."""
    code = {}
    for group, node in config.items():
        if isinstance(node, dict) and isinstance(node.get("_target_"), str):
            cls = _class(node["_target_"])
            modules = user_modules(cls) if cls is not None else {}
            if not modules:  # latentexp's or a library's class: named by the versions instead
                continue
            digest = hashlib.sha256()
            for name, path in sorted(modules.items()):
                digest.update(f"{name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
            code[group] = "sha256:" + digest.hexdigest()[:20]
    return code
