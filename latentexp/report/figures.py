"""The report's figures, each saved as PNG and PDF. Figures are built with matplotlib's object API
(``Figure``), which needs no display and no global backend switch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from latentexp.analysis import tsne_of
from latentexp.errors import DataError
from latentexp.losses.latent_boost import alpha_beta_schedule
from latentexp.report import published
from latentexp.report.cells import cell_runs
from latentexp.report.roles import BASELINE, PROPOSED, TSNE_COLUMNS, loss_title
from latentexp.report.tables import (
    by_setup,
    lambda_text,
    loss_name,
    ordered,
    setup_key,
    setup_title,
)
from latentexp.results import load_history
from latentexp.rundir import RunDir

log = logging.getLogger("latentexp")


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """PNG and PDF, each written atomically (a killed report leaves the previous figure whole)
    and without a creation date (the same runs draw the same bytes)."""
    import io

    from latentexp.io import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for path, options in ((paths[0], {"dpi": 150}), (paths[1], {"metadata": {"CreationDate": None}})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=path.suffix[1:], bbox_inches="tight", **options)
        atomic_write(path, lambda f, drawn=buffer: f.write(drawn.getvalue()), mode="wb")
    return paths


def accuracy_vs_lambda(cells: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Test accuracy against λ per loss, mean ± std band; the baseline as a horizontal band."""
    written = []
    for first, group in by_setup(cells[cells["n"] > 0]):
        swept = group[(group["loss"] != BASELINE) & group["lambda"].notna()]
        if swept.empty:
            continue
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.subplots()
        baseline = group[group["loss"] == BASELINE]
        if not baseline.empty:
            cell = baseline.iloc[0]
            mean, std = cell["test_accuracy_mean"], np.nan_to_num(cell["test_accuracy_std"])
            ax.axhline(mean, color="black", lw=1, label="Baseline (λ = 0)")
            ax.axhspan(mean - std, mean + std, color="black", alpha=0.1)
        for index, (label, curve) in enumerate(swept.groupby("loss_label", sort=False)):
            curve = curve.sort_values("lambda")
            color = f"C{index % 10}"
            lam, mean = curve["lambda"].to_numpy(float), curve["test_accuracy_mean"].to_numpy(float)
            std = np.nan_to_num(curve["test_accuracy_std"].to_numpy(float))
            ax.plot(lam, mean, "o-", color=color, label=loss_name(curve.iloc[0]))
            ax.fill_between(lam, mean - std, mean + std, color=color, alpha=0.2)
            if curve["paper_settings"].all():
                paper = [published.grid_value(first["dataset"], label, x, "accuracy") for x in lam]
                points = [(x, float(p.mean)) for x, p in zip(lam, paper, strict=False) if p]
                if points:
                    ax.plot(*zip(*points, strict=False), "x--", color=color, alpha=0.5, lw=0.8)
        ax.set(xlabel="λ", ylabel="test accuracy (%)")
        written += _finish(fig, ax, out_dir, f"accuracy_vs_lambda_{setup_key(first)}",
                           f"{setup_title(first)}: accuracy vs λ (mean ± std over seeds; × paper)")
    return written


def _finish(fig: Figure, ax, out_dir: Path, name: str, title: str, legend_size: int = 8) -> list[Path]:
    """Title, legend and grid of a one-panel figure, then saved."""
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=legend_size)
    ax.grid(alpha=0.3)
    return save(fig, out_dir, name)


def _histories(run_dirs: list[str]) -> list[pd.DataFrame]:
    return [load_history(run_dir) for run_dir in run_dirs if RunDir(run_dir).history.exists()]


def _mean_by_epoch(frames: list[pd.DataFrame], column: str) -> pd.DataFrame:
    """Mean and std per epoch over the runs that reached it (early stopping ends runs unevenly)."""
    stacked = pd.concat([f[["epoch", column]] for f in frames if column in f])
    return stacked.groupby("epoch")[column].agg(["mean", "std"]).reset_index()


def training_curves(runs: pd.DataFrame, best: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Validation accuracy and training loss per epoch for each loss at its best λ."""
    written = []
    for first, group in by_setup(best):
        fig = Figure(figsize=(10, 3.8))
        acc_ax, loss_ax = fig.subplots(1, 2)
        plotted = False
        for index, (_, cell) in enumerate(group.iterrows()):
            frames = _histories(cell_runs(runs, cell)["run_dir"].tolist())
            if not frames:
                continue
            plotted = True
            lam = lambda_text(cell["lambda"])
            label = loss_name(cell)
            if cell["loss"] != BASELINE and lam != "—":
                label += f" (λ = {lam})"
            for ax, column in ((acc_ax, "val_accuracy"), (loss_ax, "train_loss")):
                curve = _mean_by_epoch(frames, column)
                ax.plot(curve["epoch"], curve["mean"], color=f"C{index % 10}", label=label)
                ax.fill_between(curve["epoch"], curve["mean"] - curve["std"].fillna(0),
                                curve["mean"] + curve["std"].fillna(0), color=f"C{index % 10}", alpha=0.15)
        if not plotted:
            continue
        acc_ax.set(xlabel="epoch", ylabel="validation accuracy (%)")
        loss_ax.set(xlabel="epoch", ylabel="training loss (total)")
        acc_ax.legend(fontsize=8)
        for ax in (acc_ax, loss_ax):
            ax.grid(alpha=0.3)
        fig.suptitle(f"{setup_title(first)}: training curves at the best λ (mean ± std over seeds)",
                     fontsize=9)
        written += save(fig, out_dir, f"training_curves_{setup_key(first)}")
    return written


def gradient_figure(runs: pd.DataFrame, best: pd.DataFrame, out_dir: Path) -> list[Path]:
    """How hard each term of Eq. 11 pushes the latent per epoch (train/diagnostics.py), for each
    auxiliary loss at its best λ: the mean per-sample norm of ∂(λ·L_aux)/∂z (solid) and of
    ∂((1 − λ)·L_CE)/∂z (dashed), mean over seeds, log scale."""
    written = []
    for first, group in by_setup(best[best["loss"] != BASELINE]):
        fig = Figure(figsize=(6.4, 4.0))
        ax = fig.subplots()
        plotted = False
        for index, (_, cell) in enumerate(group.iterrows()):
            frames = _histories(cell_runs(runs, cell)["run_dir"].tolist())
            frames = [f for f in frames if "grad_aux_norm" in f]
            if not frames:
                continue
            plotted = True
            color, label = f"C{index % 10}", f"{loss_name(cell)} (λ = {lambda_text(cell['lambda'])})"
            for column, style, part in (("grad_aux_norm", "-", "λ·L_aux"),
                                        ("grad_ce_norm", "--", "(1−λ)·L_CE")):
                curve = _mean_by_epoch(frames, column)
                ax.plot(curve["epoch"], curve["mean"].clip(lower=1e-12), style, color=color,
                        label=f"{label}: {part}")
        if not plotted:
            continue
        ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="mean per-sample gradient norm at the latent")
        written += _finish(fig, ax, out_dir, f"gradient_norms_{setup_key(first)}",
                           f"{setup_title(first)}: how hard each term pushes the latent (best λ)",
                           legend_size=7)
    return written


def alpha_beta_figure(out_dir: Path, max_epochs: int = 100) -> list[Path]:
    """Latent Boost's α (exponential decay) and β (linear to 0 at 20 % of training): the paper's Fig. 3."""
    epochs = np.arange(max_epochs)
    alpha, beta = zip(*(alpha_beta_schedule(int(e), max_epochs) for e in epochs), strict=False)
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    ax.plot(epochs, alpha, label="α (intra-class)")
    ax.plot(epochs, beta, label="β (inter-class)")
    ax.set(xlabel="epoch", ylabel="value", title=f"Latent Boost schedule over {max_epochs} epochs (Fig. 3)")
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, out_dir, f"alpha_beta_schedule_{max_epochs}_epochs")


def tsne_panels(runs: pd.DataFrame, best: pd.DataFrame, out_dir: Path, compute: bool = True) -> list[Path]:
    """Fig. 2: t-SNE of the test latents, baseline / Magnet / Latent Boost, the best trial (by
    validation accuracy) of each at its best λ, or the next best where a trial has no latents
    (copied with its small files only). Embeddings are computed and cached when missing."""
    written = []
    for first, group in by_setup(best):
        panels = []
        for loss in TSNE_COLUMNS:
            cells = group[group["loss_label"] == loss]
            if cells.empty:
                continue
            trials = cell_runs(runs, cells.iloc[0]).sort_values("val_accuracy_best", ascending=False)
            for _, trial in trials.iterrows():  # the best trial that kept its latents (titled by seed)
                if (embedding := _tsne(trial["run_dir"], compute)) is not None:
                    panels.append((cells.iloc[0], trial, embedding))
                    break
        if not panels:
            continue
        fig = Figure(figsize=(4 * len(panels), 4.2))
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (cell, trial, (points, labels)) in zip(axes, panels, strict=False):
            cmap = "tab10" if labels.max() < 10 else "tab20"
            dots = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=cmap, s=1.5, linewidths=0,
                              rasterized=True)
            names = trial.get("class_names")
            if isinstance(names, list) and len(names) <= 20:  # the classes by name, where the run has them
                handles, _ = dots.legend_elements(num=None)
                ax.legend(handles, [names[int(v)] for v in np.unique(labels)], fontsize=6, markerscale=0.6,
                          loc="best", framealpha=0.6)
            lam = "" if cell["loss"] == BASELINE or lambda_text(cell["lambda"]) == "—" else \
                f", λ = {lambda_text(cell['lambda'])}"
            name = loss_title(cell["loss"])
            ax.set_title(f"{name}{lam}, seed {trial['seed']}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"{setup_title(first)}: t-SNE of the test latents (Fig. 2)", fontsize=9)
        written += save(fig, out_dir, f"tsne_{setup_key(first)}")
    return written


def _tsne(run_dir: str, compute: bool):
    try:
        return tsne_of(run_dir, compute)
    except DataError as err:  # an old run without saved latents, or a damaged file: skip its panel
        log.warning("no t-SNE panel for %s: %s", run_dir, err)
        return None


def pca_components_figure(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """PCA components kept (Eq. 7, T = 95 %) per epoch, Latent Boost runs, mean over seeds per λ."""
    written = []
    lb = runs[(runs["loss"] == PROPOSED) & (runs["status"] == "finished")]
    for first, group in by_setup(lb):
        fig = Figure(figsize=(6.4, 3.8))
        ax = fig.subplots()
        plotted = False
        for index, (lam, trials) in enumerate(ordered(group).groupby("lambda")):
            frames = [f for f in _histories(trials["run_dir"].tolist()) if "pca_components" in f]
            if not frames:
                continue
            plotted = True
            curve = _mean_by_epoch(frames, "pca_components")
            ax.plot(curve["epoch"], curve["mean"], color=f"C{index % 10}", label=f"λ = {lam:g}")
        if not plotted:
            continue
        ax.set(xlabel="epoch", ylabel="components kept (mean per epoch)")
        written += _finish(fig, ax, out_dir, f"pca_components_{setup_key(first)}",
                           f"{setup_title(first)}: Latent Boost's PCA components per epoch")
    return written
