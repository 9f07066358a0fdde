"""`latentexp bench`: how fast the trainer is, against a minimal hand-written loop and per loss.

For each model × loss it times training epochs of our ``Trainer`` on synthetic data already on the
device, and the same model in a minimal loop (pre-normalised float data on the device, the same
batch size, plain Adam and cross-entropy, the same autocast and memory format). Their ratio is
the trainer's overhead; each loss's epoch time over cross-entropy's is its step cost. It also
times the test-set evaluation with the silhouette, Latent Boost's per-batch PCA, and what the
gradient diagnostics (train/diagnostics.py) cost: each auxiliary loss's epoch with the probe on
(the default) over the same epoch with it off. Repeats are
interleaved and the median is kept, so the ratios of one run share the machine's state.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from latentexp.bench.roofline import against_limit, limits, step_flops, timed
from latentexp.config.components import build_model, loss_names
from latentexp.config.tree import compose, config_groups
from latentexp.data import DeviceData
from latentexp.errors import ConfigError
from latentexp.launch.build import build_trainer
from latentexp.losses.pca import pca_project
from latentexp.metrics.latent import silhouette
from latentexp.runs.spec import RunSpec
from latentexp.runtime import (
    autocast_dtype,
    configure_backends,
    device_name,
    model_autocast,
    resolve_device,
    versions,
)
from latentexp.train.trainer import Trainer


@dataclass(frozen=True)
class Setup:
    channels: int
    size: tuple[int, int]
    classes: int
    train_samples: int  # of the paper's training split (90 % of the training set)
    val_samples: int  # evaluated once per epoch
    dataset: str


# The paper's datasets as the benchmark synthesises them: any backbone of conf/model/ runs on one.
DATASETS = {
    "fashion_mnist": Setup(1, (28, 28), 10, 54000, 6000, "fashion_mnist"),
    "cifar10": Setup(3, (32, 32), 10, 45000, 5000, "cifar10"),
    "cifar100": Setup(3, (32, 32), 100, 45000, 5000, "cifar100"),
}


def setup_for(model_name: str, dataset: str | None = None) -> Setup:
    """The data a backbone is timed on: ``dataset`` where given, else the one the paper pairs it
    with (report.published.PAPER_MODELS), else Fashion-MNIST, the smallest."""
    from latentexp.report.published import PAPER_MODELS

    paired = next((d for d, m in PAPER_MODELS.items() if m == model_name), "fashion_mnist")
    return DATASETS[dataset or paired]


DEFAULT_LOSSES = ("ce", "magnet", "latent_boost")
AMP_OFF = "ce (trainer.amp=false)"  # the float32 trainer the roofline times beside a bf16 default
LAMBDA = 0.75


def synthetic_data(
    setup: Setup, n_train: int, n_test: int, device: torch.device, seed: int = 0
) -> DeviceData:
    """Random uint8 images with balanced labels, held on the device like real data."""
    gen = torch.Generator().manual_seed(seed)

    def split(n):
        x = torch.randint(0, 256, (n, setup.channels, *setup.size), generator=gen, dtype=torch.uint8)
        y = torch.arange(n) % setup.classes
        return x.to(device), y.to(device)

    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (
        split(n_train),
        split(setup.classes * 2),
        split(n_test),
    )
    mean = torch.full((1, setup.channels, 1, 1), 0.5, device=device)
    std = torch.full((1, setup.channels, 1, 1), 0.25, device=device)
    return DeviceData(
        train_x,
        train_y,
        val_x,
        val_y,
        test_x,
        test_y,
        mean,
        std,
        setup.classes,
        "synthetic",
        channels_last=True,  # trainer.channels_last's default
    )


def make_trainer(
    model_name: str,
    loss_name: str,
    data: DeviceData,
    device: torch.device,
    batch_size: int,
    compile_model: bool = False,
    diagnostics: bool = True,
    fp32: bool = False,
    amp: bool = True,
) -> Trainer:
    """Our trainer at its defaults, or (``fp32``) with ``trainer.amp=false
    trainer.channels_last=false``: float32 in the NCHW layout, the comparison for the defaults;
    ``amp=False``: float32 in the default layout (``trainer.amp=false``, as the committed protocol
    runs train)."""
    cfg = compose([f"model={model_name}", f"loss={loss_name}", f"lambda={LAMBDA}", "seed=0",
                   "trainer.max_epochs=1000000", f"trainer.batch_size={batch_size}",
                   "trainer.early_stopping_patience=null", "trainer.progress=false",
                   f"trainer.compile={str(compile_model).lower()}"]
                  + ([] if diagnostics else ["trainer.gradient_diagnostics_every=0"])
                  + (["trainer.amp=false", "trainer.channels_last=false"] if fp32 else [])
                  + ([] if amp or fp32 else ["trainer.amp=false"]))
    if fp32:
        data = dataclasses.replace(data, channels_last=False)  # the same tensors, batches left NCHW
    return build_trainer(RunSpec.from_config(cfg, resolve_data=False), data, device)  # synthetic data


def _one_epoch(trainer: Trainer) -> Callable[[], None]:
    return lambda: trainer.fit(epochs=1)


def minimal_loop(
    model_name: str, data: DeviceData, device: torch.device, batch_size: int, compile_model: bool = False,
    amp: bool = True, normalise_each_batch: bool = False,
) -> Callable[[], None]:
    """One epoch of the plainest loop a researcher would write, on pre-normalised data (compiled
    too when the trainer is, so the ratio stays the trainer's own overhead); ``normalise_each_batch``:
    from the uint8 images, each batch normalised as the trainer's are."""
    torch.manual_seed(0)
    model = build_model(model_name, data.in_channels, data.image_size, data.num_classes).to(device)
    x_all = data.normalize(data.train_x)  # float, on the device, once
    y_all = data.train_y
    model = model.to(memory_format=torch.channels_last)  # as x_all is, like the trainer's defaults
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as the trainer builds it
    dtype = autocast_dtype(device, amp=amp)
    generator = torch.Generator(device=device).manual_seed(0)
    forward = torch.compile(model) if compile_model else model

    def epoch() -> None:
        model.train()
        perm = torch.randperm(len(y_all), generator=generator, device=device)
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            x = data.normalize(data.train_x[idx]) if normalise_each_batch else x_all[idx]
            with model_autocast(device, dtype):
                logits = forward(x).logits
            loss = F.cross_entropy(logits.float(), y_all[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return epoch


def bench(
    models: list[str],
    losses: list[str],
    device: torch.device,
    steps: int,
    batch_size: int,
    repeats: int,
    test_samples: int,
    compile_model: bool = False,
    vs_fp32: bool = False,
    dataset: str | None = None,
) -> dict:
    results, evaluation, pca, roofline = [], [], [], []
    limit = limits(device, quick=steps < 10)
    for model_name in models:
        setup = setup_for(model_name, dataset)
        data = synthetic_data(setup, steps * batch_size, test_samples, device)
        trainers = {
            loss: make_trainer(model_name, loss, data, device, batch_size, compile_model)
            for loss in dict.fromkeys(["ce", *losses])
        }
        # The same auxiliary losses with the gradient probe off: the probe's cost.
        without_probe = {
            f"{loss} (no diagnostics)": make_trainer(
                model_name, loss, data, device, batch_size, compile_model, diagnostics=False
            )
            for loss, trainer in trainers.items()
            if trainer.probe.every > 0
        }
        # The same losses in float32 and NCHW: what trainer.amp and trainer.channels_last buy.
        in_fp32 = {
            f"{loss} (fp32)": make_trainer(model_name, loss, data, device, batch_size, compile_model,
                                           fp32=True)
            for loss in trainers
        } if vs_fp32 else {}
        # Cross-entropy in float32 too where the default is bf16: the precision of the protocol runs.
        amp_off = {AMP_OFF: make_trainer(model_name, "ce", data, device, batch_size, compile_model, amp=False)
                   } if trainers["ce"].precision == "bf16" else {}
        minimal = minimal_loop(model_name, data, device, batch_size, compile_model)
        runners = {
            **{name: _one_epoch(t)
               for name, t in {**trainers, **without_probe, **in_fp32, **amp_off}.items()},
            "minimal": minimal,
        }
        for run in runners.values():  # warm-up: allocator, cuDNN autotuning, compilation
            run()
        seconds: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(repeats):  # interleaved, so every configuration sees the same machine state
            for name, run in runners.items():
                seconds[name].append(timed(device, run))
        median = {name: statistics.median(values) for name, values in seconds.items()}
        samples = steps * batch_size
        evaluation.append(_evaluation(model_name, trainers["ce"], device, test_samples))
        pca.append(_pca_timing(model_name, trainers["ce"], device, batch_size))
        # A paper-sized epoch: its training steps plus one evaluation of the validation split.
        val_seconds = setup.val_samples * evaluation[-1]["predict_seconds"] / test_samples
        flops = step_flops(model_name, setup.channels, setup.size, setup.classes)
        for name, trainer in {"ce": trainers["ce"], **amp_off}.items():
            predict_s = _predict_seconds(trainer, device, test_samples) if name == AMP_OFF else \
                evaluation[-1]["predict_seconds"]
            epoch = (setup.train_samples * median[name] / samples
                     + setup.val_samples * predict_s / test_samples)
            rates = limit["bf16" if trainer.precision == "bf16" else "fp32"]
            roofline.append({"model": model_name, "loss": "ce", "precision": trainer.precision, **flops,
                             **against_limit(flops, rates["limit_gflops"], setup.train_samples,
                                             setup.val_samples, samples / median[name], epoch)})
        for loss in losses:
            results.append(
                {
                    "model": model_name,
                    "dataset": setup.dataset,
                    "loss": loss,
                    "device": device_name(device),
                    "precision": trainers[loss].precision,
                    "batch_size": batch_size,
                    "steps": steps,
                    "repeats": repeats,
                    "trainer_samples_per_s": samples / median[loss],
                    "minimal_samples_per_s": samples / median["minimal"],
                    "trainer_vs_minimal": median["minimal"] / median[loss],
                    "step_vs_ce": median[loss] / median["ce"],
                    # null unless --vs-fp32: the fp32 NCHW epoch over the default one (2 = twice as fast)
                    "speedup_vs_fp32": (
                        median[fp32] / median[loss] if (fp32 := f"{loss} (fp32)") in median else None
                    ),
                    # null for a head loss, which has no two terms to probe
                    "diagnostics_vs_off": (
                        median[loss] / median[off] if (off := f"{loss} (no diagnostics)") in median else None
                    ),
                    # The probe's share of an epoch, from the time of one probe: steadier than the
                    # ratio of two whole epochs on a noisy machine.
                    **_probe_cost(trainers[loss], device, median[loss] / steps),
                    "epoch_seconds_estimate": setup.train_samples * median[loss] / samples + val_seconds,
                }
            )
    return {
        "device": device_name(device),
        "versions": versions(),
        "lambda": LAMBDA,
        "limits": limit,
        "roofline": roofline,
        "results": results,
        "evaluation": evaluation,
        "pca": pca,
        "paper_costs": paper_costs(results) if steps >= 10 else [],  # a few steps estimate nothing
    }


def paper_costs(results: list[dict]) -> list[dict]:
    """Device-hours of each paper table for the measured paper backbones: the paper's mean epochs
    per run (its Table 2) × the sum over the distinct runs of the preset of each run's measured
    epoch time (its loss's; cross-entropy's for a loss not measured, listed in the result)."""
    from latentexp.launch.sweeps import PAPER_TABLE_PRESETS, preset_name, preset_specs
    from latentexp.report.published import PAPER_MODELS, published_values

    published = published_values()
    costs = []
    for model_name in dict.fromkeys(r["model"] for r in results):
        dataset = next((r["dataset"] for r in results if r["model"] == model_name), None)
        if PAPER_MODELS.get(dataset) != model_name:
            continue
        rows = {r["loss"]: r for r in results if r["model"] == model_name}
        epochs = published[(published["table"] == 2) & (published["dataset"] == dataset)
                           & (published["metric"] == "epochs")]["mean"].astype(float).mean()
        for table in PAPER_TABLE_PRESETS:
            name = preset_name(table, dataset)
            runs = {spec.name: spec.loss for spec in preset_specs(name)}  # each distinct run once
            # Each run at its own loss's measured epoch time; a loss not measured at cross-entropy's.
            per_run = [rows.get(loss, rows["ce"])["epoch_seconds_estimate"] for loss in runs.values()]
            costs.append({"model": model_name, "dataset": dataset, "table": table, "preset": name,
                          "runs": len(runs), "epochs_per_run": round(float(epochs), 2),
                          "epoch_seconds": statistics.mean(per_run),
                          "device_hours": epochs * sum(per_run) / 3600,
                          "losses_timed_as_ce": sorted(set(runs.values()) - set(rows))})
    return costs


def _predict_seconds(trainer: Trainer, device: torch.device, test_samples: int) -> float:
    """Median seconds of predicting the test split (after one warm-up call)."""
    trainer.predict("test")
    return statistics.median(timed(device, lambda: trainer.predict("test")) for _ in range(3))


def _evaluation(model_name: str, trainer: Trainer, device: torch.device, test_samples: int) -> dict:
    holder = {}

    def predict():
        holder["out"] = trainer.predict("test", with_latents=True)

    predict()  # warm-up: cuDNN autotuning of the evaluation batch shape
    predict_s = statistics.median(timed(device, predict) for _ in range(3))
    _, labels, latents = holder["out"]
    silhouette(latents, labels, device=device)
    silhouette_s = statistics.median(timed(device, lambda: silhouette(latents, labels, device=device))
                                     for _ in range(3))
    return {
        "model": model_name,
        "test_samples": test_samples,
        "latent_dim": int(latents.shape[1]),
        "predict_seconds": predict_s,
        "silhouette_seconds": silhouette_s,
    }


def _probe_cost(trainer: Trainer, device: torch.device, step_seconds: float, calls: int = 20) -> dict:
    """Seconds of one gradient probe on a training batch, and that time over the probe's interval
    of steps (``diagnostics_overhead``: 0.02 is 2 % more time per epoch); nulls for a head loss."""
    if trainer.probe.every == 0:
        return {"probe_ms": None, "diagnostics_overhead": None}
    x, y = next(iter(trainer.data.train_batches(trainer.settings.batch_size, torch.Generator(device=device))))
    with trainer.autocast():
        out = trainer.forward(x)
    _, ce, term = trainer.objective(out, y)
    z = trainer.features(out)
    trainer.probe.record(z, ce, term)  # warm-up
    seconds = timed(device, lambda: [trainer.probe.record(z, ce, term) for _ in range(calls)]) / calls
    trainer.probe.epoch_stats()  # drop what the timing recorded
    return {"probe_ms": 1e3 * seconds, "diagnostics_overhead": seconds / (trainer.probe.every * step_seconds)}


def _pca_timing(
    model_name: str, trainer: Trainer, device: torch.device, batch_size: int, calls: int = 20
) -> dict:
    dim = trainer.model.feature_dims["latent"]
    x = torch.randn(batch_size, dim, device=device, generator=torch.Generator(device=device).manual_seed(0))
    pca_project(x, 0.95)  # warm-up
    seconds = timed(device, lambda: [pca_project(x, 0.95) for _ in range(calls)]) / calls
    return {
        "model": model_name,
        "batch_size": batch_size,
        "latent_dim": dim,
        "pca_ms_per_batch": 1e3 * seconds,
    }


def format_table(report: dict) -> str:
    precision = report["results"][0]["precision"] if report["results"] else "?"
    lines = [
        f"device: {report['device']}, the model in {precision}",
        "",
        *_roofline_lines(report),
        "",
        f"{'model':10s} {'loss':14s} {'trainer/s':>11s} {'minimal/s':>11s} {'trainer/min':>12s} "
        f"{'step/ce':>8s} {'diag/off':>9s} {'probe %':>8s} {'epoch s':>8s} {'vs fp32':>8s}",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['model']:10s} {r['loss']:14s} {r['trainer_samples_per_s']:11.0f} "
            f"{r['minimal_samples_per_s']:11.0f} {r['trainer_vs_minimal']:12.3f} {r['step_vs_ce']:8.3f} "
            f"{_ratio(r['diagnostics_vs_off']):>9s} {_percent(r['diagnostics_overhead']):>8s} "
            f"{r['epoch_seconds_estimate']:8.1f} {_ratio(r['speedup_vs_fp32']):>8s}"
        )
    lines += ["", "evaluation of the test set (predict with latents, then silhouette):"]
    lines += [
        f"  {e['model']:10s} {e['test_samples']} samples × {e['latent_dim']}-d: predict "
        f"{e['predict_seconds']:.2f} s, silhouette {e['silhouette_seconds']:.2f} s"
        for e in report["evaluation"]
    ]
    lines += ["", "Latent Boost's per-batch PCA:"]
    lines += [
        f"  {p['model']:10s} {p['batch_size']} × {p['latent_dim']}: {p['pca_ms_per_batch']:.2f} ms"
        for p in report["pca"]
    ]
    if report.get("paper_costs"):
        lines += ["", "cost of the paper's tables here (runs × the paper's mean epochs × epoch time):"]
        lines += [
            f"  {c['preset']:28s} {c['runs']:4d} runs × {c['epochs_per_run']:5.1f} epochs × "
            f"{c['epoch_seconds']:7.1f} s = {c['device_hours']:8.1f} h"
            for c in report["paper_costs"]
        ]
    lines += [
        "",
        "trainer/min: our trainer's samples/s over the minimal loop's (1 = no overhead); step/ce: the "
        "loss's epoch time over cross-entropy's; diag/off: the epoch with the gradient diagnostics on "
        "(the default) over the same epoch with them off (- for a head loss); probe %: one probe's time over "
        "the steps between two probes (the same cost, measured on its own); epoch s: a full training "
        "epoch of the paper's setup, extrapolated; vs fp32 (--vs-fp32): the same epoch with "
        "trainer.amp=false trainer.channels_last=false over the default one.",
    ]
    return "\n".join(lines)


def _roofline_lines(report: dict) -> list[str]:
    limit = report["limits"]
    rates = ", ".join(f"{p} {r['limit_gflops']:.0f} GFLOP/s (matmul {r['matmul_gflops']:.0f}, 3x3 conv "
                      f"{r['conv_gflops']:.0f})" for p, r in limit.items() if p != "threads")
    lines = [f"the limit on {limit['threads']} thread(s), the faster dense kernel: {rates}",
             f"{'model':10s} {'precision':9s} {'MFLOP/sample':>12s} {'samples/s':>10s} {'GFLOP/s':>8s} "
             f"{'epoch s':>8s} {'at limit':>9s} {'x limit':>8s}"]
    lines += [f"{r['model']:10s} {r['precision']:9s} {r['train_flops_per_sample'] / 1e6:12.1f} "
              f"{r['samples_per_s']:10.0f} {r['gflops']:8.1f} {r['epoch_seconds']:8.2f} "
              f"{r['limit_epoch_seconds']:9.2f} {r['times_limit']:8.2f}" for r in report["roofline"]]
    lines.append("(cross-entropy's training step; MFLOP/sample counted by torch.utils.flop_counter; epoch "
                 "s: a paper-sized epoch with its validation pass, extrapolated; at limit: its FLOPs at the "
                 "limit rate; x limit: their ratio)")
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _names(text: str, valid, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise ConfigError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; choose from {', '.join(valid)}."
        )
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="latentexp bench",
        description="Training throughput of the trainer against a minimal PyTorch loop, each loss's step "
        "against cross-entropy's, test evaluation and Latent Boost's PCA, on synthetic data.",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument(
        "--models",
        default=None,
        help="comma list of backbones (conf/model/; default: cnn on CPU, cnn,vgg16,resnet50 on CUDA)",
    )
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), default=None,
        help="the data shape to time every backbone on (default: the dataset the paper pairs a backbone "
        "with, else fashion_mnist)",
    )
    parser.add_argument(
        "--losses", default=",".join(DEFAULT_LOSSES), help=f"comma list of {', '.join(loss_names())}"
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps per timed epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed epochs per configuration (median kept)"
    )
    parser.add_argument(
        "--test-samples", type=int, default=None, help="test-set size for the evaluation timing"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the models (trainer.compile)")
    parser.add_argument(
        "--vs-fp32", action="store_true",
        help="also time each loss in float32 and NCHW (trainer.amp=false trainer.channels_last=false; "
        "TF32 math on recent GPUs)",
    )
    parser.add_argument("--quick", action="store_true", help="a few steps only: checks that everything runs")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    configure_backends(device)
    default_models = "cnn" if device.type == "cpu" or args.quick else "cnn,vgg16,resnet50"
    models = _names(args.models or default_models, config_groups()["model"], "model(s)")
    losses = _names(args.losses, loss_names(), "loss(es)")
    steps = args.steps or (3 if args.quick else 50 if device.type == "cpu" else 200)
    repeats = args.repeats or (1 if args.quick else 5)
    test_samples = args.test_samples or (256 if args.quick else 10000)
    report = bench(models, losses, device, steps, args.batch_size, repeats, test_samples, args.compile,
                   args.vs_fp32, args.dataset)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
