"""What every backbone returns: logits plus named features."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ModelOutput(NamedTuple):
    logits: torch.Tensor
    # "latent": the paper's extraction point; "penultimate": input of the final linear layer.
    features: dict[str, torch.Tensor]
