"""The run spec: λ's rules, the identity and its hash, resolved once from a composed config."""

import json

import pytest
from support.helpers import make_spec

from latentexp.losses.base import mix_with_cross_entropy
from latentexp.runs import spec as spec_module
from latentexp.runs.spec import FORMAT_VERSION, RunSpec

BASE = ("dataset=fashion_mnist", "model=cnn", "seed=3")


@pytest.mark.slow
def test_every_lambda_zero_job_is_one_baseline_run_per_seed():
    auxiliary = ("magnet", "latent_boost", "contrastive", "center", "lmdl")
    specs = [make_spec(*BASE, f"loss={loss}", "lambda=0") for loss in auxiliary]
    specs.append(make_spec(*BASE, "loss=ce", "lambda=0.75"))  # cross-entropy ignores λ
    assert len({s.name for s in specs}) == 1 and len({json.dumps(s.to_json()) for s in specs}) == 1
    baseline = specs[0]
    assert baseline.name.startswith("fashion_mnist-cnn-ce-lam0-seed3-")
    assert (baseline.loss, baseline.lam, baseline.loss_kind, baseline.lambda_key) == ("ce", 0.0, "auxiliary",
                                                                                       "lambda")
    assert baseline.config["loss"]["name"] == "ce" and baseline.config["lambda"] == 0.0  # what it trains
    magnet = make_spec(*BASE, "loss=magnet", "lambda=0.5")
    assert magnet.name.startswith("fashion_mnist-cnn-magnet-lam0.5-seed3-") and magnet.lam == 0.5


def test_a_head_loss_has_no_lambda_unless_its_own_parameter_plays_it():
    arcface = {make_spec(*BASE, "loss=arcface", f"lambda={lam}") for lam in (0.25, 0.5)}
    assert len(arcface) == 1
    (arcface,) = arcface
    assert "-lam" not in arcface.name and arcface.lam is None and arcface.lambda_key is None
    assert arcface.loss_kind == "head" and "lambda" not in arcface.config
    corel = [make_spec(*BASE, "loss=corel_cosine", f"lambda={lam}") for lam in (0.3, 0.6)]
    assert [c.lam for c in corel] == [0.3, 0.6] and all(c.lambda_key == "loss.lam" for c in corel)
    assert all("-corel_cosine-lam" in c.name for c in corel) and corel[0].name != corel[1].name
    assert make_spec(*BASE, "loss=corel_cosine", "lambda=0.3", "loss.lam=0.9").lam == 0.9


@pytest.mark.slow
def test_where_and_how_visibly_a_run_happens_is_not_its_identity():
    base = make_spec(*BASE)
    for override in ("device=cpu", "output_root=elsewhere", "dataset.root=/data", "dataset.download=false",
                     "trainer.progress=true", "trainer.eval_batch_size=7"):
        other = make_spec(*BASE, override)
        assert (other.name, other.hash, other.identity) == (base.name, base.hash, base.identity), override


def test_the_identity_holds_the_format_version_and_the_hash_covers_it(monkeypatch):
    spec = make_spec(*BASE)
    assert spec.identity["format"] == FORMAT_VERSION == spec.format
    monkeypatch.setattr(spec_module, "FORMAT_VERSION", FORMAT_VERSION + 1)
    assert make_spec(*BASE).hash != spec.hash  # a new format never reuses an older run


def test_the_spec_round_trips_through_json_without_its_directory(tmp_path):
    spec = make_spec(*BASE, "loss=corel_gaussian")
    data = json.loads(json.dumps(spec.to_json()))
    assert "run_dir" not in data
    again = RunSpec.from_json(data, tmp_path)
    assert again == spec and again.run_dir == tmp_path and again.files.path == tmp_path


def test_the_run_directory_is_under_the_output_root_unless_given(tmp_path):
    spec = make_spec(*BASE, f"output_root={tmp_path}")
    assert spec.run_dir == tmp_path / "runs" / spec.name
    assert RunSpec.from_config(spec.config | {"output_root": "x"}, run_dir=tmp_path).run_dir == tmp_path


def test_eq11_mixes_by_lambda_and_skips_the_auxiliary_loss_at_zero():
    mix = mix_with_cross_entropy
    assert mix(0.25, 2.0, lambda: 6.0) == (0.25 * 6.0 + 0.75 * 2.0, 6.0)
    assert mix(1.0, 2.0, lambda: 6.0) == (6.0, 6.0)  # λ = 1: cross-entropy has no weight
    assert mix(0.0, 2.0, lambda: pytest.fail("computed at λ = 0")) == (2.0, None)
