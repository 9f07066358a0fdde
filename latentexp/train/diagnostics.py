"""How hard each term of Eq. 11 pushes the latent, recorded per epoch.

On every n-th training batch (``trainer.gradient_diagnostics_every``; 0 turns it off) the probe
takes, with ``torch.autograd.grad`` on the features z the auxiliary loss reads (so through the
loss and the layers after z, never the backbone), the gradients of the two weighted terms:
g_aux = ∂(λ·L_aux)/∂z and g_ce = ∂((1 − λ)·L_CE)/∂z. It records the mean per-sample norm of each,
mean_i ‖g_i‖, and the cosine between the two batch gradients (flattened; 0 where one of them is
zero). They are history.csv's ``grad_aux_norm``, ``grad_ce_norm`` and ``grad_cosine``. The
gradients that train the model are not touched: the probe's graph is kept for the step's own
backward pass, and no random number is drawn.
"""

from __future__ import annotations

import torch


class GradientProbe:
    def __init__(self, every: int, lam: float | None, device: torch.device):
        # A head loss is the whole objective: there are not two terms to compare.
        self.every = every if lam is not None else 0
        self.lam = lam
        self.sums = torch.zeros(3, device=device)  # aux norm, ce norm, cosine
        self.batches = 0

    def due(self, batch_index: int) -> bool:
        return self.every > 0 and batch_index % self.every == 0

    def record(self, z: torch.Tensor, ce: torch.Tensor, term: torch.Tensor) -> None:
        g_ce = _grad((1.0 - self.lam) * ce, z)
        g_aux = _grad(self.lam * term, z)
        dot = (g_aux * g_ce).sum()
        norms = g_aux.norm() * g_ce.norm()
        tiny = torch.finfo(norms.dtype).tiny
        cosine = torch.where(norms > 0, dot / norms.clamp_min(tiny), torch.zeros_like(dot))
        self.sums += torch.stack([_mean_row_norm(g_aux), _mean_row_norm(g_ce), cosine]).float()
        self.batches += 1

    def epoch_stats(self) -> dict[str, float]:
        """The epoch's means, then reset (nothing when no batch was probed)."""
        if not self.batches:
            return {}
        aux, ce, cosine = (self.sums / self.batches).tolist()
        self.sums.zero_()
        self.batches = 0
        return {"grad_aux_norm": aux, "grad_ce_norm": ce, "grad_cosine": cosine}


def _grad(value: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """∂value/∂z, zero where value does not depend on z (the baseline's absent term)."""
    if not value.requires_grad:
        return torch.zeros_like(z, dtype=torch.float32)
    (grad,) = torch.autograd.grad(value, z, retain_graph=True, allow_unused=True)
    return torch.zeros_like(z, dtype=torch.float32) if grad is None else grad.float()


def _mean_row_norm(g: torch.Tensor) -> torch.Tensor:
    return g.flatten(1).norm(dim=1).mean()
