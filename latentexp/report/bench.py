"""The report benchmark: how long `latentexp report` takes over many finished runs.

It writes N synthetic runs into a temporary directory, in the format `latentexp train` leaves
(spec.json, result.json with the spec, history.csv; a run copied without its latents and
checkpoint, as committed results are), then times the `latentexp report` command over them in a
fresh process, and prints its wall time and peak memory per N. The runs form one Fashion-MNIST
CNN setup, the report's worst case (every run is compared with every other of its setup when the
labels are made): the baseline, four auxiliary losses and Latent Boost over the paper's λ grid,
three Latent Boost variants (an ablation) at λ = 0.75, and as many seeds as N needs; one run in
fifty failed. Metrics are drawn from a seeded generator, so a size always writes the same runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import count, islice
from pathlib import Path

from latentexp.config.tree import compose
from latentexp.runs.spec import RunSpec, plain_config

LAMBDAS = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9)
SWEPT_LOSSES = ("contrastive", "triplet", "npair", "magnet", "latent_boost")
# Latent Boost with one of its changes removed: the loss parameters of conf/ablation/.
VARIANTS = ({"pca": False}, {"schedule": False}, {"per_class_variance": False})
EPOCHS = 40
FAILED_EVERY = 50


@dataclass(frozen=True)
class Cell:
    loss: str
    lam: float
    loss_params: tuple[tuple[str, object], ...] = ()


def cells() -> list[Cell]:
    """One seed's runs: the baseline, each swept loss at each λ, the variants at λ = 0.75."""
    return [Cell("ce", 0.0), *(Cell(loss, lam) for loss in SWEPT_LOSSES for lam in LAMBDAS),
            *(Cell("latent_boost", 0.75, tuple(v.items())) for v in VARIANTS)]


def write_runs(root: Path, n: int) -> None:
    """N runs under ``root``/runs: seed 0's cells, then seed 1's, and so on."""
    bases = {loss: plain_config(compose(["experiment=paper_fashion_mnist", f"loss={loss}", "lambda=0.5"]))
             for loss in ("ce", *SWEPT_LOSSES)}
    every = ((seed, cell) for seed in count() for cell in cells())
    for index, (seed, cell) in enumerate(islice(every, n)):
        config = json.loads(json.dumps(bases[cell.loss]))
        config.update({"lambda": cell.lam, "seed": seed, "output_root": str(root)})
        config["loss"].update(dict(cell.loss_params))
        spec = RunSpec.from_config(config, resolve_data=False)
        _write_run(spec, random.Random(index), failed=index % FAILED_EVERY == FAILED_EVERY - 1)


def _write_run(spec: RunSpec, draw: random.Random, failed: bool) -> None:
    """The files of one run, as run.py writes them (plain writes: the benchmark needs no fsync)."""
    files = spec.files
    files.path.mkdir(parents=True, exist_ok=True)
    files.spec_file.write_text(json.dumps(spec.to_json(), indent=2, sort_keys=True))
    epochs = draw.randint(25, EPOCHS) if not failed else draw.randint(1, 5)
    history = _history(spec, draw, epochs)
    files.history.write_text(history)
    data = {"source": "synthetic", "shape": [1, 28, 28], "num_classes": 10,
            "class_names": [f"class {i}" for i in range(10)], "mean": [0.286], "std": [0.353]}
    base = {"spec": spec.to_json(), "device": "cpu (x86_64, 1 threads)", "precision": "fp32", "threads": 1,
            "versions": {"latentexp": "0.2.0", "latentexp_revision": "0" * 40},
            "data_source": "synthetic", "data": data}
    if failed:
        result = {**base, "status": "failed", "reason": "the training loss became nan", "epochs_run": epochs,
                  "finished_at": "2026-01-01T00:00:00+00:00"}
    else:
        accuracy = draw.uniform(88.0, 93.0)
        result = {**base, "status": "finished", "test_accuracy": accuracy, "test_micro_f1": accuracy / 100,
                  "test_macro_f1": accuracy / 100 - 0.001, "val_accuracy_best": draw.uniform(88.0, 94.0),
                  "best_epoch": epochs - 20 if epochs > 20 else epochs, "epochs_run": epochs,
                  "stopped_early": epochs < EPOCHS, "epoch_seconds_mean": 20.0,
                  "train_seconds": 20.0 * epochs,
                  "test_eval_seconds": 5.0, "silhouette_test": draw.uniform(0.1, 0.4), "pca_components": [],
                  "num_train": 54000, "num_val": 6000, "num_test": 10000, "wall_seconds_this_session": 1.0,
                  "finished_at": "2026-01-01T00:00:00+00:00"}
    files.result_file.write_text(json.dumps(result, indent=2, sort_keys=True))


def _history(spec: RunSpec, draw: random.Random, epochs: int) -> str:
    """history.csv's columns as the trainer writes them; Latent Boost's PCA components too."""
    columns = ["epoch", "lr", "train_loss", "train_ce", "train_dist", "train_accuracy", "grad_aux_norm",
               "grad_ce_norm", "grad_cosine", "val_accuracy", "seconds"]
    pca = spec.loss == "latent_boost"
    lines = [",".join(columns + (["pca_components"] if pca else []))]
    for epoch in range(1, epochs + 1):
        loss = 1.0 / epoch + draw.uniform(0.0, 0.05)
        row = [epoch, 0.001, loss, loss * 0.9, loss * 0.1, 100 - 20 / epoch, draw.uniform(1e-4, 1e-2),
               draw.uniform(1e-4, 1e-2), draw.uniform(-1, 1), 93 - 10 / epoch, 20.0]
        lines.append(",".join(map(str, row + ([draw.randint(5, 40)] if pca else []))))
    return "\n".join(lines) + "\n"


def time_report(root: Path, with_figures: bool, checkout: Path | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident MB of `latentexp report` over ``root`` in a
    fresh process (of ``checkout``'s latentexp where given)."""
    command = [sys.executable, "-m", "latentexp", "report", str(root), "--out", str(root / "report")]
    if not with_figures:
        command.append("--no-figures")
    env = {**os.environ, **({"PYTHONPATH": str(checkout)} if checkout else {})}
    started = time.perf_counter()
    with open(root / "report.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"`{' '.join(command)}` failed:\n{(root / 'report.log').read_text()[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # kilobytes on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="scripts/bench_report.py",
        description="Wall time, CPU time and peak memory of `latentexp report` over N synthetic "
                    "finished runs.")
    parser.add_argument("--runs", default="500,2000", help="comma list of run counts (default 500,2000)")
    parser.add_argument("--no-figures", action="store_true",
                        help="time the tables only (report --no-figures)")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="write the runs under DIR/<N> and keep them (default: a temporary directory)")
    parser.add_argument("--checkout", metavar="DIR", type=Path, default=None,
                        help="time the report of another checkout of latentexp (e.g. a `git worktree` of "
                             "an older commit) over the same runs")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.runs.split(",") if n.strip()]
    print(f"{'runs':>6}  {'write s':>8}  {'report s':>9}  {'CPU s':>7}  {'peak MB':>8}")
    with tempfile.TemporaryDirectory(prefix="latentexp-report-bench-") as scratch:
        for n in sizes:
            root = Path(args.keep or scratch) / str(n)
            started = time.perf_counter()
            write_runs(root, n)
            written = time.perf_counter() - started
            seconds, cpu, peak = time_report(root, not args.no_figures, args.checkout)
            print(f"{n:>6}  {written:>8.1f}  {seconds:>9.1f}  {cpu:>7.1f}  {peak:>8.0f}", flush=True)
