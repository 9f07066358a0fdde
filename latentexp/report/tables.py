"""The paper's tables as plain rows of text: λ sweeps (Tables 1, 5-8), the best-λ summary (Table 2),
silhouette (Table 3) and cluster quality (COREL Tables 3-4, LACE Table 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from latentexp.report import published
from latentexp.report.cells import SETUP_KEYS, is_baseline_cell, seed_values
from latentexp.report.comparisons import METRIC, POWER_NOTE, Comparison, with_holm
from latentexp.report.comparisons import NOTE as COMPARISON_NOTE
from latentexp.report.names import setup_key, setup_tag
from latentexp.report.roles import BASELINE, PREDECESSOR, PROPOSED, loss_place, loss_title
from latentexp.report.stats import is_missing, paired

INCOMPLETE = "‡"
MIXED_CODE = "†"
MIXED_PRECISION = "§"
MIXED_CODE_NOTE = (f"{MIXED_CODE}: the seeds of this cell ran on more than one latentexp version or source "
                   "revision (the same run format, so the same computation by design; check the changes "
                   "between them)")
MIXED_PRECISION_NOTE = (f"{MIXED_PRECISION}: the seeds of this setup trained in more than one precision "
                        "(trainer.amp gives bf16 only where the device computes it natively; float32 is "
                        "tf32 on recent GPUs), so a mean or a comparison may mix two computations; rerun "
                        "them on one kind of device")
STD_NOTE = "Mean ± sample standard deviation (ddof = 1) over the finished seeds."
INCOMPLETE_NOTE = (f"{INCOMPLETE}: fewer seeds than the sweep asked for have this value (failed or "
                   f"unfinished runs, see Seeds, or a metric that is NaN or absent in a finished run).")


@dataclass
class Table:
    key: str  # file-safe identifier
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    text_columns: int = 3  # leading columns of text (left-aligned in LaTeX); numbers after them


def mean_std(cell, metric: str, digits: int) -> str:
    """``mean ± std``, marked when fewer seeds than asked have this metric (failed, unfinished,
    or a NaN/absent value in a finished run)."""
    mean, std = cell.get(f"{metric}_mean"), cell.get(f"{metric}_std")
    if mean is None or is_missing(mean):
        return "—"
    text = f"{mean:.{digits}f}" if is_missing(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"
    complete = cell.get(f"{metric}_n", 0) >= cell["seeds_asked"]
    return text if complete else text + INCOMPLETE


def seeds_text(cell) -> str:
    text = f"{cell['n']}" if cell["complete"] else f"{cell['n']}/{cell['seeds_asked']}"
    extra = [f"{cell[k]} {word}" for k, word in (("n_failed", "failed"), ("n_started", "unfinished"))
             if cell[k]]
    text = f"{text} ({', '.join(extra)})" if extra else text
    text = text + MIXED_CODE if cell.get("mixed_code") else text
    return text + MIXED_PRECISION if cell.get("mixed_precision") else text


def code_notes(cells: pd.DataFrame) -> list[str]:
    """Notes naming the code versions, and the precisions, of the cells whose seeds ran on more
    than one."""
    notes = []
    for flag, listed, note in (("mixed_code", "codes", MIXED_CODE_NOTE),
                               ("mixed_precision", "precisions", MIXED_PRECISION_NOTE)):
        mixed = cells[cells[flag].astype(bool)] if flag in cells else cells.iloc[0:0]
        if not mixed.empty:
            which = "; ".join(f"{loss_name(c)} λ={lambda_text(c['lambda'])}: {c[listed]}"
                              for _, c in mixed.iterrows())
            notes.append(f"{note}: {which}.")
    return notes


def loss_name(cell) -> str:
    label = cell["loss_label"]
    return loss_title(cell["loss"]) + label[len(cell["loss"]):]


def lambda_text(lam) -> str:
    return "—" if lam is None or is_missing(lam) else f"{float(lam):g}"


def setup_name(cell) -> str:
    """``dataset / model``, with the setup's tag where other settings tell it apart (the tag
    figure file names carry too)."""
    name = f"{cell['dataset']} / {cell['model']}"
    tag = setup_tag(cell)
    return f"{name} [{tag}]" if tag else name


def setup_title(cell) -> str:
    """The setup's name and, where it has them, the settings that tell it apart."""
    return f"{setup_name(cell)} ({cell['setup']})" if cell["setup"] else setup_name(cell)


def say_setup_once(table: Table, cells: pd.DataFrame) -> Table:
    """A table whose first column names each row's setup says each setup's settings once: with one
    setup the column goes and the title names it, with several the rows keep the short name and a
    note per setup gives its settings (some are 150 characters long)."""
    setups = [first for first, _ in by_setup(cells)]
    if len(setups) == 1:
        table.title = f"{table.title}: {setup_title(setups[0])}"
        table.columns = table.columns[1:]
        table.rows = [row[1:] for row in table.rows]
        table.text_columns -= 1
    else:
        table.notes = [f"{setup_name(first)}: {first['setup']}." for first in setups if first["setup"]] \
            + table.notes
    return table


def improvement(ours: float, base: float) -> str:
    if is_missing(ours) or is_missing(base) or base == 0:
        return "—"
    return f"{100.0 * (ours - base) / abs(base):+.2f}"


def ordered(cells: pd.DataFrame) -> pd.DataFrame:
    order = cells["loss"].map(loss_place)
    return cells.assign(_order=order).sort_values(["_order", "loss_label", "lambda"]).drop(columns="_order")


def by_setup(cells: pd.DataFrame):
    for _, group in cells.groupby(SETUP_KEYS, dropna=False, sort=True):
        yield group.iloc[0], ordered(group)


# ---------------------------------------------------------------------- λ sweeps (Tables 1, 5-8)

def sweep_tables(cells: pd.DataFrame) -> list[Table]:
    """One table per setup; with ``vs_baseline_*`` columns (comparisons.against_baseline), each
    cell's paired difference from the baseline and its tests."""
    tables = []
    for first, group in by_setup(cells):
        paper = bool(group["paper_settings"].any())
        tested = "vs_baseline_n" in group and group["vs_baseline_n"].notna().any()
        columns = ["Loss", "λ", "Accuracy (%)", "Micro-F1", "Seeds"]
        if tested:
            columns += ["Δ acc. vs baseline", "p (t; W)", "MDE; seeds"]
        if paper:
            columns += ["Paper accuracy", "Paper micro-F1"]
        table = Table(f"sweep_{setup_key(first)}", f"λ sweep: {setup_title(first)}", columns)
        disagreements = []
        for _, cell in group.iterrows():
            row = [loss_name(cell), lambda_text(cell["lambda"]), mean_std(cell, "test_accuracy", 2),
                   mean_std(cell, "test_micro_f1", 4), seeds_text(cell)]
            if tested:
                test = Comparison.from_columns(cell, "vs_baseline_")
                row += test.texts(of=cell["n"]) if test else ["—", "—", "—"]
            if paper:
                refs = [_reference(cell, metric) for metric in ("accuracy", "micro_f1")]
                row += [ref.text() if ref else "" for ref in refs]
                main = published.table1_disagreement(cell["dataset"], cell["loss"], cell["lambda"],
                                                     "accuracy")
                if main and cell["paper_settings"]:
                    disagreements.append(f"{loss_name(cell)} λ={lambda_text(cell['lambda'])}: {main.text()}")
            table.rows.append(row)
        table.notes = [STD_NOTE, INCOMPLETE_NOTE, *code_notes(group),
                       *([COMPARISON_NOTE, POWER_NOTE] if tested else [])]
        if paper:
            table.notes.append("Paper: the appendix grids (Tables 5-7; Table 8 for Latent Boost), λ = 0 from "
                               "Table 1; shown only beside runs with the paper's own settings (the "
                               "experiment=paper_<dataset> config: full data, 100 epochs, default loss "
                               "parameters).")
        if disagreements:
            table.notes.append("The paper's Table 1 prints other accuracies for: "
                               + "; ".join(disagreements) + ".")
        tables.append(table)
    return tables


def _reference(cell, metric: str) -> published.Published | None:
    if not cell["paper_settings"]:  # other epochs, data limits, loss parameters...: not the paper's cell
        return None
    if is_baseline_cell(cell):
        return published.lookup(1, cell["dataset"], BASELINE, 0.0, metric)
    return published.grid_value(cell["dataset"], cell["loss"], cell["lambda"], metric)


# ---------------------------------------------------------------------- best λ (Tables 2 and 3)

SUMMARY_ROWS = [  # (metric column, row label, digits, published metric name)
    ("test_accuracy", "Accuracy (%)", 2, "accuracy"),
    ("test_micro_f1", "Micro-F1", 4, "micro_f1"),
    ("epochs_run", "Epochs", 2, "epochs"),
    ("epoch_seconds_mean", "Epoch time (s)", 1, None),
]


def _summary_columns(best: pd.DataFrame) -> list[str]:
    labels = ordered(best).drop_duplicates("loss_label")
    return list(labels["loss_label"])


def _loss_header(best: pd.DataFrame, label: str) -> str:
    cell = best[best["loss_label"] == label].iloc[0]
    return loss_name(cell)


def _loss_columns_table(best: pd.DataFrame, key: str, title: str, lead: list[str]):
    """A table with one column per loss (at its best λ) after ``lead``, and Latent Boost's
    improvement over the baseline last when both are there."""
    labels = _summary_columns(best)
    with_improvement = PROPOSED in labels and BASELINE in labels
    columns = [*lead, *[_loss_header(best, label) for label in labels]]
    if with_improvement:
        columns.append("Improv. (%)")
    return Table(key, title, columns), labels, with_improvement


def _per_loss(by_label: dict, labels: list[str], text) -> list[str]:
    """``text(cell)`` for each loss column, "—" where this setup has no such loss."""
    return [text(by_label[x]) if x in by_label else "—" for x in labels]


def summary_table(best: pd.DataFrame, runs: pd.DataFrame) -> Table:
    """Table 2: each loss at its best λ by validation accuracy, per setup, with the paper's values,
    and the paired comparisons of each loss with the baseline and of Latent Boost with Magnet."""
    table, labels, with_improvement = _loss_columns_table(
        best, "summary", "Best λ by validation accuracy (Table 2)", ["Setup", "Metric", "Source"])
    tests = _summary_tests(best, runs, labels)
    for first, group in by_setup(best):
        by_label = {cell["loss_label"]: cell for _, cell in group.iterrows()}
        setup = setup_name(first)
        paper = bool(group["paper_settings"].any())
        lambdas = _per_loss(by_label, labels, lambda c: lambda_text(c["lambda"]))
        table.rows.append([setup, "λ", "ours", *lambdas] + ([""] if with_improvement else []))
        for metric, label, digits, pub_metric in SUMMARY_ROWS:
            ours = _per_loss(by_label, labels, lambda c, m=metric, d=digits: mean_std(c, m, d))
            row = [setup, label, "ours", *ours]
            if with_improvement:
                row.append(_improvement_of(by_label, metric))
            table.rows.append(row)
            refs = [_paper_summary(by_label, x, 2, first["dataset"], pub_metric) for x in labels] \
                if paper and pub_metric else []
            if any(refs):
                row = [setup, label, "paper", *[r.text() if r else "" for r in refs]]
                if with_improvement:
                    row.append(_paper_improvement(refs, labels))
                table.rows.append(row)
        table.rows.append([setup, "Seeds", "ours", *_per_loss(by_label, labels, seeds_text)]
                          + ([""] if with_improvement else []))
        for against, name in ((BASELINE, "baseline"), (PREDECESSOR, loss_title(PREDECESSOR))):
            found = [tests.get((setup_title(first), label, against)) for label in labels]
            if any(found):
                texts = [t.texts(of=by_label[label]["n"]) if t else ("", "", "")
                         for label, t in zip(labels, found, strict=True)]
                metrics = (f"Δ acc. vs {name}", f"p vs {name} (t; W)", f"MDE; seeds vs {name}")
                for i, metric in enumerate(metrics):
                    table.rows.append([setup, metric, "ours", *[text[i] for text in texts]]
                                      + ([""] if with_improvement else []))
    table.notes = [STD_NOTE, INCOMPLETE_NOTE,
                   "Each loss at the λ with the best mean validation accuracy (choosing by test accuracy "
                   "would leak the test set); ties go to the smaller λ.",
                   "Improv. (%): Latent Boost relative to the baseline, (LB − baseline) / |baseline| × 100.",
                   *code_notes(best), *([COMPARISON_NOTE, POWER_NOTE] if tests else [])]
    if any(row[2] == "paper" for row in table.rows):
        table.notes.append("Paper: Table 2 (its best λ: 0.75 for Fashion-MNIST and CIFAR-10, 0.5 for "
                           "CIFAR-100), beside runs with the paper's own settings only.")
    return say_setup_once(table, best)


def _summary_tests(best: pd.DataFrame, runs: pd.DataFrame, labels: list[str]) -> dict:
    """{(setup, loss label, the baseline or the predecessor): comparison} of the summary table, Holm-adjusted
    over all of them: each loss against the baseline, Latent Boost against Magnet."""
    keys, family = [], []
    for first, group in by_setup(best):
        by_label = {cell["loss_label"]: cell for _, cell in group.iterrows()}
        for label in labels:
            for against in (BASELINE, PREDECESSOR):
                if label in by_label and against in by_label and label != against \
                        and (against == BASELINE or label == PROPOSED):
                    keys.append((setup_title(first), label, against))
                    family.append(paired(seed_values(runs, by_label[label], METRIC),
                                         seed_values(runs, by_label[against], METRIC)))
    return dict(zip(keys, with_holm(family), strict=True))


def _paper_summary(by_label: dict, label: str, table: int, dataset: str, metric: str):
    """The paper's Table 2/3 value for a loss column, when our runs of it use the paper's settings."""
    if label not in by_label or not by_label[label]["paper_settings"]:
        return None
    return published.lookup(table, dataset, label, None, metric)


def _improvement_of(by_label: dict, metric: str) -> str:
    if BASELINE not in by_label or PROPOSED not in by_label:
        return "—"
    return improvement(by_label[PROPOSED][f"{metric}_mean"], by_label[BASELINE][f"{metric}_mean"])


def _paper_improvement(refs: list, labels: list[str]) -> str:
    ref = dict(zip(labels, refs, strict=False))
    if ref.get(BASELINE) is None or ref.get(PROPOSED) is None:
        return ""
    return improvement(float(ref[PROPOSED].mean), float(ref[BASELINE].mean))


def silhouette_table(best: pd.DataFrame) -> Table:
    """Table 3: silhouette of the full-dimensional test latents at each loss's best λ."""
    table, labels, with_improvement = _loss_columns_table(
        best, "silhouette", "Silhouette of the test latents (Table 3)", ["Setup", "Source"])
    table.text_columns = 2
    for first, group in by_setup(best):
        by_label = {cell["loss_label"]: cell for _, cell in group.iterrows()}
        setup = setup_name(first)
        row = [setup, "ours", *_per_loss(by_label, labels, lambda c: mean_std(c, "silhouette_test", 3))]
        if with_improvement:
            row.append(_improvement_of(by_label, "silhouette_test"))
        table.rows.append(row)
        refs = [_paper_summary(by_label, x, 3, first["dataset"], "silhouette") for x in labels]
        if any(refs):
            row = [setup, "paper", *[r.text() if r else "" for r in refs]]
            if with_improvement:
                row.append(_paper_improvement(refs, labels))
            table.rows.append(row)
    table.notes = [STD_NOTE, INCOMPLETE_NOTE,
                   "Silhouette (Eq. 12, Euclidean) of the test set's latents in full dimension, true labels, "
                   "at the λ of the summary table. The paper reports one trial per cell (no ±)."]
    return say_setup_once(table, best)


# ---------------------------------------------------------------------- cluster quality

CLUSTER_COLUMNS = [  # (column, header, digits)
    ("cluster.kmeans.hungarian_accuracy", "K-Means acc.", 4),
    ("cluster.kmeans.ari", "K-Means ARI", 4),
    ("cluster.kmeans.v_measure", "K-Means V", 4),
    ("cluster.gmm.hungarian_accuracy", "GMM acc.", 4),
    ("cluster.gmm.ari", "GMM ARI", 4),
    ("cluster.gmm.v_measure", "GMM V", 4),
    ("cluster.true_labels.silhouette", "Silhouette", 3),
    ("cluster.true_labels.davies_bouldin", "Davies-Bouldin", 3),
    ("cluster.true_labels.calinski_harabasz", "Calinski-Harabasz", 1),
]


def cluster_table(cells: pd.DataFrame) -> Table | None:
    count = "cluster.kmeans.hungarian_accuracy_n"
    if count not in cells or not (cells[count] > 0).any():
        return None
    table = Table("cluster_quality", "Cluster quality of the test latents (`latentexp analyze`)",
                  ["Setup", "Loss", "λ", "Analysed", "GMM cov.",
                   *[header for _, header, _ in CLUSTER_COLUMNS]])
    for first, group in by_setup(cells[cells[count] > 0]):
        for _, cell in group.iterrows():
            table.rows.append([setup_name(first), loss_name(cell), lambda_text(cell["lambda"]),
                               f"{int(cell[count])}/{cell['seeds_asked']}", cell.get("gmm_covariance") or "",
                               *[mean_std(cell, column, digits) for column, _, digits in CLUSTER_COLUMNS]])
    table.notes = [STD_NOTE, f"{INCOMPLETE}: fewer analysed seeds than the sweep asked for (see Analysed).",
                   "K-Means and a Gaussian mixture (covariance type in GMM cov.; a cell that lists two mixes "
                   "analyses) with k = classes, scored against the true labels "
                   "(acc. after Hungarian matching); silhouette, Davies-Bouldin and Calinski-Harabasz of the "
                   "true-label partition."]
    return say_setup_once(table, cells[cells[count] > 0])


# ---------------------------------------------------------------------- ablation

ABLATION_ROWS = [("test_accuracy", "Accuracy (%)", 2), ("silhouette_test", "Silhouette", 3),
                 ("epochs_run", "Epochs", 1)]


def ablation_tables(cells: pd.DataFrame, runs: pd.DataFrame) -> list[Table]:
    """Per setup where Latent Boost ran with more than one set of parameters at one λ (the
    `paper_ablation_<ds>` presets): the baseline, Magnet and every Latent Boost variant at that
    λ, each compared (paired) with Latent Boost as published and with the baseline."""
    tables = []
    for first, group in by_setup(cells[cells["n"] > 0]):
        lb = group[group["loss"] == PROPOSED]
        counts = lb.groupby("lambda")["loss_label"].nunique()
        if counts.empty or counts.max() < 2:
            continue
        lam = float(counts[counts == counts.max()].index.min())  # the λ the variants share
        at_lam = group[(group["lambda"] - lam).abs() < 1e-9]
        full = at_lam[(at_lam["loss"] == PROPOSED) & (at_lam["loss_changes"] == "")]
        base = group[group["loss"] == BASELINE]
        predecessor = at_lam[(at_lam["loss"] == PREDECESSOR) & (at_lam["loss_changes"] == "")]
        variants = at_lam[(at_lam["loss"] == PROPOSED) & (at_lam["loss_changes"] != "")]
        rows = [cell for part in (base, predecessor, full, variants) for _, cell in part.iterrows()]
        keys, family = [], []
        for cell in rows:
            for name, reference in (("lb", full), ("base", base)):
                # The baseline against Latent Boost is Latent Boost's row against the baseline.
                if name == "lb" and is_baseline_cell(cell):
                    continue
                if not reference.empty and cell["loss_label"] != reference.iloc[0]["loss_label"]:
                    keys.append((cell["loss_label"], name))
                    family.append(paired(seed_values(runs, cell, METRIC),
                                         seed_values(runs, reference.iloc[0], METRIC)))
        tests = dict(zip(keys, with_holm(family), strict=True))
        table = Table(f"ablation_{setup_key(first)}",
                      f"Ablation at λ = {lambda_text(lam)}: {setup_title(first)}",
                      ["Variant", *[label for _, label, _ in ABLATION_ROWS], "Seeds",
                       "Δ acc. vs Latent Boost", "p (t; W)", "MDE; seeds", "Δ acc. vs baseline", "p (t; W)",
                       "MDE; seeds"])
        for cell in rows:
            # Named by what differs from the loss's defaults, not from the other runs of the sweep.
            name = loss_title(cell["loss"]) + \
                (f" ({cell['loss_changes']})" if cell["loss_changes"] else "")
            row = [name, *[mean_std(cell, metric, digits) for metric, _, digits in ABLATION_ROWS],
                   seeds_text(cell)]
            for reference in ("lb", "base"):
                t = tests.get((cell["loss_label"], reference))
                row += t.texts(of=cell["n"]) if t else ["—", "—", "—"]
            table.rows.append(row)
        table.notes = [STD_NOTE, INCOMPLETE_NOTE, COMPARISON_NOTE, POWER_NOTE,
                       "Latent Boost: as published (PCA, per-class variances, the α/β schedules, the hinge); "
                       "each variant names the parameters it changes (conf/ablation/). With the other "
                       "two changes off, a variant is Magnet with one change added (ε = 1e-8 apart)."]
        tables.append(table)
    return tables
