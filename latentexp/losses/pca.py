"""Per-batch PCA for Latent Boost (Eqs. 5-7), without host synchronisation.

The spectrum comes from an eigen-decomposition of the smaller of the two Gram matrices (B × B
when the batch is smaller than the latent, d × d otherwise), which costs far less than an SVD of
the B × d batch and gives the same components (tested against a full SVD). The Gram product is
taken in float32; its eigen-decomposition, at most B × B, in float64 with a tiny diagonal shift:
float32 ``eigh`` fails to converge on latents with many dead ReLU units (many exact zero
eigenvalues), as measured on a freshly initialised CNN. The
number of components kept stays a device tensor: the projection keeps every component and zeroes
the dropped ones, which gives the same distances as slicing without reading k on the host.
"""

from __future__ import annotations

import torch

# Cumulative ratios are compared with T up to float rounding, so T = 1 keeps exactly the rank.
RATIO_TOLERANCE = 1.0e-6


def components_for_threshold(singular_values: torch.Tensor, threshold: float, max_rank: int) -> torch.Tensor:
    """The fewest leading components whose cumulative explained variance reaches ``threshold``
    (Eq. 7), capped at ``max_rank``; 1 when the batch has no variance at all. A 0-d tensor."""
    var = singular_values.double() ** 2
    total = var.sum()
    ratio = var.cumsum(0) / total.clamp_min(torch.finfo(var.dtype).tiny)
    k = ((ratio < threshold - RATIO_TOLERANCE).sum() + 1).clamp(1, max(1, max_rank))
    return torch.where(total > 0, k, torch.ones_like(k))


def principal_axes(centred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values (descending) and right singular vectors (d × r, r = min(B, d)) of a centred
    batch, from the eigen-decomposition of its smaller Gram matrix."""
    n, d = centred.shape
    source = centred.float() if centred.dtype != torch.float64 else centred
    if n < d:
        eigenvalues, u = _eigh_descending(source @ source.T)
        singular = eigenvalues.clamp_min(0).sqrt()
        # v_i = Xᵀ u_i / s_i; columns with s_i ≈ 0 are never kept (k stops before them).
        u = u.to(source.dtype)
        scale = singular.clamp_min(1e-12 * singular[0].clamp_min(1e-30)).to(source.dtype)
        axes = (source.T @ u) / scale
    else:
        eigenvalues, axes = _eigh_descending(source.T @ source)
        singular = eigenvalues.clamp_min(0).sqrt()
    return singular, axes.to(centred.dtype)


def _eigh_descending(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    gram = gram.double()
    eye = torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
    # A diverged batch (NaN, or values whose squares overflow) would make eigh raise: decompose the
    # identity instead and return NaN vectors, so the loss becomes NaN and the trainer records the
    # run as failed, as it does for every other loss. No host synchronisation.
    finite = torch.isfinite(gram).all()
    gram = torch.where(finite, gram, eye)
    shift = 1e-10 * gram.diagonal().sum().clamp_min(1e-30)  # separates exact zero eigenvalues
    eigenvalues, vectors = torch.linalg.eigh(gram + shift * eye)
    return (eigenvalues - shift).flip(0), _nan_unless(finite, vectors.flip(1))


def _nan_unless(finite: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.where(finite, x, torch.full_like(x, float("nan")))


def pca_project(x: torch.Tensor, threshold: float, detach: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Project the batch onto its leading principal components.

    Returns the centred projection, with the dropped components zeroed (distances are unchanged
    by centring and by the zero columns), and the number of components kept as a 0-d tensor.
    With ``detach`` the components are computed without gradient; the projection itself carries
    gradient to ``x``. Without it, gradients flow through an SVD.
    """
    n, d = x.shape
    centred = x - x.mean(0, keepdim=True)
    if detach:
        with torch.no_grad():
            singular, axes = principal_axes(centred.detach())
    else:
        finite = torch.isfinite(centred).all()  # see _eigh_descending: a diverged batch gives NaN
        _, singular, vh = torch.linalg.svd(torch.where(finite, centred, torch.zeros_like(centred)),
                                           full_matrices=False)
        axes = _nan_unless(finite, vh.T)
    k = components_for_threshold(singular, threshold, max_rank=min(n - 1, d))
    kept = torch.arange(axes.shape[1], device=x.device) < k
    return centred @ torch.where(kept[None, :], axes, torch.zeros_like(axes)), k
