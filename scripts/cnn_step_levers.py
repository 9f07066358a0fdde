"""Each lever on the paper CNN's CPU training step, alone and together (docs/speed.md).

The step as it was (conv, ReLU, max-pool; nn.Dropout; Adam's per-parameter loop; glibc's default
allocator) and each change on top of it alone, then all that were kept (the package's PaperCNN as
the trainer builds it), torch.compile, and the evaluation pass at several batch sizes. Batch 128 of
random 28x28 images, float32 and channels_last unless named, cross-entropy; every configuration runs
in a process of its own (the allocator setting cannot be undone), repeats interleaved, the median
kept. The limit is latentexp.bench.roofline's, measured in the same run.

    python scripts/cnn_step_levers.py                 # 1 and 2 threads, about 10 minutes on 2 cores
    python scripts/cnn_step_levers.py --threads 2 --repeats 1 --steps 10   # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

STEP_LEVERS = {
    "as before": set(),
    "+ allocator keeps freed memory": {"allocator"},
    "+ max-pool before ReLU": {"pool_first"},
    "+ byte-mask dropout": {"byte_dropout"},
    "+ fused Adam": {"fused_adam"},
    "+ foreach Adam": {"foreach_adam"},
    "all kept": {"allocator", "pool_first", "byte_dropout", "fused_adam"},
    "all kept, bf16 autocast": {"allocator", "pool_first", "byte_dropout", "fused_adam", "bf16"},
    "all kept, NCHW": {"allocator", "pool_first", "byte_dropout", "fused_adam", "nchw"},
    "all kept, torch.compile": {"allocator", "pool_first", "byte_dropout", "fused_adam", "compile"},
    "all kept, no dropout": {"allocator", "pool_first", "fused_adam", "no_dropout"},
    "all kept, no dropout, torch.compile": {"allocator", "pool_first", "fused_adam", "no_dropout", "compile"},
}
EVAL_BATCHES = (256, 1024, 2048, 6000)


def build(levers: set[str]):
    import torch
    from torch import nn

    from latentexp.config.components import build_model
    from latentexp.models.dropout import ByteDropout
    from latentexp.runtime import keep_freed_memory

    if "allocator" in levers:
        keep_freed_memory()
    torch.manual_seed(0)
    model = build_model("cnn", 1, (28, 28), 10, dropout=0.0 if "no_dropout" in levers else 0.25)
    conv1, conv2 = model.features[0], model.features[4]
    p = 0.0 if "no_dropout" in levers else 0.25
    dropout = (lambda: ByteDropout(p)) if "byte_dropout" in levers else (lambda: nn.Dropout(p))
    if "pool_first" in levers:
        blocks = [conv1, nn.MaxPool2d(2), nn.ReLU(), dropout(), conv2, nn.MaxPool2d(2), nn.ReLU(), dropout()]
    else:
        blocks = [conv1, nn.ReLU(), nn.MaxPool2d(2), dropout(), conv2, nn.ReLU(), nn.MaxPool2d(2), dropout()]
    model.features = nn.Sequential(*blocks, nn.Flatten())
    layout = torch.contiguous_format if "nchw" in levers else torch.channels_last
    model = model.to(memory_format=layout)
    implementation = {"fused": True} if "fused_adam" in levers else {"foreach": "foreach_adam" in levers}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **implementation)
    forward = torch.compile(model) if "compile" in levers else model
    return model, forward, optimizer, layout


def time_steps(levers: set[str], steps: int) -> dict:
    """ms per training step (and the seconds the first steps took: compilation)."""
    import contextlib

    import torch
    import torch.nn.functional as F

    model, forward, optimizer, layout = build(levers)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 128, 1, 28, 28, generator=gen).contiguous()
    y = torch.randint(0, 10, (8, 128), generator=gen)
    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if "bf16" in levers else contextlib.nullcontext()

    def step(i):
        with autocast():
            logits = forward(x[i % 8].contiguous(memory_format=layout)).logits
        loss = F.cross_entropy(logits.float(), y[i % 8])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for i in range(5):
        step(i)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    return {"ms_per_step": 1e3 * (time.perf_counter() - start) / steps, "warmup_s": warmup}


def time_eval(batch: int) -> dict:
    """Seconds of one validation pass (6,000 images) in float32 at evaluation batch ``batch``."""
    import torch

    model, forward, _, layout = build({"allocator", "pool_first", "byte_dropout", "fused_adam"})
    model.eval()
    x = torch.randn(6000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=layout)

    def once():
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                forward(x[start:start + batch]).logits.argmax(1)

    once()
    start = time.perf_counter()
    once()
    return {"seconds": time.perf_counter() - start}


def in_process(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.one == "limit":
        from latentexp.bench.roofline import limits, step_flops
        from latentexp.runtime import configure_backends, device_name

        configure_backends(torch.device("cpu"))
        out = {"limits": limits(torch.device("cpu")), **step_flops("cnn", 1, (28, 28), 10),
               "device": device_name(torch.device("cpu")), "torch": torch.__version__}
    elif args.one.startswith("eval "):
        out = time_eval(int(args.one.split()[1]))
    else:
        out = time_steps(STEP_LEVERS[args.one], args.steps)
    print(json.dumps(out))


def measure(name: str, threads: int, steps: int) -> dict:
    env_threads = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    import os

    done = subprocess.run([sys.executable, __file__, "--one", name, "--threads", str(threads), "--steps",
                           str(steps)], capture_output=True, text=True, env={**os.environ, **env_threads})
    if done.returncode != 0:
        raise SystemExit(f"{name} on {threads} thread(s) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per configuration (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats, median kept (default 3)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.threads = int(args.threads)
        in_process(args)
        return
    report = {}
    for threads in (int(t) for t in args.threads.split(",")):
        limit = measure("limit", threads, args.steps)
        names = [*STEP_LEVERS, *(f"eval {b}" for b in EVAL_BATCHES)]
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for repeat in range(args.repeats):
            for name in names:
                runs[name].append(measure(name, threads, args.steps))
                print(f"[{threads} thread(s), repeat {repeat + 1}/{args.repeats}] {name}: {runs[name][-1]}",
                      file=sys.stderr, flush=True)
        report[threads] = {"limit": limit, "runs": {
            name: {key: statistics.median(r[key] for r in values) for key in values[0]}
            for name, values in runs.items()}}
    print(json.dumps(report, indent=1) if args.json else table(report))


def table(report: dict) -> str:
    lines = []
    for part in report.values():
        limit = part["limit"]
        fp32 = limit["limits"]["fp32"]["limit_gflops"]
        bf16 = limit["limits"].get("bf16", {}).get("limit_gflops")
        flops = limit["train_flops_per_sample"] * 128
        limit_ms = 1e3 * flops / (fp32 * 1e9)
        lines += [f"{limit['device']}, torch {limit['torch']}",
                  f"limit: fp32 {fp32:.0f} GFLOP/s (matmul {limit['limits']['fp32']['matmul_gflops']:.0f}, "
                  f"3x3 conv {limit['limits']['fp32']['conv_gflops']:.0f})"
                  + (f", bf16 {bf16:.0f} GFLOP/s" if bf16 else "")
                  + f"; the step's {flops / 1e9:.2f} GFLOP take {limit_ms:.2f} ms at the fp32 limit", "",
                  f"{'training step (batch 128)':40s} {'ms/step':>8s} {'vs before':>10s} {'x limit':>8s} "
                  f"{'warm-up s':>10s}"]
        runs = part["runs"]
        before = runs["as before"]["ms_per_step"]
        for name in STEP_LEVERS:
            r = runs[name]
            at = 1e3 * flops / ((bf16 if "bf16" in name and bf16 else fp32) * 1e9)
            lines.append(f"{name:40s} {r['ms_per_step']:8.2f} {before / r['ms_per_step']:9.2f}x "
                         f"{r['ms_per_step'] / at:8.2f} {r['warmup_s']:10.2f}")
        lines += ["", "validation pass, 6,000 images, fp32: " + ", ".join(
            f"batch {b} {runs[f'eval {b}']['seconds']:.3f} s" for b in EVAL_BATCHES), ""]
    lines.append("vs before: the step as it was over this one (2.00x = twice as fast); x limit: ms/step over "
                 "the step's FLOPs at the limit rate (bf16's for the bf16 row); warm-up s: the first 5 steps "
                 "(torch.compile compiles there).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
