"""The structure the README's "Architecture" section promises: no import cycle in the package,
light commands that stay light, one module per concern, an epoch that fits on a screen."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

from support.helpers import REPO_ROOT

from latentexp.train.trainer import Trainer

PACKAGE = REPO_ROOT / "latentexp"


def module_name(path: Path, root: Path = REPO_ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, name: str, is_package: bool, modules: set[str]) -> list[str]:
    """The modules one import statement names (`from a.b import c` means a.b.c where that is a
    module, else a.b; a relative import is resolved against the importing module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = name.split(".") if is_package else name.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules that importing it executes: every module it imports anywhere
    in its file (lazy imports included) and, as Python runs them first, every package `__init__`
    on the way to each (importing a.b.c runs a/__init__.py and a/b/__init__.py)."""
    root = package.parent
    files = {module_name(p, root): p for p in package.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            for target in _imported(node, name, is_package, modules):
                parts = target.split(".")
                executed = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
                graph[name] |= {m for m in executed if m in modules and m != name
                                and not name.startswith(m + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "pkg"


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    # checks imports the settings module lazily; importing pkg.train.settings runs
    # pkg/train/__init__.py first, which imports the runner, which imports checks
    package = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/checks.py": "def check():\n    from pkg.train.settings import Settings\n",
        "pkg/train/__init__.py": "from pkg.train.runner import run\n",
        "pkg/train/runner.py": "from pkg import checks\n",
        "pkg/train/settings.py": "Settings = dict\n",
    })
    assert find_cycle(import_graph(package)) == ["pkg.checks", "pkg.train", "pkg.train.runner",
                                                 "pkg.checks"]
    # the same package without the __init__ import has no cycle
    (package / "train" / "__init__.py").write_text("")
    assert find_cycle(import_graph(package)) is None


def test_relative_imports_count_as_imports(tmp_path):
    package = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/b.py": "from .sub.c import f\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "from ..a import g\n",
    })
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]


def test_status_needs_no_torch_and_report_no_training_stack():
    code = ("import sys, latentexp.status, latentexp.rundir, latentexp.runlock\n"
            "assert 'torch' not in sys.modules, 'status imported torch'\n"
            "import latentexp.report\n"
            "trained = [m for m in sys.modules if m.startswith('latentexp.train')]\n"
            "assert not trained, f'report imported {trained}'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr


def test_run_directory_file_names_are_spelled_only_in_rundir():
    names = ('"result.json"', '"spec.json"', '"history.csv"', '"checkpoint.pt"', '"test_latents.npz"',
             '"analysis.json"', '"tsne.npz"', '"run.lock"', '"config.yaml"')
    spelled = {(p.relative_to(REPO_ROOT).as_posix(), n) for p in PACKAGE.rglob("*.py") for n in names
               if n in p.read_text()}
    assert {path for path, _ in spelled} <= {"latentexp/rundir.py", "latentexp/config_tree.py"}, spelled


def test_fit_with_one_epoch_fits_on_one_screen():
    lines = inspect.getsource(Trainer.fit).splitlines()
    assert len(lines) <= 60, len(lines)
