"""Gradient diagnostics (train/diagnostics.py): the recorded norms are autograd's, Latent Boost's
term goes silent at β = 0 with its variances in the graph, and the probe changes no result."""

import math

import pytest
import torch
import torch.nn.functional as F
from support.helpers import make_trainer, synthetic_data

from latentexp.train.diagnostics import GradientProbe


def test_recorded_norms_equal_autograd_on_a_hand_built_batch():
    # Two samples, logits = z (an identity head): ∂CE/∂z_i = (softmax(z_i) − onehot_i) / 2.
    z = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 0])
    lam = 0.25
    ce = F.cross_entropy(z, labels)
    term = (z**2).sum() / 2  # ∂term/∂z = z
    probe = GradientProbe(every=1, lam=lam, device=torch.device("cpu"))
    probe.record(z, ce, term)
    stats = probe.epoch_stats()

    soft = torch.softmax(z.detach(), 1)
    g_ce = (1 - lam) * (soft - F.one_hot(labels, 2)) / 2
    g_aux = lam * z.detach()
    # By hand: row 0 of g_ce is 0.75·(σ(2)−1, 1−σ(2))/2, row 1 is 0.75·(σ(−1)−1, 1−σ(−1))/2 (σ: sigmoid).
    s2, s_1 = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))
    hand_ce = (0.375 * math.sqrt(2) * (1 - s2) + 0.375 * math.sqrt(2) * (1 - s_1)) / 2
    assert stats["grad_ce_norm"] == pytest.approx(hand_ce, rel=1e-6)
    assert stats["grad_ce_norm"] == pytest.approx(g_ce.norm(dim=1).mean().item(), rel=1e-6)
    assert stats["grad_aux_norm"] == pytest.approx(0.25 * (2.0 + 1.0) / 2, rel=1e-6)
    cosine = (g_aux * g_ce).sum() / (g_aux.norm() * g_ce.norm())
    assert stats["grad_cosine"] == pytest.approx(cosine.item(), rel=1e-6)
    # The probe leaves the step's own gradient to it: the graph is still there, z.grad untouched.
    assert z.grad is None
    ((1 - lam) * ce + lam * term).backward()
    assert torch.allclose(z.grad, g_ce + g_aux)
    assert probe.epoch_stats() == {}  # reset after each epoch


def test_a_term_without_the_latent_in_its_graph_has_zero_norm_and_cosine():
    z = torch.randn(4, 3, requires_grad=True)
    probe = GradientProbe(every=1, lam=0.0, device=torch.device("cpu"))
    probe.record(z, F.cross_entropy(z, torch.tensor([0, 1, 2, 0])), torch.zeros(()))
    stats = probe.epoch_stats()
    assert stats["grad_aux_norm"] == 0.0 and stats["grad_cosine"] == 0.0 and stats["grad_ce_norm"] > 0


def test_head_losses_are_not_probed_and_every_nth_batch_is():
    assert not GradientProbe(10, None, torch.device("cpu")).due(0)  # a head loss: one objective
    probe = GradientProbe(3, 0.5, torch.device("cpu"))
    assert [b for b in range(8) if probe.due(b)] == [0, 3, 6]
    assert not GradientProbe(0, 0.5, torch.device("cpu")).due(0)


@pytest.mark.slow
def test_a_compiled_forward_is_not_probed():
    # One compiled node from the input to latent and logits: autograd would find no path from
    # the cross-entropy back to the latent and record a false 0.
    data = synthetic_data()
    assert make_trainer(data, loss="magnet", compile=True).probe.every == 0
    assert make_trainer(data, loss="magnet").probe.every == 10


def _history(variance_detach: bool, every: int = 1):
    # max_epochs=5: β = 1 − epoch / (0.2·5) is 1 in the first epoch and 0 from the second on.
    trainer = make_trainer(synthetic_data(n=240), f"loss.variance_detach={str(variance_detach).lower()}",
                           loss="latent_boost", lam=0.75, max_epochs=5, gradient_diagnostics_every=every,
                           early_stopping_patience=None, batch_size=60)
    trainer.fit(epochs=2)
    return trainer.history


def test_latent_boost_pushes_nothing_at_beta_zero_unless_the_variances_are_detached():
    first, second = _history(variance_detach=False)
    assert first["beta"] == 1.0 and second["beta"] == 0.0
    assert first["grad_aux_norm"] > 1e-3 * first["grad_ce_norm"]
    # Σ_n d_n / (2σ²_own) over a class is a constant when σ² is that class's mean d: no gradient.
    assert second["grad_aux_norm"] < 1e-5 * second["grad_ce_norm"]
    _, detached = _history(variance_detach=True)
    assert detached["beta"] == 0.0 and detached["grad_aux_norm"] > 1e-2 * detached["grad_ce_norm"]


def test_the_probe_changes_no_result():
    with_probe, without = _history(False, every=1), _history(False, every=0)
    grad_columns = {"grad_aux_norm", "grad_ce_norm", "grad_cosine"}
    for on, off in zip(with_probe, without, strict=True):
        assert grad_columns <= set(on) and not grad_columns & set(off)
        timeless = lambda row: {k: v for k, v in row.items() if k not in grad_columns | {"seconds"}}  # noqa: E731
        assert timeless(on) == timeless(off)


@pytest.mark.slow
def test_the_report_draws_both_norms_of_the_best_lambda_runs(tmp_path):
    from support.runs import finished

    from latentexp.report.command import build_report

    root = tmp_path / "outputs"
    for seed in range(2):
        finished(root, "ce", 0.0, seed, 88.0, val=88.0)
        run_dir = finished(root, "latent_boost", 0.75, seed, 90.0, val=90.0)
        rows = ["epoch,train_loss,val_accuracy,grad_aux_norm,grad_ce_norm,grad_cosine"]
        rows += [f"{e},{1 / e},{80 + e},{0.1 / e},0.01,0.0" for e in range(1, 4)]
        (run_dir / "history.csv").write_text("\n".join(rows) + "\n")
    written = build_report([root], tmp_path / "report", tsne=False)["files"]
    names = {p.name for p in written}
    assert {"gradient_norms_fashion_mnist-cnn.png", "gradient_norms_fashion_mnist-cnn.pdf"} <= names


def test_gradient_norms_script_averages_each_phase_by_hand(tmp_path, capsys):
    from support.helpers import load_script
    from support.runs import finished

    script = load_script("gradient_norms")
    root = tmp_path / "outputs"
    for seed, scale in ((0, 1.0), (1, 3.0)):
        run_dir = finished(root, "latent_boost", 0.75, seed, 90.0, val=90.0)
        rows = ["epoch,beta,grad_aux_norm,grad_ce_norm,grad_cosine",
                f"1,1.0,{0.4 * scale},0.1,0.5", f"2,0.5,{0.2 * scale},0.1,0.3", "3,0.0,0.0,0.2,0.0"]
        (run_dir / "history.csv").write_text("\n".join(rows) + "\n")
    table = script.gradient_norms([str(root)]).set_index("phase")
    # β > 0: aux (0.4 + 0.2 + 1.2 + 0.6) / 4 = 0.6 over 4 epochs of 2 seeds; ce 0.1; cosine 0.4.
    columns = ["grad_aux_norm", "grad_ce_norm", "grad_cosine", "epochs", "seeds"]
    assert table.loc["β > 0", columns].tolist() == pytest.approx([0.6, 0.1, 0.4, 4, 2])
    assert table.loc["β = 0", "grad_aux_norm"] == 0.0 and table.loc["β = 0", "aux / ce"] == 0.0
    script.main([str(root)])
    assert "| latent_boost | 0.75 | β = 0 | 0 | 0.2 | 0 | +0.000 | 2 | 2 |" in capsys.readouterr().out
