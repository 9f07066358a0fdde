"""Pieces that must stay exact while getting fast: the device silhouette, and the benchmark's
output shape (its figures are measured by the benchmark itself, never asserted here)."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_score

from latentexp.metrics.latent import silhouette


def blobs(n=600, d=32, k=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (k, d))
    labels = rng.integers(0, k, n)
    return centres[labels] + rng.normal(0, 1.5, (n, d)), labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_device_silhouette_matches_scikit_learn(seed, monkeypatch):
    x, y = blobs(seed=seed)
    expected = silhouette_score(x, y)
    assert silhouette(x, y) == pytest.approx(expected, abs=1e-10)  # float64 on the CPU
    assert silhouette(x.astype(np.float32), y, dtype=torch.float32) == pytest.approx(expected, abs=1e-4)
    monkeypatch.setattr("latentexp.metrics.latent.SILHOUETTE_CHUNK", 7)  # chunks that do not divide N
    assert silhouette(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(expected, abs=1e-10)


def test_device_silhouette_edge_cases():
    x, y = blobs(n=50, k=3)
    y[0] = 99  # a class with one sample scores 0, as in scikit-learn
    assert silhouette(x, y) == pytest.approx(silhouette_score(x, y), abs=1e-10)
    x[:10] = x[0]  # duplicate points: zero distances (both sides round the expansion differently)
    assert silhouette(x, y) == pytest.approx(silhouette_score(x, y), abs=1e-6)
    assert np.isnan(silhouette(x, np.zeros(50, int)))  # one class: undefined
    assert np.isnan(silhouette(x, np.arange(50)))  # every sample its own class: undefined


@pytest.mark.slow
def test_bench_quick_json_has_the_documented_shape(capsys):
    from latentexp.cli import main

    main(["bench", "--quick", "--json", "--device", "cpu", "--losses", "ce,latent_boost"])
    report = json.loads(capsys.readouterr().out)
    assert {"device", "versions", "results", "evaluation", "pca"} <= set(report)
    assert [(r["model"], r["loss"]) for r in report["results"]] == [("cnn", "ce"), ("cnn", "latent_boost")]
    for row in report["results"]:
        for key in ("trainer_samples_per_s", "minimal_samples_per_s", "trainer_vs_minimal", "step_vs_ce"):
            assert isinstance(row[key], float) and row[key] > 0, key
        assert row["device"].startswith("cpu")
    assert report["results"][0]["step_vs_ce"] == 1.0
    assert report["pca"][0]["latent_dim"] == 64 and report["evaluation"][0]["test_samples"] == 256


def test_bench_refuses_unknown_names():
    from latentexp.bench import main
    from latentexp.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown model"):
        main(["--quick", "--models", "cnn,alexnet"])
