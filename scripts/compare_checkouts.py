#!/usr/bin/env python3
"""Train the same small configurations with another checkout of latentexp and with this one, and
compare their metrics exactly: a refactor must not change a number.

    git worktree add /tmp/before <commit>
    python scripts/compare_checkouts.py /tmp/before

Each configuration runs through the console script (`python -m latentexp train`), so any two
versions compare whatever their internal APIs. Exits 1 when a metric differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

THIS = Path(__file__).resolve().parents[1]
CONFIGS = [
    ["loss=latent_boost", "lambda=0.75"],
    ["loss=magnet", "lambda=0"],
    ["loss=lmdl", "lambda=0.5"],
    ["experiment=corel_fashion_mnist_cnn"],
    ["loss=arcface"],
    ["loss=center", "lambda=0.5"],
    ["loss=triplet", "lambda=0.5", "trainer.sampler=m_per_class", "trainer.batch_size=40",
     "trainer.m_per_class=4"],
    ["loss=lace", "optimizer=sgd", "lr_scheduler=multistep", "lr_scheduler.milestones=[1]"],
    ["loss=magnet", "lambda=0.5", "lr_scheduler=constant", "dataset.augment=true"],
]
METRICS = ("test_accuracy", "val_accuracy_best", "best_epoch", "silhouette_test", "pca_components")


def train(checkout: Path, config: list[str], common: list[str], root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "latentexp", "train", *common, *config, f"output_root={root}"]
    root.parent.mkdir(parents=True)
    out = subprocess.run(command, env=env, cwd=root.parent, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{checkout}: `latentexp train {' '.join(config)}` failed:\n{out.stderr[-2000:]}")
    (result,) = root.glob("runs/*/result.json")
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout (holding latentexp/ and conf/)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=1500)
    args = parser.parse_args()
    common = [f"trainer.max_epochs={args.epochs}", f"dataset.limit_train={args.limit_train}", "device=cpu",
              "dataset.limit_test=500", "trainer.batch_size=64"]
    differ = 0
    with tempfile.TemporaryDirectory() as scratch:
        for index, config in enumerate(CONFIGS):
            a = train(args.other.resolve(), config, common, Path(scratch) / f"other{index}" / "outputs")
            b = train(THIS, config, common, Path(scratch) / f"this{index}" / "outputs")
            changed = [k for k in METRICS if a.get(k) != b.get(k)]
            differ += bool(changed)
            print(f"{'DIFFERS in ' + ', '.join(changed) if changed else 'identical':28s} {' '.join(config)}")
    print(f"{len(CONFIGS) - differ} of {len(CONFIGS)} configurations identical ({', '.join(METRICS)}; "
          f"{args.epochs} epochs on {args.limit_train} Fashion-MNIST images, CPU)")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
