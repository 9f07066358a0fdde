"""Per-batch cluster statistics shared by the cluster losses (Magnet, Latent Boost).

One cluster per class present in the batch (K = 1 in Magnet's terms). A sample *counts* when
its class has at least 2 samples in the batch and at least one other class is present; samples
that do not count still contribute their class mean as another cluster.

Given the number of classes, the statistics have one column per class of the dataset, with the
classes absent from the batch excluded; the shapes then never depend on the batch's labels, so
nothing waits for the device (torch.unique would). Both forms give the same losses (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Stands in for -inf in masked log-sum-exps: finite, so gradients through masked rows stay finite.
MASKED = -1.0e30
# Floor on variances so identical embeddings (zero variance) give finite values.
VARIANCE_FLOOR = 1.0e-12


@dataclass
class BatchClusters:
    sq_dist: torch.Tensor  # (N, K) squared distance of each sample to each class mean
    onehot: torch.Tensor  # (N, K) float membership
    own_index: torch.Tensor  # (N,) index of the sample's class among the K present
    counts: torch.Tensor  # (K,) samples per class
    counted: torch.Tensor  # (N,) bool
    excluded: torch.Tensor  # (N, K) bool: the sample's own class, or a class absent from the batch

    @property
    def own_dist(self) -> torch.Tensor:
        return self.sq_dist.gather(1, self.own_index[:, None]).squeeze(1)

    def pooled_variance(self) -> torch.Tensor:
        """Σ_n d(n, own) / (N − 1) over the counted samples (Magnet's σ²)."""
        n = self.counted.sum()
        total = torch.where(self.counted, self.own_dist, torch.zeros_like(self.own_dist)).sum()
        return total / (n - 1).clamp_min(1)

    def class_variances(self) -> torch.Tensor:
        """σ²_c = Σ_{i∈c} d(i, c) / (|c| − 1) (Eq. 8); a singleton class takes the pooled σ²."""
        within = (self.onehot * self.sq_dist).sum(0)
        per_class = within / (self.counts - 1).clamp_min(1)
        return torch.where(self.counts >= 2, per_class, self.pooled_variance())


def squared_distances(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """‖x_n − μ_k‖² by the expansion, on batch-centred inputs to limit cancellation."""
    centre = x.mean(0, keepdim=True)
    x, means = x - centre, means - centre
    d = (x * x).sum(1, keepdim=True) - 2.0 * x @ means.T + (means * means).sum(1)[None, :]
    return d.clamp_min(0.0)


def class_means(x: torch.Tensor, labels: torch.Tensor):
    """The classes present, each sample's index among them, their counts, the (N, K) one-hot
    membership and the (K, d) class means."""
    classes, index, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    onehot = F.one_hot(index, len(classes)).to(x.dtype)
    return classes, index, counts, onehot, (onehot.T @ x) / counts[:, None].to(x.dtype)


def class_onehot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """(N, num_classes) membership, by a scatter: F.one_hot checks the label range on the host."""
    onehot = torch.zeros(len(labels), num_classes, dtype=dtype, device=labels.device)
    return onehot.scatter_(1, labels[:, None], 1.0)


def batch_clusters(x: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> BatchClusters:
    """Cluster statistics of the classes in the batch; with ``num_classes``, without a host sync."""
    if num_classes is None:
        classes, own_index, counts, onehot, means = class_means(x, labels)
        counted = (counts[own_index] >= 2) & (len(classes) >= 2)
        excluded = onehot.bool()  # the sample's own class
    else:
        own_index = labels
        onehot = class_onehot(labels, num_classes, x.dtype)
        counts = onehot.sum(0)
        present = counts > 0
        means = (onehot.T @ x) / counts.clamp_min(1)[:, None]
        counted = (counts[labels] >= 2) & (present.sum() >= 2)
        excluded = onehot.bool() | ~present[None, :]  # its own class, and classes absent from the batch
    return BatchClusters(
        sq_dist=squared_distances(x, means),
        onehot=onehot,
        own_index=own_index,
        counts=counts.to(x.dtype),
        counted=counted,
        excluded=excluded,
    )
