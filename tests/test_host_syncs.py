"""The host synchronisations left in a training step, per loss. A dispatch-mode recorder
(scripts/host_syncs.py, a developer tool outside the package) finds them on the CPU; the ``cuda``
test confirms the sync-free losses with CUDA's own sync debug mode."""

import re
from pathlib import Path

import pytest
import torch
from support.helpers import load_script, make_trainer, synthetic_data

from latentexp.config.components import loss_class, loss_names

host_syncs = load_script("host_syncs")
loss_step, loss_step_syncs, recording_host_syncs = (
    host_syncs.loss_step, host_syncs.loss_step_syncs, host_syncs.recording_host_syncs)

# docs/decisions.md, "Host synchronisations in a training step": each loss class declares the syncs
# its step makes (``host_syncs``, none for most), so a new loss is checked without a list here.
SYNC_FREE = [name for name in loss_names() if not loss_class(name).host_syncs]


def test_most_losses_are_sync_free():
    expected = {"amc", "ce", "center", "corel_cosine", "corel_gaussian", "lace", "lmdl", "magnet"}
    assert expected <= set(SYNC_FREE)


@pytest.mark.parametrize("name", loss_names())
def test_a_loss_step_makes_exactly_the_syncs_its_class_declares(name):
    found = dict(loss_step_syncs(name))
    assert found == loss_class(name).host_syncs, (
        f"{name}'s training step makes the host syncs {found}: remove them, or declare them as "
        f"`host_syncs` on its class with the reason")


def test_the_recorder_sees_each_kind_of_sync():
    x = torch.randn(8, 8, requires_grad=True)
    labels = torch.tensor([0, 1, 1, 2, 0, 2, 1, 0])
    with recording_host_syncs() as counts:
        float(x.detach().sum())  # .item()
        torch.unique(labels)
        x[labels > 0].sum().backward()  # boolean mask, forward and backward
        torch.where(labels > 0)  # one-argument where: nonzero
        torch.linalg.eigh(x @ x.T)
        torch.nn.functional.one_hot(labels)  # no num_classes: reads the max back, on CUDA too
    kinds = {"_local_scalar_dense", "_unique2", "index:bool", "index_put:bool", "nonzero", "_linalg_eigh"}
    assert kinds <= set(counts)
    assert counts["_local_scalar_dense"] >= 2  # the float() and one_hot's max


def test_one_hot_with_num_classes_is_not_counted():
    """On CUDA ``F.one_hot(labels, C)`` checks the range with a device assert, not on the host."""
    with recording_host_syncs() as counts:
        torch.nn.functional.one_hot(torch.tensor([0, 2]), 3)
        torch.nn.functional.one_hot(torch.tensor([0, 2]), num_classes=3)
    assert counts == {}


def test_no_loss_reads_a_value_past_the_recorder():
    """.tolist(), .cpu(), .numpy() and .item() wait for the device without passing the dispatcher,
    so the recorder cannot see them: none may appear in a loss (epoch_stats reads with float())."""
    import latentexp.losses

    found = [f"{path.name}:{n}" for path in sorted(Path(latentexp.losses.__file__).parent.glob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\.(tolist|cpu|numpy|item)\(\)", line)]
    assert found == []


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "magnet", "lmdl"])
def test_the_trainer_adds_no_host_sync_per_batch(loss):
    """A whole epoch (sampling, forward, loss, backward, the fused optimizer CUDA gets, the
    gradient probe, validation) syncs as often with 12 batches as with 2: only once per epoch."""
    counts = []
    for n in (128, 768):  # 2 and 12 training batches of 32
        trainer = make_trainer(synthetic_data(n=n), "+optimizer.fused=true", loss=loss, lam=0.5, max_epochs=1)
        with recording_host_syncs() as recorded:
            trainer.fit()
        counts.append(recorded)
    assert counts[0] == counts[1]


@pytest.mark.cuda
@pytest.mark.parametrize("name", SYNC_FREE)
def test_cuda_a_sync_free_loss_step_does_not_synchronise(name):
    step = loss_step(name, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_the_command_prints_one_line_per_loss(capsys):
    main = host_syncs.main

    main(["--losses", "magnet,latent_boost"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["magnet", "0", "none"]
    assert lines[1].split() == ["latent_boost", "1", "_linalg_eigh", "×1"]
