"""Cluster metrics against scikit-learn, Hungarian matching, and `latentexp analyze` on a real run."""

import json

import numpy as np
import pytest
from sklearn import metrics
from sklearn.datasets import make_blobs
from support.helpers import cli

from latentexp.launch.training import run
from latentexp.metrics.clustering import (
    cluster_quality,
    external_indices,
    hungarian_accuracy,
    internal_indices,
)
from latentexp.report import analysis
from latentexp.runs.rundir import RunDir


def blobs(n=300, k=4, d=6, seed=0, spread=0.5):
    x, y = make_blobs(n_samples=n, centers=k, n_features=d, cluster_std=spread, random_state=seed)
    return x, y


def test_hungarian_accuracy_on_a_permuted_labelling_is_one():
    y = np.repeat(np.arange(5), 20)
    permuted = np.array([3, 0, 4, 1, 2])[y]
    assert hungarian_accuracy(y, permuted) == 1.0


def test_hungarian_accuracy_by_hand():
    # Clusters {0,1,2} vs classes: best matching gets 4 of 6 right.
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([1, 1, 0, 2, 2, 0])
    assert hungarian_accuracy(y_true, y_pred) == pytest.approx(4 / 6)


def test_indices_equal_scikit_learn_on_fixed_data():
    x, y = blobs(spread=2.0)
    pred = (x[:, 0] > np.median(x[:, 0])).astype(int) + 2 * (x[:, 1] > np.median(x[:, 1]))
    ext = external_indices(y, pred)
    assert ext["ari"] == metrics.adjusted_rand_score(y, pred)
    assert ext["v_measure"] == pytest.approx(metrics.v_measure_score(y, pred))
    assert ext["homogeneity"] == pytest.approx(metrics.homogeneity_score(y, pred))
    assert ext["completeness"] == pytest.approx(metrics.completeness_score(y, pred))
    internal = internal_indices(x, y)
    assert internal["silhouette"] == pytest.approx(metrics.silhouette_score(x, y))
    assert internal["davies_bouldin"] == pytest.approx(metrics.davies_bouldin_score(x, y))
    assert internal["calinski_harabasz"] == pytest.approx(metrics.calinski_harabasz_score(x, y))


def test_cluster_quality_recovers_well_separated_blobs():
    x, y = blobs()
    result = cluster_quality(x, y, seed=0)
    for method in ("kmeans", "gmm"):
        assert result[method]["hungarian_accuracy"] == 1.0 and result[method]["ari"] == pytest.approx(1.0)
    assert result["true_labels"]["silhouette"] > 0.8
    assert np.isnan(internal_indices(x, np.zeros(len(x), int))["silhouette"])  # one cluster: undefined


@pytest.mark.slow
def test_analyze_a_real_run_and_cache_it(compose_cfg, monkeypatch, tmp_path):
    cfg = compose_cfg("trainer.max_epochs=1", "dataset.limit_train=300", "trainer.batch_size=64")
    result = run(cfg)
    run_dir = tmp_path / "outputs" / "runs" / result["spec"]["name"]
    saved = RunDir(run_dir).load_latents()
    assert saved["latents"].shape == (200, 64) and saved["labels"].shape == (200,)
    assert (saved["predictions"] == saved["labels"]).mean() * 100 == pytest.approx(result["test_accuracy"])

    first = analysis.analyze(run_dir, seed=0)
    assert set(first) >= {"true_labels", "kmeans", "gmm"}
    # Equal to scikit-learn's on the saved latents (float16 -> float64, as analyze reads them).
    expected = cluster_quality(saved["latents"].astype(np.float64), saved["labels"], seed=0)
    for method in ("kmeans", "gmm"):
        assert first[method] == pytest.approx(expected[method]), method
    assert json.loads((run_dir / "analysis.json").read_text())["kmeans"] == first["kmeans"]
    with np.load(run_dir / "tsne.npz") as tsne:
        assert tsne["embedding"].shape == (200, 2)
    never = lambda *a, **k: pytest.fail("recomputed a cached analysis")  # noqa: E731
    monkeypatch.setattr(analysis, "cluster_quality", never)
    assert analysis.analyze(run_dir, seed=0) == first


@pytest.mark.slow
def test_analyze_cli_refuses_a_directory_without_latents(tmp_path, capfd):
    assert cli("analyze", str(tmp_path / "nope")) == 2
    said = capfd.readouterr().err
    assert "test_latents.npz does not exist" in said and "Traceback" not in said


def test_a_truncated_analysis_cache_is_computed_again_not_a_traceback(tmp_path, caplog):
    x, y = blobs(n=60, k=3, d=4)
    files = RunDir(tmp_path / "run")
    files.path.mkdir()
    files.save_latents(x, y, y)
    first = analysis.analyze(files.path, seed=0)
    embedding, _ = analysis.tsne_of(files.path)
    files.analysis.write_text(files.analysis.read_text()[:40])  # killed by hand mid-copy, say
    files.tsne.write_bytes(files.tsne.read_bytes()[:100])
    assert analysis.tsne_of(files.path, compute=False) is None
    assert "tsne.npz is unreadable" in caplog.text and "--force" in caplog.text
    assert analysis.analyze(files.path, seed=0) == first  # seeded: the same numbers
    assert "analysis.json is unreadable" in caplog.text
    again, _ = analysis.tsne_of(files.path)
    assert np.allclose(again, embedding)


def test_analyze_shows_its_steps_as_bars_on_a_terminal_and_as_lines_elsewhere(tmp_path, monkeypatch, capsys):
    from latentexp import progress

    x, y = blobs(n=60, k=3, d=4)
    files = RunDir(tmp_path / "run")
    files.path.mkdir()
    files.save_latents(x, y, y)
    analysis.analyze(files.path, seed=0)
    assert capsys.readouterr().err.splitlines()[0].startswith("analyze run 1/2: K-Means")
    monkeypatch.setattr(progress, "shown", lambda: True)
    analysis.analyze(files.path, seed=0, force=True)
    err = capsys.readouterr().err
    assert "analyze run" in err and "K-Means, GMM and indices of 60 latents" in err and "t-SNE of 60" in err
