#!/usr/bin/env python3
"""How hard each term of Eq. 11 pushed the latent, per loss, λ and phase of the α/β schedule: the
mean over epochs and seeds of history.csv's grad_aux_norm, grad_ce_norm and grad_cosine
(train/diagnostics.py), as a Markdown table.

    python scripts/gradient_norms.py outputs

Phase "β > 0" holds the epochs whose β (Latent Boost's schedule) is positive, and every epoch of
a loss without a schedule; "β = 0" the epochs after β reached 0 (from 20 % of max_epochs on).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentexp.report.collect import collect_runs  # noqa: E402
from latentexp.runs.rundir import RunDir  # noqa: E402

COLUMNS = ["grad_aux_norm", "grad_ce_norm", "grad_cosine"]


def gradient_norms(paths: list[str]) -> pd.DataFrame:
    """One row per loss label × λ × phase: the mean of each gradient column and the epochs and
    seeds behind it."""
    runs = collect_runs(paths)
    frames = []
    for _, run in runs[runs["status"] == "finished"].iterrows():
        history = RunDir(run["run_dir"]).history
        if not history.exists():
            continue
        epochs = pd.read_csv(history)
        if not set(COLUMNS) <= set(epochs.columns):
            continue
        beta = epochs["beta"] if "beta" in epochs else pd.Series(1.0, index=epochs.index)
        epochs = epochs.assign(phase=["β = 0" if b == 0 else "β > 0" for b in beta],
                               loss_label=run["loss_label"], lam=run["lambda"], seed=run["seed"])
        frames.append(epochs)
    if not frames:
        raise SystemExit(f"no finished run with gradient diagnostics under {', '.join(paths)}")
    table = pd.concat(frames).groupby(["loss_label", "lam", "phase"], sort=True)
    out = table[COLUMNS].mean()
    out["epochs"] = table.size()
    out["seeds"] = table["seed"].nunique()
    out["aux / ce"] = out["grad_aux_norm"] / out["grad_ce_norm"]
    return out.reset_index()


def to_markdown(frame: pd.DataFrame) -> str:
    lines = ["| loss | λ | phase | ‖∂(λ·L_aux)/∂z‖ | ‖∂((1−λ)·L_CE)/∂z‖ | aux / ce | cosine | epochs "
             "| seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        lines.append(f"| {r['loss_label']} | {r['lam']:g} | {r['phase']} | {r['grad_aux_norm']:.3g} | "
                     f"{r['grad_ce_norm']:.3g} | {r['aux / ce']:.3g} | {r['grad_cosine']:+.3f} | "
                     f"{r['epochs']} | {r['seeds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="output roots or run directories")
    print(to_markdown(gradient_norms(parser.parse_args(argv).paths)))


if __name__ == "__main__":
    main()
