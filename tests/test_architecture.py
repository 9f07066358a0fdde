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


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the latentexp modules it imports anywhere in its file (lazy imports included)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from a.b import c` needs the module a.b.c where there is one, else a.b itself
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                           else node.module for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
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
