"""Batch orders: a shuffled permutation, or m samples of each of batch_size/m classes per batch
(as pytorch-metric-learning's MPerClassSampler), drawn with the run's generator on the device."""

from __future__ import annotations

import torch

from latentexp.errors import ConfigError


def random_batches(n: int, batch_size: int, generator: torch.Generator, device) -> list[torch.Tensor]:
    """A seeded permutation cut into batches. A trailing batch of a single sample is dropped
    (BatchNorm cannot train on one sample); any other remainder is kept."""
    perm = torch.randperm(n, generator=generator, device=device)
    stop = n - 1 if n % batch_size == 1 and n > 1 else n
    return [perm[start : min(start + batch_size, stop)] for start in range(0, stop, batch_size)]


def check_m_per_class(num_classes: int, batch_size: int, m: int) -> None:
    """Each batch holds batch_size/m distinct classes: a whole number, at most the classes there are."""
    if batch_size % m or batch_size // m > num_classes or batch_size < m:
        smallest = -(-batch_size // max(1, num_classes))  # m that keeps batch_size/m within the classes
        fits = next(k for k in range(smallest, batch_size + 1) if batch_size % k == 0)
        raise ConfigError(
            f"trainer.sampler=m_per_class needs trainer.batch_size ({batch_size}) to be a multiple of "
            f"trainer.m_per_class ({m}) and batch_size/m <= the {num_classes} classes of the training set; "
            f"e.g. trainer.m_per_class={fits} ({batch_size // fits} classes × {fits}), or another "
            f"trainer.batch_size."
        )


def m_per_class_batches(labels: torch.Tensor, batch_size: int, m: int,
                        generator: torch.Generator) -> list[torch.Tensor]:
    """len(labels) // batch_size batches, each of batch_size/m distinct classes with m samples
    each. Within a class, samples are drawn without replacement from successive permutations of
    that class, so a class smaller than m repeats samples within a batch."""
    device = labels.device
    classes = torch.unique(labels)
    check_m_per_class(len(classes), batch_size, m)
    per_batch = batch_size // m
    num_batches = max(1, len(labels) // batch_size)
    # The classes of each batch: the first `per_batch` of a random ordering of all classes.
    keys = torch.rand(num_batches, len(classes), generator=generator, device=device)
    chosen = classes[keys.argsort(dim=1)[:, :per_batch]]  # (num_batches, per_batch)
    slots = torch.empty(num_batches, per_batch, m, dtype=torch.long, device=device)
    for c in classes:
        members = (labels == c).nonzero().squeeze(1)
        where = (chosen == c).nonzero()  # (times chosen, 2): batch, position
        need = len(where) * m
        if need == 0:
            continue
        rounds = -(-need // len(members))
        stream = torch.cat([members[torch.randperm(len(members), generator=generator, device=device)]
                            for _ in range(rounds)])[:need]
        slots[where[:, 0], where[:, 1]] = stream.view(-1, m)
    return list(slots.view(num_batches, -1))
