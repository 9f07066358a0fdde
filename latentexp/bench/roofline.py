"""The machine's own limit for a training step, and how far a backbone's step is from it.

The limit is the fastest rate of the dense kernels PyTorch calls on this device and thread count:
a square matmul (the BLAS: MKL on x86) and a 3x3 convolution (oneDNN on the CPU, cuDNN on CUDA).
Both are measured, because either may be the faster one: MKL runs AMD CPUs on its AVX2 path,
at half of what oneDNN's AVX-512 convolutions reach on the same cores (docs/speed.md). A step's
FLOPs are counted by ``torch.utils.flop_counter`` (matmuls and convolutions, forward and
backward; the element-wise work and the optimizer count nothing), so "the epoch at the limit" is
the time those FLOPs take at the limit rate, and a multiple of it says how much of an epoch goes
elsewhere.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from latentexp.config.components import build_model
from latentexp.runtime import native_bf16


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn) -> float:
    """Seconds of one call of ``fn``, the device's queued work included."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def _timed(device: torch.device, fn, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls, after two untimed ones."""
    fn()
    fn()
    return statistics.median(timed(device, fn) for _ in range(repeats))


def kernel_rates(device: torch.device, dtype: torch.dtype, repeats: int = 5, quick: bool = False) -> dict:
    """GFLOP/s of a square matmul and of a 3x3 convolution (channels_last) in ``dtype``, and the
    faster of the two (``limit``)."""
    n = 512 if quick else (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    matmul = 2 * n**3 / _timed(device, lambda: a @ b, repeats) / 1e9
    full = (256, 256, 28) if device.type == "cuda" else (64, 128, 28)
    batch, channels, size = (8, 64, 14) if quick else full
    x = torch.randn(batch, channels, size, size, device=device).to(dtype)
    w = torch.randn(channels, channels, 3, 3, device=device).to(dtype)
    x, w = (t.contiguous(memory_format=torch.channels_last) for t in (x, w))
    conv_flops = 2 * batch * size * size * channels * channels * 9
    conv = conv_flops / _timed(device, lambda: F.conv2d(x, w, padding=1), repeats) / 1e9
    return {"matmul_gflops": matmul, "conv_gflops": conv, "limit_gflops": max(matmul, conv)}


def limits(device: torch.device, quick: bool = False) -> dict:
    """``kernel_rates`` in float32 (TF32 where configure_backends allows it on CUDA) and, where the
    device computes it natively, bf16; with the threads and the CPU they were measured on."""
    out = {"threads": torch.get_num_threads(), "fp32": kernel_rates(device, torch.float32, quick=quick)}
    if native_bf16(device):
        out["bf16"] = kernel_rates(device, torch.bfloat16, quick=quick)
    return out


def step_flops(model_name: str, channels: int, size: tuple[int, int], classes: int, batch: int = 8) -> dict:
    """FLOPs per sample of one training step (forward and backward with cross-entropy) and of one
    evaluation forward, counted on a CPU batch of ``batch`` (the counts scale with the batch)."""
    torch.manual_seed(0)
    model = build_model(model_name, channels, size, classes)
    x = torch.randn(batch, channels, *size)
    y = torch.arange(batch) % classes
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x).logits, y).backward()
    train = counter.get_total_flops()
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    evaluation = counter.get_total_flops()
    return {"train_flops_per_sample": train / batch, "eval_flops_per_sample": evaluation / batch}


def against_limit(flops: dict, limit_gflops: float, train_samples: int, val_samples: int,
                  samples_per_s: float, epoch_seconds: float) -> dict:
    """One backbone's step against the limit: achieved GFLOP/s of its training step, the epoch
    (training steps and the validation pass) at the limit rate, and the epoch's multiple of it."""
    at_limit = (train_samples * flops["train_flops_per_sample"]
                + val_samples * flops["eval_flops_per_sample"]) / (limit_gflops * 1e9)
    return {"samples_per_s": samples_per_s,
            "gflops": samples_per_s * flops["train_flops_per_sample"] / 1e9,
            "limit_gflops": limit_gflops, "epoch_seconds": epoch_seconds,
            "limit_epoch_seconds": at_limit, "times_limit": epoch_seconds / at_limit}
