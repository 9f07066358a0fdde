#!/usr/bin/env python
"""The trainer's epoch against the plainest loop with the same kernels, on synthetic Fashion-MNIST
batches: a loop over float data normalised once, the same loop normalising each uint8 batch as
the trainer does, and ``Trainer.fit(epochs=1)`` (cross-entropy). Each is timed in turn, several
times, and the median kept; `latentexp bench` reports the same ratio from fewer, shorter epochs.

    OMP_NUM_THREADS=2 python scripts/trainer_overhead.py --steps 60 --precision fp32
"""

from __future__ import annotations

import argparse
import statistics

import torch

from latentexp.bench.command import DATASETS, make_trainer, minimal_loop, synthetic_data
from latentexp.bench.roofline import timed
from latentexp.runtime import configure_backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="training steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=7, help="timed epochs of each (median kept)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = parser.parse_args()
    device, batch_size, amp = torch.device("cpu"), 128, args.precision == "bf16"
    configure_backends(device)
    data = synthetic_data(DATASETS["fashion_mnist"], args.steps * batch_size, 256, device)
    trainer = make_trainer("cnn", "ce", data, device, batch_size, amp=amp)
    runs = {"minimal loop, data normalised once": minimal_loop("cnn", data, device, batch_size, amp=amp),
            "minimal loop, each uint8 batch normalised": minimal_loop(
                "cnn", data, device, batch_size, amp=amp, normalise_each_batch=True),
            "trainer (Trainer.fit, one epoch)": lambda: trainer.fit(epochs=1)}
    for run in runs.values():
        run()  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved: each sees the same machine state
        for name, run in runs.items():
            seconds[name].append(timed(device, run))
    fastest = statistics.median(seconds["minimal loop, data normalised once"])
    print(f"{trainer.precision}, {torch.get_num_threads()} thread(s), {args.steps} steps of {batch_size}, "
          f"median of {args.repeats}")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"  {name:44s} {1000 * median / args.steps:7.2f} ms/step   "
              f"fastest loop / this {fastest / median:.3f}")


if __name__ == "__main__":
    main()
