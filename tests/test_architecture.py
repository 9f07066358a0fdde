"""The structure docs/architecture.md promises: layers that import only downwards, a core without
Hydra or OmegaConf, no import cycle in the package, light commands that stay light, one module per
concern, an epoch that fits on a screen."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import NOTHING_ABOVE_THE_CORE, REPO_ROOT

from latentexp.train.trainer import Trainer

PACKAGE = REPO_ROOT / "latentexp"


def module_name(path: Path, root: Path = REPO_ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


IMPORT_CALLS = ("import_module", "__import__")  # importlib.import_module("a.b"), __import__("a.b")


def _imported(node: ast.AST, name: str, is_package: bool, modules: set[str]) -> list[str]:
    """The modules one import statement names (`from a.b import c` means a.b.c where that is a
    module, else a.b; a relative import is resolved against the importing module), or one call of
    importlib's with a constant name."""
    if isinstance(node, ast.Call):
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        first = node.args[0] if node.args else None
        named = isinstance(first, ast.Constant) and isinstance(first.value, str)
        return [first.value] if func in IMPORT_CALLS and named else []
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
            if _names_from_the_root(node, package.name, modules) and name != package.name:
                graph[name].add(package.name)  # its lazy API (load_runs) runs the report layer
    return graph


def _names_from_the_root(node: ast.AST, root: str, modules: set[str]) -> bool:
    """`from latentexp import load_runs`: a name of the package's own API, not a submodule and not
    its version (the root's __getattr__ imports what the name lives in)."""
    return isinstance(node, ast.ImportFrom) and node.module == root and not node.level and any(
        f"{root}.{alias.name}" not in modules and alias.name != "__version__" for alias in node.names)


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
    code = ("import sys, latentexp.runs.status, latentexp.runs.rundir, latentexp.runs.runlock\n"
            "assert 'torch' not in sys.modules, 'status imported torch'\n"
            "import latentexp.config.trainer_schema\n"  # every composition: `train --help` too
            "assert 'torch' not in sys.modules, 'the trainer schema imported torch'\n"
            "import latentexp.report.command, latentexp.report.results\n"
            "trained = [m for m in sys.modules if m.startswith(('latentexp.train', 'latentexp.launch'))\n"
            "           and m not in ('latentexp.train', 'latentexp.train.settings')]\n"
            "assert not trained, f'report imported {trained}'\n")
    run_fresh(code)


def run_fresh(code: str) -> None:
    """Run ``code`` in a fresh interpreter (nothing imported yet); its assertions must hold."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr


def test_run_directory_file_names_are_spelled_only_in_rundir():
    names = ('"result.json"', '"spec.json"', '"history.csv"', '"checkpoint.pt"', '"test_latents.npz"',
             '"analysis.json"', '"tsne.npz"', '"run.lock"', '"config.yaml"')
    spelled = {(p.relative_to(REPO_ROOT).as_posix(), n) for p in PACKAGE.rglob("*.py") for n in names
               if n in p.read_text()}
    assert {path for path, _ in spelled} <= {"latentexp/runs/rundir.py", "latentexp/config/tree.py"}, spelled


def test_fit_with_one_epoch_fits_on_one_screen():
    lines = inspect.getsource(Trainer.fit).splitlines()
    assert len(lines) <= 60, len(lines)


# The layers, lowest first: a module may import its own layer and those below it, never one above.
# The core (data, models, losses, metrics, train) takes plain values and objects: no Hydra, no
# OmegaConf, no conf/, no run directories (docs/architecture.md).
LAYERS = (
    ("base", ("errors", "io", "tensor_files", "printable", "progress", "runtime", "arguments")),
    ("core", ("data", "models", "losses", "metrics")),
    ("training", ("train",)),  # the trainer, over the core's pieces
    ("config", ("config",)),
    ("runs", ("runs",)),
    ("report", ("report",)),
    ("launch", ("launch",)),
    ("bench", ("bench",)),
    ("entry", ("__main__", "cli")),
)
CORE_FORBIDS = ("hydra", "omegaconf", "yaml")  # third-party packages the core never imports


def layer_of(module: str, package: str = "latentexp") -> int:
    """The index of a module's layer in LAYERS (the package's own __init__ is the entry)."""
    if module == package:
        return len(LAYERS) - 1
    top = module.split(".")[1]
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"{module} is in no layer: add {top!r} to LAYERS (and to docs/architecture.md)")


def upward_imports(graph: dict[str, set[str]], package: str = "latentexp") -> list[str]:
    for module in graph:
        layer_of(module, package)  # every module has its layer
    return sorted(f"{a} ({LAYERS[layer_of(a, package)][0]}) imports {b} ({LAYERS[layer_of(b, package)][0]})"
                  for a, targets in graph.items() for b in targets
                  if layer_of(b, package) > layer_of(a, package))


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of every package a file imports, lazy imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def core_files(package: Path = PACKAGE) -> list[Path]:
    core = {index for index, (name, _) in enumerate(LAYERS) if name in ("base", "core", "training")}
    return [p for p in package.rglob("*.py")
            if layer_of(module_name(p, package.parent), package.name) in core]


def test_every_module_imports_only_its_layer_and_those_below():
    assert upward_imports(import_graph()) == []


def test_the_core_imports_no_hydra_omegaconf_or_yaml():
    found = {p.relative_to(REPO_ROOT).as_posix(): sorted(third_party_imports(p) & set(CORE_FORBIDS))
             for p in core_files()}
    assert {path: names for path, names in found.items() if names} == {}


def test_the_core_runs_without_the_config_layer():
    # what a researcher's own script imports: the trainer, the losses, the backbones, the data
    run_fresh("import latentexp.train, latentexp.losses.latent_boost, latentexp.models.cnn, "
              "latentexp.data.tensors, latentexp.metrics\n" + NOTHING_ABOVE_THE_CORE)


def test_the_layer_rules_catch_a_planted_breach(tmp_path):
    # a loss that looks its options up in conf/ (the config layer, above the core) and a trainer
    # that imports OmegaConf: both are reported
    package = _write_package(tmp_path, {
        "latentexp/__init__.py": "",
        "latentexp/errors.py": "",
        "latentexp/losses/__init__.py": "",
        "latentexp/losses/mine.py": "def names():\n    from latentexp.config.tree import config_groups\n",
        "latentexp/train/__init__.py": "",
        "latentexp/train/trainer.py": "from omegaconf import OmegaConf\nfrom latentexp import errors\n",
        "latentexp/data/__init__.py": "from latentexp.train import trainer\n",  # data under the trainer
        "latentexp/config/__init__.py": "",
        "latentexp/config/tree.py": "from latentexp.losses import mine\n",
        # the root's lazy API, and an import by name at run time: both count
        "latentexp/metrics/__init__.py": "from latentexp import load_runs\n",
        "latentexp/models/__init__.py": ("import importlib\n"
                                         "importlib.import_module('latentexp.config.tree')\n"),
    }).parent / "latentexp"
    assert upward_imports(import_graph(package)) == [
        "latentexp.data (core) imports latentexp.train (training)",
        "latentexp.data (core) imports latentexp.train.trainer (training)",
        "latentexp.losses.mine (core) imports latentexp.config (config)",
        "latentexp.losses.mine (core) imports latentexp.config.tree (config)",
        "latentexp.metrics (core) imports latentexp (entry)",
        "latentexp.models (core) imports latentexp.config (config)",
        "latentexp.models (core) imports latentexp.config.tree (config)"]
    assert {p.name: sorted(third_party_imports(p) & set(CORE_FORBIDS)) for p in core_files(package)
            if third_party_imports(p) & set(CORE_FORBIDS)} == {"trainer.py": ["omegaconf"]}
    # and a module no layer holds is named, not passed over
    (package / "utilities.py").write_text("")
    with pytest.raises(AssertionError, match="latentexp.utilities is in no layer"):
        upward_imports(import_graph(package))
