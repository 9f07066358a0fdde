"""Every accelerator branch of the trainer, exercised on the CPU: bf16 autocast with
channels_last, torch.compile, and the fused and foreach optimizers, each for cross-entropy,
Magnet, Latent Boost, a pytorch-metric-learning loss (triplet) and a head loss (ArcFace). Each
trains, stays finite, and resumed after a kill equals the uninterrupted run. The precision a run
trains in is recorded, never mixed within a run, and marked where a table's seeds mix it. What
only a GPU can show is in the ``cuda``-marked tests at the end, which skip without one."""

import copy
import dataclasses
import json
import logging
import math

import pytest
import torch
from support.helpers import assert_same_run, kill_after_checkpoint, make_trainer, synthetic_data
from support.runs import run_config, write_run

from latentexp import runtime
from latentexp.report.cells import summarise_cells
from latentexp.report.collect import collect_runs
from latentexp.report.tables import MIXED_PRECISION, code_notes, seeds_text

LOSSES = [("ce", 0.0), ("magnet", 0.75), ("latent_boost", 0.75), ("triplet", 0.75), ("arcface", 0.0)]
PATHS = {
    "bf16 + channels_last": ("trainer.amp=true", "trainer.channels_last=true"),
    "fused adam": ("+optimizer.fused=true",),
    "foreach adam": ("+optimizer.foreach=true",),
}


@pytest.fixture
def native_bf16(monkeypatch):
    """This CPU computes bf16 natively, whatever the test machine's (runtime.native_bf16 decides)."""
    monkeypatch.setattr(runtime, "native_bf16", lambda device: True)


def straight_and_resumed(tmp_path, monkeypatch, data, *overrides, epochs=2, **kwargs):
    """The same run trained ``epochs`` epochs straight, and killed after its first epoch's
    checkpoint then resumed by a fresh trainer."""
    build = lambda name: make_trainer(data, *overrides, max_epochs=epochs, run_dir=tmp_path / name,  # noqa: E731
                                      **kwargs)
    straight = build("straight")
    straight.fit()
    kill_after_checkpoint(build("killed"), monkeypatch, epoch=1)
    resumed = build("killed")
    assert resumed.resume() and resumed.epoch == 1
    resumed.fit()
    for row in straight.history:
        assert math.isfinite(row["train_loss"]) and math.isfinite(row["train_dist"])
    return straight, resumed


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("loss,lam", LOSSES, ids=[name for name, _ in LOSSES])
def test_each_path_trains_finite_and_resumes_exactly(tmp_path, monkeypatch, native_bf16, loss, lam, path):
    data = synthetic_data(n=128, channels=3)
    if path == "bf16 + channels_last":  # batches in the layout the model's weights have, as run() loads them
        data = dataclasses.replace(data, channels_last=True)
    straight, resumed = straight_and_resumed(tmp_path, monkeypatch, data, *PATHS[path], loss=loss, lam=lam)
    assert_same_run(straight, resumed)
    if path == "bf16 + channels_last":
        assert straight.precision == "bf16"
        conv = straight.model.state_dict()["features.0.weight"]
        assert conv.is_contiguous(memory_format=torch.channels_last)
        batch, _ = next(iter(data.train_batches(32, torch.Generator().manual_seed(0))))
        assert batch.is_contiguous(memory_format=torch.channels_last) and not batch.is_contiguous()
        with straight.autocast():
            out = straight.forward(data.normalize(data.train_x[:4]))
        assert out.features["latent"].dtype == torch.bfloat16  # the model runs in bf16 ...
        _, ce, term = straight.objective(out, data.train_y[:4])
        assert ce.dtype == term.dtype == torch.float32  # ... and the losses in float32
    else:
        group = straight.optimizer.param_groups[0]
        assert group["fused" if path == "fused adam" else "foreach"] is True


@pytest.mark.slow
@pytest.mark.parametrize("loss,lam", LOSSES, ids=[name for name, _ in LOSSES])
def test_a_compiled_model_trains_finite_and_resumes_exactly(tmp_path, monkeypatch, native_bf16, loss, lam):
    """trainer.compile on the smallest model (inductor compiles in C++ on the CPU), in bf16."""
    data = synthetic_data(n=128)
    straight, resumed = straight_and_resumed(tmp_path, monkeypatch, data, "trainer.compile=true",
                                             loss=loss, lam=lam, model="ffnn")
    assert_same_run(straight, resumed)
    assert straight.forward is not straight.model  # the compiled wrapper, not the module


def test_without_native_bf16_the_model_runs_in_float32(monkeypatch):
    monkeypatch.setattr(runtime, "native_bf16", lambda device: False)
    trainer = make_trainer(synthetic_data(n=64), max_epochs=1)
    assert trainer.precision == "fp32" and trainer.autocast_dtype is None
    with trainer.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_amp_false_is_float32_whatever_the_device(native_bf16):
    trainer = make_trainer(synthetic_data(n=64), amp=False)
    assert trainer.precision == "fp32" and trainer.autocast_dtype is None


def test_native_bf16_reads_the_cpu_and_the_kernels_allowed(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    for avx512_bf16, amx, expected in ((True, False, True), (False, True, True), (False, False, False)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert runtime.native_bf16(cpu) is expected
    assert runtime.autocast_dtype(cpu, amp=True) is None  # the last: neither
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    for isa, expected in (("AVX2", False), ("AVX512_CORE", False), ("AVX512_CORE_BF16", True), ("ALL", True),
                          ("AVX512_CORE_AMX", True)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)  # below BF16, oneDNN emulates bf16
        assert runtime.native_bf16(cpu) is expected, isa
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")  # ATEN_CPU_CAPABILITY=avx2
    assert not runtime.native_bf16(cpu)


@pytest.mark.parametrize("major,expected", [(9, "tf32"), (8, "tf32"), (7, "fp32")])
def test_float32_on_cuda_is_named_tf32_only_where_the_gpu_has_it(monkeypatch, major, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, 0))
    assert runtime.precision_name(torch.device("cuda"), None) == expected
    assert runtime.precision_name(torch.device("cuda"), torch.bfloat16) == "bf16"
    assert runtime.precision_name(torch.device("cpu"), None) == "fp32"


def test_a_checkpoint_in_another_precision_is_not_resumed(tmp_path, monkeypatch, caplog):
    """A bf16 run moved to a machine without bf16 trains again from the start: one run's epochs
    never mix two precisions."""
    data = synthetic_data(n=64)
    monkeypatch.setattr(runtime, "native_bf16", lambda device: True)
    first = make_trainer(data, max_epochs=1, run_dir=tmp_path)
    first.fit()
    monkeypatch.setattr(runtime, "native_bf16", lambda device: False)
    elsewhere = make_trainer(data, max_epochs=1, run_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="latentexp"):
        assert not elsewhere.resume() and elsewhere.epoch == 0
    assert "trained in bf16, and this device trains in fp32" in caplog.text


def test_result_records_the_precision(compose_cfg, monkeypatch, tmp_path):
    from latentexp.launch.training import run

    monkeypatch.setattr(runtime, "native_bf16", lambda device: False)
    result = run(compose_cfg("loss=ce", "trainer.max_epochs=1", "dataset.limit_train=200"))
    assert result["status"] == "finished" and result["precision"] == "fp32"
    [written] = (tmp_path / "outputs").glob("runs/*/result.json")
    assert json.loads(written.read_text())["precision"] == "fp32"


def test_latents_are_not_rewritten_in_another_precision(compose_cfg, monkeypatch):
    """A finished bf16 run whose test latents were lost, evaluated again on a machine that would
    predict in float32, is refused with the reason: its rewritten latents would not be the run's."""
    from latentexp.errors import DataError
    from latentexp.launch.training import run
    from latentexp.runs.spec import RunSpec

    monkeypatch.setattr(runtime, "native_bf16", lambda device: True)
    cfg = compose_cfg("loss=ce", "trainer.max_epochs=1", "dataset.limit_train=200")
    assert run(cfg)["precision"] == "bf16"
    files = RunSpec.from_config(cfg).files
    files.latents.unlink()
    monkeypatch.setattr(runtime, "native_bf16", lambda device: False)
    with pytest.raises(DataError, match="rebuild it in fp32 from weights trained in bf16"):
        run(cfg)


@pytest.mark.slow
def test_a_setup_whose_seeds_mix_precisions_is_marked(tmp_path):
    """Within a cell (a mean over bf16 and fp32 seeds) and across the cells of a setup (a
    bf16 baseline compared with an fp32 loss): both mix two computations, both are marked."""
    root = tmp_path / "outputs"
    for seed, precision in enumerate(("bf16", "bf16", "fp32")):
        write_run(root, run_config("magnet", 0.5, seed), test_accuracy=90.0 + seed, val_accuracy_best=90.0,
                  precision=precision)
    for seed in range(3):
        write_run(root, run_config("ce", 0.0, seed), test_accuracy=89.0, val_accuracy_best=89.0,
                  precision="bf16")
        write_run(root, run_config("ce", 0.0, seed, dataset="cifar10", model="vgg16"), test_accuracy=80.0,
                  val_accuracy_best=80.0, precision="bf16")
        write_run(root, run_config("latent_boost", 0.5, seed, dataset="cifar10", model="vgg16"),
                  test_accuracy=81.0, val_accuracy_best=81.0, precision="fp32")
        write_run(root, run_config("ce", 0.0, seed, dataset="cifar100", model="resnet50"), test_accuracy=60.0,
                  val_accuracy_best=60.0, precision="bf16")
    cells = summarise_cells(collect_runs([root])).set_index(["dataset", "loss"])
    assert cells.loc[("fashion_mnist", "magnet"), "precisions"] == "bf16 | fp32"
    mixed = [("fashion_mnist", "magnet"), ("fashion_mnist", "ce"),  # within a cell
             ("cifar10", "ce"), ("cifar10", "latent_boost")]  # across the cells of a setup
    for key in mixed:
        assert cells.loc[key, "mixed_precision"], key
        assert seeds_text(cells.loc[key]).endswith(MIXED_PRECISION)
    assert not cells.loc[("cifar100", "ce"), "mixed_precision"]  # one precision throughout
    assert not seeds_text(cells.loc[("cifar100", "ce")]).endswith(MIXED_PRECISION)
    [note] = code_notes(cells.reset_index())
    assert note.startswith(MIXED_PRECISION)
    assert "Magnet λ=0.5: bf16 | fp32" in note and "Latent Boost λ=0.5: fp32" in note
    assert "cifar100" not in note and note.count("Baseline λ=0: bf16") == 2


# ---------------------------------------------------------------- only on a GPU (pytest -m cuda)


@pytest.mark.cuda
def test_cuda_trainer_takes_every_cuda_branch(tmp_path):
    """bf16 autocast (Ampere and later), channels_last weights and batches, fused Adam, data and
    generator on the GPU, the CUDA random state in the checkpoint; a finite epoch."""
    from support.helpers import make_spec

    from latentexp.data.tensors import DeviceData
    from latentexp.launch.build import build_trainer
    from latentexp.runs.rundir import RunDir

    cuda = torch.device("cuda")
    cpu_data = synthetic_data(n=256)
    data = DeviceData(*(t.to(cuda) if torch.is_tensor(t) else t for t in (
        cpu_data.train_x, cpu_data.train_y, cpu_data.val_x, cpu_data.val_y, cpu_data.test_x, cpu_data.test_y,
        cpu_data.mean, cpu_data.std, cpu_data.num_classes, cpu_data.source)), channels_last=True)
    spec = make_spec("loss=latent_boost", "lambda=0.75", "trainer.max_epochs=1", "trainer.batch_size=32",
                     "trainer.progress=false")
    trainer = build_trainer(spec, data, cuda, RunDir(tmp_path))
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    assert trainer.precision == ("bf16" if native else runtime.precision_name(cuda, None))
    assert trainer.optimizer.param_groups[0]["fused"] is True
    assert trainer.model.state_dict()["features.0.weight"].is_contiguous(memory_format=torch.channels_last)
    assert trainer.generator.device.type == "cuda"
    trainer.fit()
    assert math.isfinite(trainer.history[0]["train_loss"])
    assert "cuda" in trainer.state_dict()["rng"]


@pytest.mark.cuda
@pytest.mark.parametrize("loss", ["magnet", "latent_boost", "center", "corel_cosine", "lace", "lmdl", "amc",
                                  "triplet", "arcface", "sphereface"])
def test_cuda_losses_equal_their_cpu_values(loss):
    """The sync-free code paths (torch.where, gather, fixed-size class means) give on the GPU
    what they give on the CPU."""
    from latentexp.config.components import build_loss

    torch.manual_seed(0)
    features, labels = torch.randn(64, 16, dtype=torch.float64), torch.arange(64) % 8
    classifier = torch.nn.Linear(16, 8).double()  # LMDL reads the model's last layer
    values = []
    for device in ("cpu", "cuda"):
        torch.manual_seed(1)  # the same initial class vectors, centres or signatures on both
        head = copy.deepcopy(classifier).to(device)
        module = build_loss(loss, num_classes=8, embedding_size=16, classifier=head).double().to(device)
        values.append(module(features.to(device), labels.to(device)).item())
    assert values[1] == pytest.approx(values[0], rel=1e-9, abs=1e-12)


@pytest.mark.cuda
def test_cuda_bench_quick_runs(capsys):
    from latentexp.cli import main

    main(["bench", "--quick", "--json", "--device", "cuda", "--losses", "ce,magnet"])
    report = json.loads(capsys.readouterr().out)
    expected = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "tf32"
    assert report["device"].startswith("cuda")
    assert all(r["trainer_samples_per_s"] > 0 and r["precision"] == expected for r in report["results"])
