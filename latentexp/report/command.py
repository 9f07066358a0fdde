"""Collect runs, summarise cells, write tables (md, tex, csv) and figures (PNG and PDF)."""

from __future__ import annotations

import logging
from pathlib import Path

from latentexp.arguments import positive_int, run_paths_parser
from latentexp.errors import ConfigError
from latentexp.io import write_text
from latentexp.printable import printable
from latentexp.progress import Steps
from latentexp.report import figures
from latentexp.report.cells import best_cells, summarise_cells
from latentexp.report.comparisons import against_baseline
from latentexp.report.figure_index import write_index
from latentexp.report.render import to_latex, to_markdown
from latentexp.report.results import load_runs
from latentexp.report.roles import PROPOSED
from latentexp.report.tables import (
    ablation_tables,
    cluster_table,
    silhouette_table,
    summary_table,
    sweep_tables,
)
from latentexp.runs.rundir import RunDir

log = logging.getLogger("latentexp")

FORMATS = ("md", "tex", "csv")


def build_report(paths: list[str | Path], out_dir: str | Path, formats=FORMATS, seeds: int | None = None,
                 with_figures: bool = True, tsne: bool = True) -> dict:
    """Write the report into ``out_dir``; return the Markdown text and the files written."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ConfigError(f"unknown report format(s) {', '.join(sorted(unknown))}; choose from "
                          f"{', '.join(FORMATS)} (e.g. --format md,tex).")
    out_dir = Path(out_dir)
    runs = load_runs(paths)
    cells = summarise_cells(runs, seeds)
    written = []
    if with_figures:  # first: Fig. 2 may analyse runs, whose cluster quality the tables then show
        analysed = _analyses(runs)
        written += _figures(runs, cells, out_dir / "figures", tsne)
        if _analyses(runs) != analysed:  # a computed t-SNE also wrote its run's analysis.json
            runs = load_runs(paths)
            cells = summarise_cells(runs, seeds)
    with Steps("tables", 4 + len(formats)) as step:
        step("comparisons")
        cells = against_baseline(cells, runs)
        best = best_cells(cells)
        step("λ sweeps")
        tables = sweep_tables(cells)
        step("summary, silhouette")
        if not best.empty:
            tables += [summary_table(best, runs), silhouette_table(best)]
        step("ablation, cluster quality")
        tables += ablation_tables(cells, runs)
        clusters = cluster_table(cells)
        if clusters is not None:
            tables.append(clusters)
        markdown = to_markdown(tables)
        if "md" in formats:
            step("report.md")
            written.append(out_dir / "report.md")
            write_text(written[-1], markdown)
        if "tex" in formats:
            step("report.tex")
            written.append(out_dir / "report.tex")
            write_text(written[-1], to_latex(tables))
        if "csv" in formats:
            step("runs.csv, cells.csv, best.csv")
            listed = runs.assign(run_dir=runs["run_dir"].map(_from_here))
            for name, frame in (("runs", listed), ("cells", cells), ("best", best)):
                written.append(out_dir / f"{name}.csv")
                write_text(written[-1], frame.to_csv(index=False))
    return {"markdown": markdown, "files": written, "runs": runs, "cells": cells, "best": best}


def _from_here(run_dir: str) -> str:
    """A run directory as runs.csv lists it: relative to the working directory where it lies
    under it (a report committed with its runs names no one's machine), else absolute."""
    path = Path(run_dir)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else run_dir


def _analyses(runs) -> dict[str, object]:
    """Each run's analysis.json as it is now (its stamp; None: none), to tell whether one changed."""
    from latentexp.io import file_stamp

    files = [RunDir(run_dir).analysis for run_dir in runs["run_dir"]]
    return {str(f): (file_stamp(f) or object()) if f.exists() else None for f in files}


def _figures(runs, cells, fig_dir: Path, tsne: bool) -> list[Path]:
    best = best_cells(cells)
    lb_epochs = runs.loc[runs["loss"] == PROPOSED, "max_epochs"].dropna()
    schedules = sorted({100, *map(int, lb_epochs)})  # the paper's 100, and what ran
    with Steps("figures", 5 + len(schedules)) as step:
        step("accuracy vs λ")
        written = figures.accuracy_vs_lambda(cells, fig_dir)
        step("training curves")
        written += figures.training_curves(runs, best, fig_dir)
        step("PCA components")
        written += figures.pca_components_figure(runs, fig_dir)
        step("gradient norms")
        written += figures.gradient_figure(runs, best, fig_dir)
        step("t-SNE (Fig. 2)" + (", computing missing embeddings" if tsne else ""))
        written += figures.tsne_panels(runs, best, fig_dir, compute=tsne)
        for max_epochs in schedules:
            step(f"α/β schedule, {max_epochs} epochs")
            written += figures.alpha_beta_figure(fig_dir, max_epochs)
    return written + write_index(fig_dir, written, runs)


def main(argv: list[str]) -> None:
    parser = run_paths_parser(
        "latentexp report",
        "The Latent Boost paper's tables (λ sweeps, best-λ summary, silhouette, cluster quality; mean ± std "
        "over seeds with the paper's published values beside) and figures, from the runs found under PATH.")
    parser.add_argument("--format", default="md,tex,csv", help="comma-separated: md, tex, csv (default: all)")
    parser.add_argument("--out", default=None,
                        help="output directory (default: PATH/report for the first PATH)")
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help="seeds each cell should have (default: every seed seen in the cell's setup)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--no-tsne", action="store_true",
                        help="do not compute missing t-SNE embeddings (Fig. 2 uses cached ones only)")
    args = parser.parse_args(argv)
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    out_dir = Path(args.out) if args.out else Path(args.paths[0]) / "report"
    report = build_report(args.paths, out_dir, formats, args.seeds, not args.no_figures, not args.no_tsne)
    print(printable(report["markdown"], keep="\n"))  # names from a shared tree: escapes shown, never obeyed
    print(f"{len(report['runs'])} runs; wrote {len(report['files'])} files to {out_dir}/")
