"""Dropout whose masks come from random bytes: the same Bernoulli(1 − p) keep-mask per element,
scaled by 1/(1 − p), as ``nn.Dropout``, at a fraction of its cost on the CPU.

``nn.Dropout`` on the CPU draws each element's mask with ``bernoulli_``, one float per element
from the generator: 15 % of the paper CNN's training step (docs/speed.md). Here one 64-bit draw of
the same generator (torch's default, seeded and checkpointed with the run) gives eight bytes, and
an element is kept when its byte is ≥ 256·p. That is exactly Bernoulli(1 − p) when 256·p is a whole
number (p = 0.25 or 0.5, the backbones' values); any other p takes uniform floats (``torch.rand``),
still 2-3x cheaper than ``bernoulli_``. On CUDA, PyTorch's fused dropout kernel is already fast and
is kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_BYTE_LEVELS = 256


def keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """A bool tensor shaped and laid out like ``x`` (channels_last stays channels_last): True with
    probability 1 − p, independently per element."""
    threshold = p * _BYTE_LEVELS
    if threshold != int(threshold):
        return torch.rand_like(x, dtype=torch.float32) >= p
    dense = x if _dense(x) else x.contiguous()
    words = torch.empty((dense.numel() + 7) // 8, dtype=torch.int64, device=x.device)
    # The full 64-bit range, so every byte of a word is uniform (random_() alone leaves the top bit 0).
    words.random_(-(2**63), 2**63 - 1)
    bits = words.view(torch.uint8)[: dense.numel()].as_strided(dense.shape, dense.stride())
    return bits >= int(threshold)


def _dense(x: torch.Tensor) -> bool:
    """Whether ``x`` fills its storage without gaps in some dimension order (contiguous or
    channels_last), so that a flat buffer viewed with its strides has one element per element."""
    return x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)


class ByteDropout(nn.Dropout):
    """``nn.Dropout`` (same ``p``, same training/eval behaviour, same state) with byte masks on the CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu" or self.p == 1.0:
            return F.dropout(x, self.p, True, self.inplace)
        scaled = keep_mask(x, self.p).to(x.dtype) * (1.0 / (1.0 - self.p))
        return x.mul_(scaled) if self.inplace else x * scaled
