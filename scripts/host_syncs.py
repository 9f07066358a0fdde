"""The operations in a loss's forward and backward pass that would make the host wait for a CUDA
device, found on any device (``python scripts/host_syncs.py``; docs/decisions.md lists them).

A dispatch mode sees every aten operation of the step, the backward pass's included, and keeps
those that synchronise on CUDA: reading a value on the host, shapes that depend on the data
(nonzero, unique, masked_select, boolean indexing, one-argument ``where``), and error checks that
read a flag back (``linalg.eigh``, ``linalg.svd``, ``cholesky`` without ``_ex``). Reads that
bypass the dispatcher (``.tolist()``, ``.cpu()``, ``.numpy()``) are invisible here; the tests keep
them out of the losses by reading the source. On a GPU,
``torch.cuda.set_sync_debug_mode("error")`` confirms what this finds.
"""

from __future__ import annotations

import argparse
import contextlib
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

# aten operations that wait for the device on CUDA, and why.
SYNCING = {
    "_local_scalar_dense": "reads a value on the host (.item(), bool(), int())",
    "nonzero": "output shape depends on the data",
    "_unique2": "output shape depends on the data",
    "unique_dim": "output shape depends on the data",
    "unique_consecutive": "output shape depends on the data",
    "masked_select": "output shape depends on the data",
    "repeat_interleave": "output shape depends on the data (without output_size)",
    "_linalg_eigh": "checks its error flag on the host",
    "_linalg_svd": "checks its error flag on the host",
    "linalg_cholesky": "checks its error flag on the host",
    "cholesky": "checks its error flag on the host",
    "_to_copy": "copies between devices (when it moves to or from the CPU)",
}


class HostSyncRecorder(TorchDispatchMode):
    """Counts the syncing operations run while it is active (boolean-mask indexing as index:bool)."""

    def __init__(self):
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.paused = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self.paused:
            self.record(func.overloadpacket.__name__, args, kwargs)
        return func(*args, **kwargs)

    def record(self, name: str, args, kwargs) -> None:
        if name in SYNCING and (name != "_to_copy" or _changes_device(args, kwargs)):
            self.counts[name] += 1
        elif name in ("index", "index_put", "index_put_") and _has_bool_index(args):
            self.counts[f"{name}:bool"] += 1


class _OneHotAsOnCuda(TorchFunctionMode):
    """``F.one_hot`` given ``num_classes`` reads the labels' range back only off CUDA (on CUDA a
    device assert checks it): its checks here are not counted."""

    def __init__(self, recorder: HostSyncRecorder):
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        num_classes = kwargs.get("num_classes", args[1] if len(args) > 1 else -1)
        if getattr(func, "__name__", "") != "one_hot" or num_classes == -1:
            return func(*args, **kwargs)
        self.recorder.paused += 1
        try:
            return func(*args, **kwargs)
        finally:
            self.recorder.paused -= 1


@contextlib.contextmanager
def recording_host_syncs():
    """``with recording_host_syncs() as counts:`` counts the syncing operations of the block."""
    recorder = HostSyncRecorder()
    with _OneHotAsOnCuda(recorder), recorder:
        yield recorder.counts


def _changes_device(args, kwargs) -> bool:
    device = kwargs.get("device")
    return device is not None and torch.is_tensor(args[0]) and torch.device(device) != args[0].device


def _has_bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(torch.is_tensor(i) and i.dtype == torch.bool for i in indices or ())


def loss_step(name: str, device: str | torch.device = "cpu", batch: int = 128, classes: int = 10,
              dim: int = 64, seed: int = 0):
    """One training-mode forward and backward of loss ``name`` on a random batch holding every
    class, as a function, after a first call (losses that set up state on their first batch)."""
    from latentexp.config.components import build_loss, loss_class

    generator = torch.Generator().manual_seed(seed)
    classifier = torch.nn.Linear(dim, classes).to(device)
    loss = build_loss(name, num_classes=classes, embedding_size=dim, classifier=classifier).to(device).train()
    width = classes if loss_class(name).feature == "logits" else dim
    features = torch.randn(batch, width, generator=generator).to(device).requires_grad_()
    labels = (torch.arange(batch) % classes).to(device)
    step = lambda: loss(features, labels).backward()  # noqa: E731
    step()
    return step


def loss_step_syncs(name: str) -> Counter:
    """The syncing operations of one step of loss ``name`` (the trainer's λ mixing and optimizer
    step add none)."""
    step = loss_step(name)
    with recording_host_syncs() as counts:
        step()
    return counts


def main(argv: list[str] | None = None) -> None:
    from latentexp.config.components import loss_names

    parser = argparse.ArgumentParser(prog="python scripts/host_syncs.py",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--losses", default=",".join(loss_names()), help="comma list (default: every loss)")
    args = parser.parse_args(argv)
    for name in args.losses.split(","):
        counts = loss_step_syncs(name)
        found = ", ".join(f"{op} ×{n}" for op, n in sorted(counts.items())) or "none"
        print(f"{name:16s} {sum(counts.values()):3d}  {found}")


if __name__ == "__main__":
    main()
