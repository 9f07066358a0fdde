"""figures/README.md: which file is which figure, of which setup, and how the files are named."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pandas as pd

from latentexp.io import write_text
from latentexp.report.names import MAX_PART, SETUP_TAG, SHORTENED, setup_key
from latentexp.report.tables import by_setup, setup_name

FIGURES = {  # file name prefix: (what it is, what it shows)
    "accuracy_vs_lambda": ("accuracy vs λ", "test accuracy against λ per loss, mean ± std over seeds, the "
                           "baseline as a grey band, × the paper's values beside runs with its settings; "
                           "where every loss ran at one λ only, each loss's mean ± std at that λ beside "
                           "the baseline's, with its seed count"),
    "training_curves": ("training curves", "validation accuracy and training loss per epoch of each loss "
                        "at its best λ, mean ± std over seeds"),
    "pca_components": ("PCA components", "the principal components Latent Boost keeps per epoch (Eq. 7, "
                       "T = 95 %), mean over seeds per λ and variant"),
    "gradient_norms": ("gradient norms", "the mean per-sample gradient norm at the latent of λ·L_aux "
                       "(solid) and of (1 − λ)·L_CE (dashed) per epoch, each auxiliary loss at its best λ"),
    "tsne": ("t-SNE (Fig. 2)", "t-SNE of the test latents of the baseline, Magnet and Latent Boost at "
             "their best λ, the best trial that kept its latents, coloured by class"),
    "alpha_beta_schedule": ("α/β schedule (Fig. 3)", "Latent Boost's α and β per epoch, over the paper's "
                            "100 epochs and over each epoch count that ran"),
}

NAMING = (
    "Each figure is a PNG and a PDF of one name, `<figure>_<dataset>-<model>[-<setup>]`. The dataset "
    "and model names are those the runs recorded, made safe for a file name: letters, digits, `_` and "
    "`.` are kept, every other character is percent-encoded (`/` is `%2F`, `-` is `%2D`, so `-` only "
    "ever joins the parts; a `.` that comes first or after another `.` is `%2E`), and a name longer "
    f"than {MAX_PART} characters is cut and ends with `{SHORTENED}` and a digest of the whole name. "
    "So no name reaches outside this folder, and two different names share a file only where two "
    "digests coincide. `<setup>` is there only where runs of one dataset and model differ in other "
    f"settings: the first {SETUP_TAG} hex digits of the SHA-256 of those settings, which the tables "
    "show as `[<setup>]` and the list below spells out."
)


def figure_of(path: Path) -> str:
    """The figure a file is, by its name's prefix (no prefix is the start of another)."""
    for kind in FIGURES:
        if path.stem.startswith(f"{kind}_"):
            return kind
    raise ValueError(f"{path.name} is no figure that figures/README.md describes; add it to FIGURES")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def index_text(written: list[Path], runs: pd.DataFrame) -> str:
    setups = {setup_key(first): first for first, _ in by_setup(runs)}
    lines = ["# Figures", "", NAMING, "", "| File | Figure | Setup |", "|---|---|---|"]
    for png in (path for path in written if path.suffix == ".png"):
        kind = figure_of(png)
        setup = setups.get(png.stem[len(kind) + 1:])
        pdf = png.with_suffix(".pdf").name
        lines.append(f"| [{_cell(png.name)}]({quote(png.name)}) ([PDF]({quote(pdf)})) | {FIGURES[kind][0]} "
                     f"| {_cell(setup_name(setup)) if setup is not None else '—'} |")
    lines += ["", "## What each figure shows", ""]
    lines += [f"- {short}: {long}." for short, long in FIGURES.values()]
    tagged = [first for first in setups.values() if first["setup"]]
    if tagged:
        lines += ["", "## Setups", ""]
        lines += [f"- {_cell(setup_name(first))}: {_cell(first['setup'])}" for first in tagged]
    return "\n".join(lines) + "\n"


def write_index(fig_dir: Path, written: list[Path], runs: pd.DataFrame) -> list[Path]:
    """figures/README.md for the figures this report wrote; [] when it wrote none."""
    if not written:
        return []
    path = Path(fig_dir) / "README.md"
    write_text(path, index_text(written, runs))
    return [path]
