#!/usr/bin/env python3
"""Training samples/s of a plain loop (no trainer) over one model on the CPU, in each of float32
and bf16 autocast × NCHW and channels_last: which of the two settings buys what; with
``--optimizers``, Adam's three implementations (for-loop, foreach, fused) in bf16 and
channels_last. Repeats are interleaved; the decisions they inform are in docs/decisions.md
("bf16 and channels_last on the CPU").

    python scripts/precision_layouts.py [--model cnn] [--steps 20] [--repeats 2] [--optimizers]

Set ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 (or ONEDNN_MAX_CPU_ISA=AVX512_CORE) to see a
CPU without native bf16.
"""

import argparse
import itertools
import time

import torch
import torch.nn.functional as F

from latentexp.config.components import build_model


def samples_per_second(model_name: str, shape, bf16: bool, channels_last: bool, steps: int,
                       batch: int, adam: dict) -> float:
    torch.manual_seed(0)
    x = torch.randn(batch * steps, *shape)
    y = torch.randint(0, 10, (batch * steps,))
    model = build_model(model_name, shape[0], shape[1:], 10)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **adam)

    def epoch():
        for i in range(steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(x[i * batch:(i + 1) * batch]).logits
            loss = F.cross_entropy(logits.float(), y[i * batch:(i + 1) * batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    epoch()  # warm-up
    start = time.perf_counter()
    epoch()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--optimizers", action="store_true", help="compare Adam's implementations instead")
    args = parser.parse_args()
    shape = (1, 28, 28) if args.model in ("cnn", "ffnn") else (3, 32, 32)
    if args.optimizers:
        adams = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
        variants = [(True, True, name, adam) for name, adam in adams.items()]
    else:
        variants = [(bf16, last, "for-loop", {"foreach": False})
                    for bf16, last in itertools.product((False, True), (False, True))]
    print(f"{args.model}, batch {args.batch_size}, {torch.get_num_threads()} threads; samples/s")
    for repeat in range(args.repeats):
        for bf16, channels_last, adam_name, adam in variants:
            rate = samples_per_second(args.model, shape, bf16, channels_last, args.steps, args.batch_size,
                                      adam)
            layout = "channels_last" if channels_last else "NCHW"
            precision = "bf16" if bf16 else "fp32"
            print(f"repeat {repeat}  {precision}  {layout:13s}  Adam {adam_name:8s}  {rate:6.0f}", flush=True)


if __name__ == "__main__":
    main()
