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
    assert {r["dataset"] for r in report["results"]} == {"fashion_mnist"}
    for row in report["results"]:
        for key in ("trainer_samples_per_s", "minimal_samples_per_s", "trainer_vs_minimal", "step_vs_ce"):
            assert isinstance(row[key], float) and row[key] > 0, key
        assert row["device"].startswith("cpu")
    assert report["results"][0]["step_vs_ce"] == 1.0
    assert report["pca"][0]["latent_dim"] == 64 and report["evaluation"][0]["test_samples"] == 256
    limits = report["limits"]
    assert limits["threads"] == torch.get_num_threads()
    for rates in (v for k, v in limits.items() if k != "threads"):
        assert rates["limit_gflops"] == max(rates["matmul_gflops"], rates["conv_gflops"]) > 0
    precisions = [r["precision"] for r in report["roofline"]]
    assert precisions in (["fp32"], ["bf16", "fp32"])  # float32 beside a bf16 default
    for row in report["roofline"]:
        assert row["train_flops_per_sample"] == CNN_TRAIN_FLOPS and row["times_limit"] > 0
        assert row["gflops"] == pytest.approx(row["samples_per_s"] * CNN_TRAIN_FLOPS / 1e9)


# The paper CNN's FLOPs per sample by hand (2 per multiply-add). Forward: conv1 28·28·32·9, conv2
# 14·14·64·32·9, the latent layer 3136·64, the classifier 64·10. Backward: each layer's weight
# gradient (as many as its forward) and the input gradient of all but conv1, whose input needs none.
CNN_FORWARD = 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 3136 * 64 + 64 * 10)
CNN_TRAIN_FLOPS = CNN_FORWARD + CNN_FORWARD + CNN_FORWARD - 2 * 28 * 28 * 32 * 9


def test_the_step_flops_are_the_hand_count():
    from latentexp.bench.roofline import step_flops

    counted = step_flops("cnn", 1, (28, 28), 10)
    assert counted == {"train_flops_per_sample": CNN_TRAIN_FLOPS, "eval_flops_per_sample": CNN_FORWARD}
    assert CNN_TRAIN_FLOPS == 23_787_264  # the figure the speed work started from


def test_the_epoch_at_the_limit_is_its_flops_at_the_limit_rate():
    from latentexp.bench.roofline import against_limit

    flops = {"train_flops_per_sample": 2e7, "eval_flops_per_sample": 1e7}
    row = against_limit(flops, limit_gflops=100.0, train_samples=1000, val_samples=200, samples_per_s=500.0,
                        epoch_seconds=0.66)
    assert row["limit_epoch_seconds"] == pytest.approx((1000 * 2e7 + 200 * 1e7) / 100e9)  # 0.22 s
    assert row["times_limit"] == pytest.approx(3.0) and row["gflops"] == pytest.approx(10.0)


def test_the_limit_is_the_faster_kernel(monkeypatch):
    from latentexp.bench import roofline

    rates = roofline.kernel_rates(torch.device("cpu"), torch.float32, repeats=1, quick=True)
    assert rates["limit_gflops"] == max(rates["matmul_gflops"], rates["conv_gflops"]) > 0


def test_the_cpu_model_is_read_with_its_family_and_vector_extensions(tmp_path):
    from latentexp.runtime import cpu_model

    info = tmp_path / "cpuinfo"
    block = ("processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
             "model name\t: AMD EPYC\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n\n")
    info.write_text(block.format(n=0) + block.format(n=1).replace("AMD EPYC", "another"))
    assert cpu_model(str(info)) == "AMD EPYC (family 26, model 2; avx2 avx512f avx512_bf16)"
    assert cpu_model(str(tmp_path / "missing")) not in ("", None)  # platform's answer instead


def test_bench_refuses_unknown_names():
    from latentexp.bench.command import main
    from latentexp.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown model"):
        main(["--quick", "--models", "cnn,alexnet"])


def test_bench_times_any_backbone_of_conf_model_on_the_paper_datasets_shapes():
    # no table of backbones to edit: a backbone is timed on the data the paper pairs it with, else
    # on Fashion-MNIST, or on the dataset asked for
    from latentexp.bench.command import DATASETS, setup_for
    from latentexp.config.tree import config_groups

    assert setup_for("vgg16").dataset == "cifar10" and setup_for("resnet50").dataset == "cifar100"
    assert setup_for("ffnn").dataset == "fashion_mnist"
    assert setup_for("cnn", "cifar100") == DATASETS["cifar100"]
    for name in config_groups()["model"]:  # each one a shape the benchmark can synthesise
        assert setup_for(name).dataset in DATASETS
