"""`latentexp report` on hand-written result.json sets: exact numbers, best-λ choice, marks, golden files."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from support.runs import finished, run_config, write_run

from latentexp.errors import ConfigError, DataError
from latentexp.report.cells import best_cells, summarise_cells
from latentexp.report.collect import collect_runs
from latentexp.report.command import build_report
from latentexp.report.published import published_values, table1_disagreement
from latentexp.report.render import tex_escape
from latentexp.report.tables import mean_std

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def sweep(written_sweep) -> Path:
    return written_sweep


def cell(cells: pd.DataFrame, loss: str, lam: float) -> pd.Series:
    hit = cells[(cells["loss"] == loss) & ((cells["lambda"] - lam).abs() < 1e-9)]
    assert len(hit) == 1, (loss, lam)
    return hit.iloc[0]


@pytest.mark.slow
def test_cells_have_exact_mean_std_and_seed_counts(sweep):
    runs = collect_runs([sweep])
    assert len(runs) == 21 and set(runs["status"]) == {"finished", "failed", "started"}
    cells = summarise_cells(runs)
    base = cell(cells, "ce", 0.0)
    assert base["test_accuracy_mean"] == pytest.approx(89.0)
    assert base["test_accuracy_std"] == pytest.approx(1.0)
    assert base["epochs_run_mean"] == pytest.approx(42.0) and base["epochs_run_std"] == pytest.approx(2.0)
    assert (base["n"], base["seeds_asked"], base["complete"]) == (3, 3, True)
    lb = cell(cells, "latent_boost", 0.75)  # two finished, one failed
    assert (lb["n"], lb["n_failed"], lb["complete"]) == (2, 1, False)
    assert lb["test_accuracy_std"] == pytest.approx(0.7071067811865476)  # ddof = 1
    triplet = cell(cells, "triplet", 0.5)  # only an unfinished run
    assert (triplet["n"], triplet["n_started"]) == (0, 1) and pd.isna(triplet["test_accuracy_mean"])
    assert summarise_cells(runs, asked=5)["seeds_asked"].eq(5).all()


def test_best_lambda_is_chosen_by_validation_accuracy_preferring_complete_cells(sweep):
    best = best_cells(summarise_cells(collect_runs([sweep]))).set_index("loss")
    assert best.loc["magnet", "lambda"] == 0.5  # λ=0.75 has the better *test* accuracy
    assert best.loc["latent_boost", "lambda"] == 0.25  # the partial λ=0.5 cell validates better
    assert best.loc["ce", "lambda"] == 0.0 and "triplet" not in best.index  # nothing finished


def test_report_markdown_and_latex_match_golden_files(sweep, tmp_path):
    report = build_report([sweep], tmp_path / "report", formats=("md", "tex", "csv"), with_figures=False)
    for name in ("report.md", "report.tex"):
        text = (tmp_path / "report" / name).read_text()
        if os.environ.get("LATENTEXP_UPDATE_GOLDEN") == "1":
            (GOLDEN / name).write_text(text)
        assert text == (GOLDEN / name).read_text(), f"{name} differs from tests/golden/{name}"
    assert report["markdown"] == (tmp_path / "report" / "report.md").read_text()
    cells = pd.read_csv(tmp_path / "report" / "cells.csv")
    assert len(cells) == 8 and {"test_accuracy_mean", "test_accuracy_std", "n", "seeds"} <= set(cells.columns)


def test_marks_in_markdown(sweep, tmp_path):
    text = build_report([sweep], tmp_path / "r", formats=("md",), with_figures=False)["markdown"]
    assert "| Latent Boost | 0.75 | 92.50 ± 0.71‡ | 0.9250 ± 0.0071‡ | 2/3 (1 failed) |" in text
    assert "| Triplet | 0.5 | — | — | 0/3 (1 unfinished) | — | — | — |" in text
    baseline = "| Baseline | 0 | 89.00 ± 1.00 | 0.8900 ± 0.0100 | 3 | — | — | — | 88.59 ± 0.15 |"
    assert baseline in text
    # Paired with the baseline by seed. Magnet λ=0.5: 1.5, 1, 0.5 → mean 1, sd 0.5, 1 ± 4.303·0.5/√3,
    # t = 3.464, p = 0.0742. Of the table's six comparisons, LB 0.5 and 0.75 move each seed alike (no
    # t-test); Magnet 0.75 p = 0.0131, LB 0.25 and ArcFace p = 0.0351; Holm over those four:
    # 4·0.0131 = 0.052, then max(3·0.0351, 2·0.0351, 0.0742) = 0.105. The exact Wilcoxon p of 3
    # pairs is 0.25 (of 2: 0.5), Holm over six → 1.
    # MDE: sd 0.5 of the differences with 3 seeds, 0.5 · 3.264 = 1.63; Magnet 0.5's Δ of 2 sd needs 5
    # seeds, Magnet 0.75's 5 sd needs the 3 it has (2 seeds detect only 0.5 · 11.55 = 5.77).
    assert "| 0.9000 ± 0.0050 | 3 | +1.00 [-0.24, +2.24] | 0.105; 1.000 | 1.63; 5 |" in text  # Magnet 0.5
    assert "| 0.9150 ± 0.0050 | 3 | +2.50 [+1.26, +3.74] | 0.052; 1.000 | 1.63; 3 |" in text  # Magnet 0.75
    assert "| 2/3 | +2.00 [+2.00, +2.00] | —; 1.000 | — |" in text
    # Table 2: Latent Boost (λ=0.25) against Magnet (λ=0.5): 0.5 on every seed.
    assert "| Δ acc. vs Magnet | ours |  |  | +0.50 [+0.50, +0.50] |  |  |" in text
    # Improvement of Latent Boost (λ=0.25, 90.50) over the baseline (89.00): +1.69 %; the paper's +2.56 %.
    assert "| 89.00 ± 1.00 | 90.00 ± 0.50 | 90.50 ± 0.50 | 87.50 ± 0.50 | +1.69 |" in text
    assert "| +2.56 |" in text
    # No λ, no paper cell.
    arcface = ("| ArcFace | — | 87.50 ± 0.50 | 0.8750 ± 0.0050 | 3 | -1.50 [-2.74, -0.26] | 0.105; 1.000 "
               "| 1.63; 4 |")
    assert arcface + "  |  |" in text


@pytest.mark.slow
def test_figures_are_written_as_png_and_pdf(sweep, tmp_path):
    files = build_report([sweep], tmp_path / "r", formats=(), tsne=False)["files"]
    names = {f.name for f in files}
    for stem in ("accuracy_vs_lambda_fashion_mnist-cnn", "alpha_beta_schedule_100_epochs",
                 "training_curves_fashion_mnist-cnn", "pca_components_fashion_mnist-cnn"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    assert all(f.stat().st_size > 1000 for f in files)


@pytest.mark.slow
def test_runs_with_other_settings_are_never_averaged_together(tmp_path):
    root = tmp_path / "outputs"
    for seed in (0, 1):
        finished(root, "magnet", 0.5, seed, 90.0, 90.0, alpha=1.0)
        finished(root, "magnet", 0.5, seed, 80.0, 80.0, max_epochs=2, alpha=1.0)
        finished(root, "magnet", 0.5, seed, 70.0, 70.0, alpha=2.0)
    cells = summarise_cells(collect_runs([root])).set_index("test_accuracy_mean")
    assert sorted(cells.index) == [70.0, 80.0, 90.0] and cells["n"].eq(2).all()
    assert cells.loc[80.0, "setup"] == "trainer.max_epochs=2" and cells.loc[80.0, "loss_label"] == "magnet"
    assert cells.loc[90.0, "setup"] == cells.loc[70.0, "setup"] == "trainer.max_epochs=100"
    # Magnet's default α = 1 keeps the plain name; the parameter that differs from it is named.
    assert (cells.loc[90.0, "loss_label"], cells.loc[70.0, "loss_label"]) == ("magnet", "magnet (alpha=2.0)")


def test_searched_values_are_labelled_short_but_never_merged(tmp_path):
    def labels(root, values):
        for seed, T in enumerate(values):
            finished(root, "latent_boost", 0.5, seed, 90.0 + seed, 90.0, T=T)
        return sorted(set(collect_runs([root])["loss_label"]))

    # An Optuna search's T values: four significant digits tell them apart, and 0.9 stays 0.9.
    assert labels(tmp_path / "search", (0.9035278047694104, 0.9358859796107597, 0.9)) == [
        "latent_boost (T=0.9)", "latent_boost (T=0.9035)", "latent_boost (T=0.9359)"]
    # Two that differ in the seventh digit keep seven: a label names a variant, two never merge.
    assert labels(tmp_path / "close", (0.9123451, 0.9123452, 0.9035278047694104)) == [
        "latent_boost (T=0.9035278)", "latent_boost (T=0.9123451)", "latent_boost (T=0.9123452)"]


def test_a_run_found_twice_counts_once(tmp_path):
    import shutil

    run_dir = finished(tmp_path / "a", "ce", 0.0, 0, 88.0, 88.0)
    shutil.copytree(run_dir, tmp_path / "b" / "runs" / run_dir.name)
    assert len(collect_runs([tmp_path / "a", tmp_path / "b", run_dir])) == 1


def test_bad_report_input_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        collect_runs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no latentexp runs"):
        collect_runs([tmp_path / "empty"])
    finished(tmp_path / "one", "ce", 0.0, 0, 88.0, 88.0)
    with pytest.raises(ConfigError, match="unknown report format"):
        build_report([tmp_path / "one"], tmp_path / "r", formats=("html",))
    broken = write_run(tmp_path / "bad", run_config("ce", 0.0, 0), accuracy=1.0)
    (broken / "result.json").write_text("{not json")
    with pytest.raises(DataError, match="no readable latentexp runs .*1 left out as unreadable"):
        collect_runs([tmp_path / "bad"])  # the warning names the file (tests/test_shared_tree.py)


def test_published_values_are_complete_and_consistent():
    values = published_values()
    counts = values.groupby("table").size().to_dict()
    assert counts == {1: 78, 2: 27, 3: 9, 5: 90, 6: 90, 7: 90, 8: 66}
    assert not values.duplicated(["table", "dataset", "loss", "lambda", "metric"]).any()
    # Table 1 repeats the appendix grid for Fashion-MNIST and CIFAR-10 ...
    for dataset, appendix in (("fashion_mnist", 5), ("cifar10", 6)):
        main = values[(values["table"] == 1) & (values["dataset"] == dataset)]
        grid = values[values["table"] == appendix].set_index(["dataset", "loss", "lambda", "metric"])
        for _, row in main.iterrows():
            assert float(grid.loc[(dataset, row["loss"], row["lambda"], row["metric"]), "mean"]) == \
                float(row["mean"])
    # ... but not for CIFAR-100, where the report says so.
    assert table1_disagreement("cifar100", "contrastive", 0.75, "accuracy").mean == "54.91"
    assert table1_disagreement("fashion_mnist", "magnet", 0.75, "accuracy") is None


def test_latex_escaping():
    assert tex_escape("a_b 1 ± 2‡ λ {x} 5%") == r"a\_b 1 $\pm$ 2$^\ddagger$ $\lambda$ \{x\} 5\%"


def test_published_values_only_beside_runs_with_the_papers_settings(tmp_path):
    root = tmp_path / "outputs"
    for seed in (0, 1):
        finished(root, "magnet", 0.5, seed, 90.0, 90.0, alpha=5.0)  # not the paper's Magnet
        finished(root, "ce", 0.0, seed, 88.0, 88.0, max_epochs=5)  # not the paper's protocol
    text = build_report([root], tmp_path / "r", formats=("md",), with_figures=False)["markdown"]
    assert "88.59" not in text and "89.07" not in text and "Paper accuracy" not in text
    assert "| paper |" not in text


def test_a_nan_metric_is_marked_and_never_picks_the_best_lambda(tmp_path):
    root = tmp_path / "outputs"
    for seed in range(3):
        finished(root, "latent_boost", 0.5, seed, 90.0, float("nan") if seed == 0 else 95.0,
                 silhouette=float("nan") if seed == 0 else 0.4)
        finished(root, "latent_boost", 0.75, seed, 90.0, 94.0)
    cells = summarise_cells(collect_runs([root]))
    assert best_cells(cells).iloc[0]["lambda"] == 0.75  # 0.5's mean of 95 would miss a seed
    text = build_report([root], tmp_path / "r", formats=("md",), with_figures=False)["markdown"]
    assert "| Latent Boost | 0.5 | 90.00 ± 0.00 |" in text  # accuracy has all three seeds
    nan_cell = cell(cells, "latent_boost", 0.5)
    assert nan_cell["silhouette_test_n"] == 2 and mean_std(nan_cell, "silhouette_test", 3) == "0.400 ± 0.000‡"
    assert mean_std(nan_cell, "test_accuracy", 2) == "90.00 ± 0.00"  # all three seeds: no mark


def test_a_setting_missing_from_older_runs_is_not_the_same_as_null(tmp_path):
    root = tmp_path / "outputs"
    finished(root, "magnet", 0.5, 0, 80.0, 80.0)
    config = run_config("magnet", 0.5, 0)
    del config["dataset"]["limit_test"]  # as written before dataset.limit_test existed
    write_run(root / "old", config, test_accuracy=70.0, val_accuracy_best=70.0)
    finished(root, "magnet", 0.5, 1, 90.0, 90.0)
    cells = summarise_cells(collect_runs([root]))
    assert sorted(cells["n"]) == [1, 2] and sorted(cells["test_accuracy_mean"]) == [70.0, 85.0]
    assert set(cells["setup"]) == {"dataset.limit_test=<missing>", "dataset.limit_test=null"}


def test_configs_of_other_tools_are_ignored(tmp_path):
    finished(tmp_path, "ce", 0.0, 0, 88.0, 88.0)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.yaml").write_text("loss: mse\ndataset: foo\n")
    assert len(collect_runs([tmp_path])) == 1


def test_runs_written_before_the_run_spec_are_left_out_with_a_warning(tmp_path, caplog):
    from latentexp.runs.status import OLD_FORMAT, run_states

    finished(tmp_path, "ce", 0.0, 0, 88.0, 88.0)
    old = tmp_path / "runs" / "fashion_mnist-cnn-ce-lam0-seed1-0123456789"  # as latentexp 0.1 wrote it
    old.mkdir(parents=True)
    config = run_config("ce", 0.0, 1)
    old_result = {"config": config, "status": "finished", "test_accuracy": 99.0}
    (old / "result.json").write_text(json.dumps(old_result))
    with caplog.at_level("WARNING", logger="latentexp"):
        runs = collect_runs([tmp_path])
    assert len(runs) == 1 and 99.0 not in set(runs["test_accuracy"])
    assert "1 run(s)" in caplog.text and "before latentexp 0.2" in caplog.text
    states = {row["run"]: row["state"] for row in run_states([tmp_path])}
    assert states[old.name] == OLD_FORMAT and list(states.values()).count("finished") == 1


def test_every_shipped_loss_declares_its_title_and_a_place_of_its_own():
    from latentexp.config.components import loss_names
    from latentexp.report.roles import UNPLACED, loss_place, loss_title

    places = [loss_place(name) for name in loss_names()]
    assert all(loss_title(name) != name for name in loss_names()) and UNPLACED not in places
    assert len(set(places)) == len(places)
    titles = [loss_title(name) for name in ("latent_boost", "ce", "corel_gaussian")]
    assert titles == ["Latent Boost", "Baseline", "COREL (Gaussian)"]
    assert sorted(loss_names(), key=loss_place)[:3] == ["ce", "magnet", "latent_boost"]


def test_a_loss_without_report_settings_keeps_its_config_name_after_the_others():
    from latentexp.report.roles import loss_place, loss_title
    from latentexp.report.tables import ordered

    assert loss_title("my_loss") == "my_loss"
    losses = ["my_loss", "sphereface", "ce"]
    cells = pd.DataFrame({"loss": losses, "loss_label": losses, "lambda": [0.5, None, 0.0]})
    assert list(ordered(cells)["loss"]) == ["ce", "sphereface", "my_loss"]
    assert loss_place("my_loss") > loss_place("sphereface")


@pytest.mark.slow
@pytest.mark.parametrize("study", ["pilot_fashion_mnist"])
def test_the_committed_reports_regenerate_unchanged(study, tmp_path):
    """docs/results/<study>/report/ is what `latentexp report docs/results/<study>` writes today."""
    committed = Path(__file__).parents[1] / "docs" / "results" / study
    build_report([committed], tmp_path, formats=("md", "tex"), with_figures=False)
    for name in ("report.md", "report.tex"):
        assert (tmp_path / name).read_text() == (committed / "report" / name).read_text(), name


def test_fig_2_takes_the_next_best_trial_where_the_best_kept_no_latents(sweep, tmp_path, monkeypatch):
    """A run copied with its small files only has no latents: its column shows the next best seed."""
    import numpy as np

    from latentexp.io import write_npz
    from latentexp.report import figures
    from latentexp.runs.rundir import RunDir

    runs = collect_runs([sweep])
    best = best_cells(summarise_cells(runs))
    lb = best[best["loss"] == "latent_boost"].iloc[0]
    trials = runs[(runs["loss"] == "latent_boost") & ((runs["lambda"] - lb["lambda"]).abs() < 1e-9)
                  & (runs["status"] == "finished")].sort_values("val_accuracy_best", ascending=False)
    assert len(trials) >= 2 and not any(RunDir(d).tsne.exists() for d in trials["run_dir"])
    runner_up = trials.iloc[1]
    write_npz(RunDir(runner_up["run_dir"]).tsne, embedding=np.zeros((8, 2), np.float32),
              labels=np.arange(8) % 4)
    titles = []
    save = figures.save
    monkeypatch.setattr(figures, "save", lambda fig, out, stem: titles.extend(a.get_title() for a in fig.axes)
                        or save(fig, out, stem))
    written = figures.tsne_panels(runs, best, tmp_path, compute=False)  # cached embeddings only
    assert [p.name for p in written] == ["tsne_fashion_mnist-cnn.png", "tsne_fashion_mnist-cnn.pdf"]
    assert titles == [f"Latent Boost, λ = {lb['lambda']:g}, seed {runner_up['seed']}"]


def test_runs_csv_names_run_directories_relative_to_where_the_report_ran(sweep, tmp_path, monkeypatch):
    """A report committed beside its runs carries no machine's absolute paths; one elsewhere does."""
    monkeypatch.chdir(tmp_path)
    build_report(["outputs"], "report", formats=("csv",), with_figures=False)
    listed = pd.read_csv(tmp_path / "report" / "runs.csv")["run_dir"]
    assert listed.str.startswith("outputs/runs/").all()
    assert all((tmp_path / d).is_dir() for d in listed)
    (tmp_path / "aside").mkdir()
    monkeypatch.chdir(tmp_path / "aside")
    build_report([sweep], tmp_path / "elsewhere", formats=("csv",), with_figures=False)
    assert pd.read_csv(tmp_path / "elsewhere" / "runs.csv")["run_dir"].str.startswith(str(sweep)).all()


def test_collecting_runs_encodes_each_setting_once_per_run_never_once_per_pair(tmp_path, monkeypatch):
    """Labels compare each setting over the runs of a setup. Twice the runs encode twice as many
    values; comparing every run with every other (as the labels once did: 9.75 million
    encodings for 500 runs) encodes four times as many."""
    from latentexp.report import collect
    from latentexp.report.bench import cells, write_runs

    encoded = []
    encode = collect._encode
    monkeypatch.setattr(collect, "_encode", lambda value: encoded.append(value) or encode(value))
    counts = []
    for seeds in (2, 4):
        write_runs(tmp_path / str(seeds), seeds * len(cells()))
        encoded.clear()
        runs = collect_runs([tmp_path / str(seeds)])
        assert len(runs) == seeds * len(cells()) and set(runs["status"]) == {"finished", "failed"}
        assert {"latent_boost (pca=false)", "latent_boost (schedule=false)"} <= set(runs["loss_label"])
        counts.append(len(encoded))
    assert counts[0] > 0 and counts[1] == 2 * counts[0], counts


def test_progress_is_a_bar_on_a_terminal_and_a_line_per_step_elsewhere(sweep, tmp_path, monkeypatch, capsys):
    from latentexp import progress

    build_report([sweep], tmp_path / "piped", formats=("md",), with_figures=False)
    lines = capsys.readouterr().err.splitlines()  # stderr is not a terminal here: plain lines, no bars
    assert lines[0].startswith("finding runs 1/1: ") and "tables 1/5: comparisons" in lines, lines
    assert not any("\r" in line or "[" in line for line in lines)
    monkeypatch.setattr(progress, "shown", lambda: True)
    build_report([sweep], tmp_path / "terminal", formats=("md",), with_figures=False)
    err = capsys.readouterr().err
    assert all(bar in err for bar in ("finding runs", "reading runs:", "/21 [", "tables:")), err


def test_a_setting_that_changes_nothing_is_left_out_of_its_setups_label(tmp_path):
    def trainer(seed: int, **settings) -> dict:
        config = run_config("magnet", 0.5, seed)
        return config | {"trainer": {**config["trainer"], **settings}}

    # m_per_class under the random sampler: the m_per_class runs' label names it, the random ones' not.
    for seed in (0, 1):
        finished(tmp_path / "a", "magnet", 0.5, seed, 90.0, 90.0)
        write_run(tmp_path / "a", trainer(seed, sampler="m_per_class", m_per_class=8), test_accuracy=91.0,
                  val_accuracy_best=91.0, epochs_run=40)
    setups = set(collect_runs([tmp_path / "a"])["setup"])
    assert setups == {"trainer.sampler=random", "trainer.m_per_class=8, trainer.sampler=m_per_class"}
    # Two random-sampler setups told apart by nothing else keep it: a label never names two setups.
    for m in (4, 8):
        write_run(tmp_path / "b", trainer(0, m_per_class=m), test_accuracy=90.0)
    assert set(collect_runs([tmp_path / "b"])["setup"]) == {"trainer.m_per_class=4", "trainer.m_per_class=8"}
