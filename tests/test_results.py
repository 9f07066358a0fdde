"""Runs in Python: latentexp.load_runs and latentexp.load_history, the functions the report reads."""

import pandas as pd
import pytest

import latentexp
from latentexp.errors import DataError


@pytest.fixture
def sweep(hand_written_runs):
    return hand_written_runs  # read only


def test_load_runs_gives_one_row_per_run_with_its_spec_status_and_metrics(sweep):
    runs = latentexp.load_runs(sweep)
    assert len(runs) == 3 + 3 + 3 + 3 + 2 + 2 + 1 + 1 + 3  # the failed and started ones too
    assert runs["status"].value_counts().to_dict() == {"finished": 19, "failed": 1, "started": 1}
    baseline = runs[(runs["loss"] == "ce") & (runs["seed"] == 1)].iloc[0]
    assert (baseline["dataset"], baseline["model"], baseline["lambda"], baseline["test_accuracy"]) == \
        ("fashion_mnist", "cnn", 0.0, 89.0)
    assert runs[runs["loss"] == "arcface"]["lambda"].isna().all()  # a head loss has no λ
    assert runs[runs["status"] != "finished"]["test_accuracy"].isna().all()
    analysed = runs[runs["cluster.kmeans.ari"].notna()]
    assert analysed[["loss", "seed"]].values.tolist() == [["ce", 0]]
    one = latentexp.load_runs([baseline["run_dir"]])  # a run directory alone, in a list
    assert one["identity"].tolist() == [baseline["identity"]]


def test_load_history_reads_a_run_by_its_directory_or_its_row(sweep):
    runs = latentexp.load_runs(sweep)
    row = runs[(runs["loss"] == "magnet") & (runs["lambda"] == 0.5) & (runs["seed"] == 0)].iloc[0]
    history = latentexp.load_history(row)
    assert isinstance(history, pd.DataFrame) and history["epoch"].tolist() == [1, 2, 3]
    assert history["val_accuracy"].iloc[-1] == pytest.approx(91.0 - 5.0 / 3, abs=1e-4)
    pd.testing.assert_frame_equal(latentexp.load_history(row["run_dir"]), history)


def test_load_history_of_a_run_without_epochs_says_so(sweep):
    runs = latentexp.load_runs(sweep)
    started = runs[runs["status"] == "started"].iloc[0]
    with pytest.raises(DataError, match="has not finished an epoch yet"):
        latentexp.load_history(started)


def test_the_package_exports_them_without_importing_pandas_at_start():
    import subprocess
    import sys

    code = "import sys, latentexp; assert 'pandas' not in sys.modules; latentexp.load_runs; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"
    with pytest.raises(AttributeError, match="no attribute 'load_everything'"):
        latentexp.load_everything  # noqa: B018
