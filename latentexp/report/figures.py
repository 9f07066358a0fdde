"""The report's figures, each saved as PNG and PDF. Figures are built with matplotlib's object API
(``Figure``), which needs no display and no global backend switch."""

from __future__ import annotations

import io
import logging
import textwrap
from collections import Counter
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from latentexp.errors import DataError
from latentexp.io import atomic_write
from latentexp.losses.latent_boost import alpha_beta_schedule
from latentexp.report import published
from latentexp.report.analysis import tsne_of
from latentexp.report.cells import cell_runs
from latentexp.report.names import setup_key
from latentexp.report.results import load_history
from latentexp.report.roles import BASELINE, PROPOSED, TSNE_COLUMNS, loss_title
from latentexp.report.tables import by_setup, lambda_text, loss_name, ordered, setup_name
from latentexp.runs.rundir import RunDir

log = logging.getLogger("latentexp")


TITLE_SIZE = 9
LEGEND_SIZE = 8
MANY_ENTRIES = 5  # legends with more entries go beside the plot, where they hide no data
DODGE = 0.008  # of the λ range: how far apart sideways the losses' points are drawn
FORMATS = {"png": {"dpi": 150}, "pdf": {"metadata": {"CreationDate": None}}}


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """PNG and PDF, without a creation date (the same runs draw the same bytes). Both are drawn in
    memory first, then each written atomically: a report that fails or is killed while drawing
    leaves the previous figures whole, and never a new PNG beside an old PDF for a failed PDF."""
    drawn = {}
    for fmt, options in FORMATS.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, bbox_inches="tight", **options)
        drawn[out_dir / f"{name}.{fmt}"] = buffer.getvalue()
    for path, data in drawn.items():
        atomic_write(path, lambda f, data=data: f.write(data), mode="wb")
    return list(drawn)


def _wrapped(text: str, settings: str, width_inches: float) -> str:
    """A title that fits ``width_inches``, the setup's settings (which can run to 150 characters)
    on lines of their own."""
    chars = max(30, int(width_inches * 72 / (TITLE_SIZE * 0.6)))  # about 0.6 em a character
    lines = textwrap.wrap(text, chars) + (textwrap.wrap(f"({settings})", chars) if settings else [])
    return "\n".join(lines)


def _set_title(ax, text: str, cell) -> None:
    width = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(_wrapped(f"{setup_name(cell)}: {text}", cell["setup"], width), fontsize=TITLE_SIZE)


def _set_suptitle(fig: Figure, text: str, cell) -> None:
    fig.suptitle(_wrapped(f"{setup_name(cell)}: {text}", cell["setup"], fig.get_figwidth()),
                 fontsize=TITLE_SIZE)


def _legend(ax, size: int = LEGEND_SIZE) -> None:
    """In the plot while it is short, beside it when it would cover the data."""
    if len(ax.get_legend_handles_labels()[1]) > MANY_ENTRIES:
        ax.legend(fontsize=size, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=size)


def _line_style(index: int) -> dict:
    """Ten colours, then the same colours dashed, then dotted: no two of 30 lines look alike."""
    return {"color": f"C{index % 10}", "linestyle": ("-", "--", ":")[index // 10 % 3]}


def _epoch_axis(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no 1.2, 1.4, ...


def accuracy_vs_lambda(cells: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Test accuracy against λ per loss, mean ± std band, the baseline as a horizontal band; where
    every loss ran at one λ only, a point ± std per loss (a curve of one point is a lone dot)."""
    written = []
    for first, group in by_setup(cells[cells["n"] > 0]):
        swept = group[(group["loss"] != BASELINE) & group["lambda"].notna()]
        if swept.empty:
            continue
        baseline = group[group["loss"] == BASELINE]
        lambdas = swept["lambda"].unique()
        draw = _accuracy_at_one_lambda if len(lambdas) == 1 else _accuracy_curves
        written += save(draw(first, swept, baseline), out_dir, f"accuracy_vs_lambda_{setup_key(first)}")
    return written


def over_seeds(counts) -> str:
    """What a figure's ± stands on, from the seed counts of its cells: "mean ± std over 5 seeds",
    "over 1-5 seeds", or "one seed, no ±" where no cell has two."""
    counts = [int(n) for n in counts]
    low, high = min(counts), max(counts)
    if high < 2:
        return "one seed, no ±"
    return f"mean ± std over {low}–{high} seeds" if low != high else f"mean ± std over {high} seeds"


def _paper_accuracy(first, label: str, lam: float) -> float | None:
    found = published.grid_value(first["dataset"], label, lam, "accuracy")
    return float(found.mean) if found else None


def _accuracy_curves(first, swept: pd.DataFrame, baseline: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    if not baseline.empty:
        cell = baseline.iloc[0]
        mean, std = cell["test_accuracy_mean"], np.nan_to_num(cell["test_accuracy_std"])
        ax.axhline(mean, color="black", lw=1, label="Baseline (λ = 0)")
        ax.axhspan(mean - std, mean + std, color="black", alpha=0.1)
    with_paper = False
    curves = _curves(swept)
    step = DODGE * float(np.ptp(swept["lambda"].to_numpy(float)))
    for index, (label, curve, name) in enumerate(curves):
        curve = curve.sort_values("lambda")
        style = _line_style(index)
        # Set a little apart sideways: at a λ that many losses share, none hides another.
        lam = curve["lambda"].to_numpy(float) + (index - (len(curves) - 1) / 2) * step
        mean = curve["test_accuracy_mean"].to_numpy(float)
        std = np.nan_to_num(curve["test_accuracy_std"].to_numpy(float))
        # Two λ values joined by a line would suggest a trend between them, and a search's trials
        # are no curve at all: points then, no line.
        joined = len(lam) > 2 and label is not None
        line = {} if joined else {"linestyle": "none"}
        ax.plot(lam, mean, marker="o", **{**style, **line}, label=name)
        if joined:
            ax.fill_between(lam, mean - std, mean + std, color=style["color"], alpha=0.2)
        else:
            ax.errorbar(lam, mean, yerr=std, fmt="none", color=style["color"], capsize=3)
        if label is not None and curve["paper_settings"].all():
            points = [(x, p) for x, at in zip(lam, curve["lambda"], strict=True)
                      if (p := _paper_accuracy(first, label, float(at))) is not None]
            if points:
                with_paper = True
                ax.plot(*zip(*points, strict=True), "x--", color=style["color"], alpha=0.5, lw=0.8)
    ax.set(xlabel="λ", ylabel="test accuracy (%)")
    _legend(ax)
    ax.grid(alpha=0.3)
    seeds = over_seeds([*swept["n"], *baseline["n"]])
    _set_title(ax, f"accuracy vs λ ({seeds}" + ("; × paper)" if with_paper else ")"), first)
    return fig


def _curves(swept: pd.DataFrame, trials: int = 3) -> list[tuple[str | None, pd.DataFrame, str]]:
    """(loss label, its cells, legend name) per curve. A loss's variants that ran at one λ with one
    seed each (a search's trials: each its own T, say) are one series of points when there are
    ``trials`` or more, with None for its label, instead of a legend entry per trial."""
    curves = list(swept.groupby("loss_label", sort=False))

    def lone(cells) -> bool:
        one_point = len(cells) == 1 and int(cells["n"].iloc[0]) == 1
        return one_point and (cells["loss_label"] != cells["loss"]).all()

    counts = Counter(cells["loss"].iloc[0] for _, cells in curves if lone(cells))
    kept, searched = [], {}
    for label, cells in curves:
        loss = cells["loss"].iloc[0]
        if lone(cells) and counts[loss] >= trials:
            searched.setdefault(loss, []).append(cells)
        else:
            kept.append((label, cells, loss_name(cells.iloc[0])))
    for loss, parts in searched.items():
        name = f"{loss_title(loss)}: {len(parts)} one-seed settings (a search)"
        kept.append((None, pd.concat(parts), name))
    return kept


def _accuracy_at_one_lambda(first, swept: pd.DataFrame, baseline: pd.DataFrame) -> Figure:
    """Each loss at the one λ every loss ran at, beside the baseline: mean ± std over seeds, the
    seed count under each name (one seed has no ±)."""
    lam = float(swept["lambda"].iloc[0])
    entries = [*(("black", cell) for _, cell in baseline.iterrows()),
               *((_line_style(i)["color"], cell) for i, (_, cell) in enumerate(swept.iterrows()))]
    fig = Figure(figsize=(max(6.4, 1.1 * len(entries) + 1.5), 4.2))
    ax = fig.subplots()
    with_paper = False
    for x, (color, cell) in enumerate(entries):
        std = cell["test_accuracy_std"]
        ax.errorbar(x, cell["test_accuracy_mean"], yerr=None if pd.isna(std) else std, fmt="o",
                    color=color, capsize=4)
        paper = None if cell["loss"] == BASELINE or not cell["paper_settings"] else \
            _paper_accuracy(first, cell["loss_label"], lam)
        if paper is not None:
            with_paper = True
            ax.plot(x, paper, "x", color=color, alpha=0.6)
    names = [("Baseline (λ = 0)" if cell["loss"] == BASELINE else loss_name(cell)) + f"\n{cell['n']} seed"
             + ("s" if cell["n"] != 1 else "") for _, cell in entries]
    ax.set_xticks(range(len(entries)), names, fontsize=LEGEND_SIZE)
    ax.set_xlim(-0.6, len(entries) - 0.4)
    ax.set(ylabel="test accuracy (%)")
    ax.grid(alpha=0.3, axis="y")
    _set_title(ax, f"accuracy at λ = {lam:g}, the one λ that ran ({over_seeds(c['n'] for _, c in entries)}"
               + ("; × paper)" if with_paper else ")"), first)
    return fig


def _histories(run_dirs: list[str]) -> list[pd.DataFrame]:
    """The readable histories with an epoch column; a damaged or planted one is left out of the
    figures with a warning, not the report."""
    frames = []
    for run_dir in run_dirs:
        if not RunDir(run_dir).history.exists():
            continue
        try:
            frame = load_history(run_dir)
            if "epoch" not in frame:
                raise ValueError("it has no epoch column")
        except (DataError, OSError, ValueError) as err:  # pandas' parser errors are ValueErrors
            log.warning("left out of the figures: %s/history.csv (%s)", run_dir, err)
            continue
        frames.append(frame)
    return frames


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
        drawn = 0  # colours go to the losses drawn, so skipped ones leave no gaps and no repeats
        for _, cell in group.iterrows():
            frames = _histories(cell_runs(runs, cell)["run_dir"].tolist())
            if not frames:
                continue
            lam = lambda_text(cell["lambda"])
            label = loss_name(cell)
            if cell["loss"] != BASELINE and lam != "—":
                label += f" (λ = {lam})"
            style = _line_style(drawn)
            drawn += 1
            for ax, column in ((acc_ax, "val_accuracy"), (loss_ax, "train_loss")):
                curve = _mean_by_epoch(frames, column)
                ax.plot(curve["epoch"], curve["mean"], **style, label=label)
                ax.fill_between(curve["epoch"], curve["mean"] - curve["std"].fillna(0),
                                curve["mean"] + curve["std"].fillna(0), color=style["color"], alpha=0.15)
        if not drawn:
            continue
        acc_ax.set(xlabel="epoch", ylabel="validation accuracy (%)")
        loss_ax.set(xlabel="epoch", ylabel="training loss (total)")
        _legend(loss_ax if drawn > MANY_ENTRIES else acc_ax)  # a long one beside the right panel
        for ax in (acc_ax, loss_ax):
            ax.grid(alpha=0.3)
            _epoch_axis(ax)
        _set_suptitle(fig, f"training curves at the best λ ({over_seeds(group['n'])})", first)
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
        drawn = 0
        for _, cell in group.iterrows():
            frames = _histories(cell_runs(runs, cell)["run_dir"].tolist())
            frames = [f for f in frames if "grad_aux_norm" in f]
            if not frames:
                continue
            color, label = f"C{drawn % 10}", f"{loss_name(cell)} (λ = {lambda_text(cell['lambda'])})"
            drawn += 1
            for column, style, part in (("grad_aux_norm", "-", "λ·L_aux"),
                                        ("grad_ce_norm", "--", "(1−λ)·L_CE")):
                curve = _mean_by_epoch(frames, column)
                ax.plot(curve["epoch"], curve["mean"].clip(lower=1e-12), style, color=color,
                        label=f"{label}: {part}")
        if not drawn:
            continue
        ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="mean per-sample gradient norm at the latent")
        _epoch_axis(ax)
        _legend(ax, size=7)
        ax.grid(alpha=0.3)
        _set_title(ax, "how hard each term pushes the latent (best λ; solid: λ·L_aux, dashed: (1−λ)·L_CE)",
                   first)
        written += save(fig, out_dir, f"gradient_norms_{setup_key(first)}")
    return written


def alpha_beta_figure(out_dir: Path, max_epochs: int = 100) -> list[Path]:
    """Latent Boost's α (exponential decay) and β (linear to 0 at 20 % of training): the paper's Fig. 3."""
    epochs = np.arange(1, max_epochs + 1)  # counted from 1, as every other figure and history.csv do
    alpha, beta = zip(*(alpha_beta_schedule(int(e) - 1, max_epochs) for e in epochs), strict=False)
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    marker = "o" if max_epochs <= 20 else None  # a few epochs are a few values, not a line
    ax.plot(epochs, alpha, marker=marker, label="α (intra-class)")
    ax.plot(epochs, beta, marker=marker, label="β (inter-class)")
    ax.set(xlabel="epoch", ylabel="value")
    ax.set_title(f"Latent Boost's α and β over {max_epochs} epochs (Fig. 3)", fontsize=TITLE_SIZE)
    _epoch_axis(ax)
    ax.legend(fontsize=LEGEND_SIZE)
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
        fig = Figure(figsize=(4 * len(panels) + 1.2, 4.2), layout="constrained")  # room for the legend
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        classes = 1 + max(int(labels.max()) for _, _, (_, labels) in panels)
        colours = _class_colours(classes)
        for ax, (cell, trial, (points, labels)) in zip(axes, panels, strict=False):
            ax.scatter(points[:, 0], points[:, 1], c=colours[labels % len(colours)], s=1.5, linewidths=0,
                       rasterized=True)
            lam = "" if cell["loss"] == BASELINE or lambda_text(cell["lambda"]) == "—" else \
                f", λ = {lambda_text(cell['lambda'])}"
            name = loss_title(cell["loss"])
            ax.set_title(f"{name}{lam}, seed {trial['seed']}", fontsize=TITLE_SIZE)
            ax.set_xticks([])
            ax.set_yticks([])
        if classes <= len(colours):  # past 20 classes colours repeat: a legend would mislead
            _class_legend(fig, colours[:classes], _class_names(panels, classes))
        _set_suptitle(fig, "t-SNE of the test latents (Fig. 2)", first)
        written += save(fig, out_dir, f"tsne_{setup_key(first)}")
    return written


def _class_colours(classes: int) -> np.ndarray:
    """One colour per class label (RGBA rows): tab10 up to ten classes, tab20 up to twenty."""
    palette = matplotlib.colormaps["tab10" if classes <= 10 else "tab20"]
    return np.array([palette(i) for i in range(palette.N)])


def _class_names(panels: list, classes: int) -> list[str]:
    """The classes by the names a run recorded (runs before format 5 recorded none: their label)."""
    for _, trial, _ in panels:
        names = trial.get("class_names")
        if isinstance(names, list) and len(names) == classes:
            return [str(name) for name in names]
    return [f"class {label}" for label in range(classes)]


def _class_legend(fig: Figure, colours: np.ndarray, names: list[str]) -> None:
    """One legend for all panels (the same classes in each), beside them."""
    handles = [Line2D([], [], marker="o", linestyle="", markersize=5, color=colour) for colour in colours]
    fig.legend(handles, names, loc="outside right center", fontsize=LEGEND_SIZE, frameon=False)


def _tsne(run_dir: str, compute: bool):
    try:
        return tsne_of(run_dir, compute)
    except DataError as err:  # an old run without saved latents, or a damaged file: skip its panel
        log.warning("no t-SNE panel for %s: %s", run_dir, err)
        return None


def pca_components_figure(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """PCA components kept (Eq. 7, T = 95 %) per epoch, Latent Boost runs, mean over seeds per
    variant and λ (an ablation's variants are other computations: never averaged together)."""
    written = []
    lb = runs[(runs["loss"] == PROPOSED) & (runs["status"] == "finished")]
    for first, group in by_setup(lb):
        fig = Figure(figsize=(6.4, 3.8))
        ax = fig.subplots()
        drawn = 0
        variants = group["loss_label"].nunique() > 1
        for (_, lam), trials in ordered(group).groupby(["loss_label", "lambda"], sort=False):
            frames = [f for f in _histories(trials["run_dir"].tolist()) if "pca_components" in f]
            if not frames:  # a variant without PCA (pca=false) keeps no components
                continue
            curve = _mean_by_epoch(frames, "pca_components")
            label = f"{loss_name(trials.iloc[0])}, λ = {lam:g}" if variants else f"λ = {lam:g}"
            ax.plot(curve["epoch"], curve["mean"], **_line_style(drawn), label=label)
            drawn += 1
        if not drawn:
            continue
        ax.set(xlabel="epoch", ylabel="components kept (mean per epoch)")
        _epoch_axis(ax)
        _legend(ax)
        ax.grid(alpha=0.3)
        _set_title(ax, "Latent Boost's PCA components per epoch", first)
        written += save(fig, out_dir, f"pca_components_{setup_key(first)}")
    return written
