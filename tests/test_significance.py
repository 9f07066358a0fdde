"""Paired comparisons (report/stats.py, report/comparisons.py), the ablation table and the
`paper_ablation_<ds>` presets, on hand-computed numbers."""

import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from support.runs import finished

from latentexp.config.tree import config_dir, group_option
from latentexp.launch.sweeps import preset_configs
from latentexp.report.command import build_report
from latentexp.report.comparisons import diff_text, p_text, power_text
from latentexp.report.stats import (
    holm,
    minimum_detectable,
    paired,
    seeds_needed,
    smallest_wilcoxon_p,
    t_test_power,
)

# Hand values: diffs 1, 2, 3 → mean 2, sd 1, t = 2/(1/√3) = 3.464 with 2 degrees of freedom,
# two-sided p = 0.0742; t_0.975(2) = 4.303, so the interval is 2 ± 4.303/√3 = 2 ± 2.484.
# Wilcoxon: three positive ranks, the exact two-sided p is 2 · (1/2³) = 0.25.


def test_paired_difference_interval_and_tests_by_hand():
    c = paired({0: 91.0, 1: 92.0, 2: 93.0, 7: 50.0}, {0: 90.0, 1: 90.0, 2: 90.0, 3: 10.0})
    assert c.n == 3  # only the seeds both cells have
    assert c.mean == pytest.approx(2.0)
    assert (c.low, c.high) == pytest.approx((2 - 2.4842, 2 + 2.4842), abs=1e-4)
    assert c.p_t == pytest.approx(0.0742, abs=1e-4)
    assert c.p_w == pytest.approx(0.25)


def test_paired_edge_cases():
    assert math.isnan(paired({0: 1.0}, {0: 0.0}).p_t)  # one shared seed: nothing to test
    assert paired({0: 1.0}, {0: 0.0}).mean == 1.0
    assert math.isnan(paired({0: 1.0, 1: math.nan}, {0: 0.0, 1: 0.0}).low)  # NaN seeds left out
    same = paired({0: 90.1, 1: 91.3, 2: 89.7}, {0: 90.0, 1: 91.2, 2: 89.6})  # every seed moved by 0.1
    assert math.isnan(same.p_t) and same.low == same.high == pytest.approx(0.1) and same.p_w == 0.25
    none = paired({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert none.mean == 0.0 and none.p_t == 1.0 and none.p_w == 1.0
    assert smallest_wilcoxon_p(5) == 0.0625


def test_holm_by_hand():
    # Sorted 0.01, 0.03, 0.04 → 3·0.01, max(that, 2·0.03), max(that, 1·0.04).
    assert holm([0.01, 0.04, 0.03, math.nan])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm([0.01, math.nan])[1])
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1


# Hand values of the paired t-test's power (two-sided α = 0.05, 80 % power), as G*Power and
# statsmodels' TTestPower.solve_power give them: the detectable effect, in standard deviations of the
# differences, is 3.2640 with 3 pairs, 1.6820 with 5 and 0.9960 with 10; an effect of 2 sd needs 4.22
# pairs (5), 1 sd 9.94 (10), 0.5 sd 33.37 (34), 0.25 sd 127.5 (128).
@pytest.mark.parametrize(("n", "effect"), [(3, 3.2640), (5, 1.6820), (10, 0.9960)])
def test_minimum_detectable_difference_by_hand(n, effect):
    assert minimum_detectable(1.0, n) == pytest.approx(effect, abs=1e-4)
    assert minimum_detectable(0.4, n) == pytest.approx(0.4 * effect, abs=1e-4)  # in the values' units
    assert t_test_power(effect, n) == pytest.approx(0.8, abs=1e-4)
    assert t_test_power(0.0, n) == pytest.approx(0.05)  # no effect: the test's own α


@pytest.mark.parametrize(("diff", "sd", "seeds"), [(2.0, 1.0, 5), (-1.0, 1.0, 10), (0.25, 0.5, 34),
                                                   (0.1, 0.4, 128), (30.0, 1.0, 2)])
def test_seeds_needed_by_hand(diff, sd, seeds):
    assert seeds_needed(diff, sd) == seeds
    assert t_test_power(abs(diff) / sd, seeds) >= 0.8 > (t_test_power(abs(diff) / sd, seeds - 1)
                                                          if seeds > 2 else 0.0)


def test_power_edge_cases():
    assert seeds_needed(0.0, 1.0) == math.inf  # no difference: no number of seeds finds it
    assert seeds_needed(1e-4, 1.0) == math.inf  # more than MOST_SEEDS
    assert math.isnan(seeds_needed(1.0, 0.0))  # every seed moved alike: no t-test
    assert math.isnan(minimum_detectable(1.0, 1)) and minimum_detectable(0.0, 4) == 0.0
    c = paired({0: 91.0, 1: 92.0, 2: 93.0}, {0: 90.0, 1: 90.0, 2: 90.0})  # mean 2, sd 1, 3 seeds
    assert (c.sd, c.seeds_needed) == (pytest.approx(1.0), 5) and c.mde == pytest.approx(3.2640, abs=1e-4)
    assert power_text(c.mde, c.seeds_needed) == "3.26; 5" and power_text(math.nan, math.nan) == "—"
    assert power_text(0.5, math.inf) == "0.50; ∞" and power_text(0.0, math.nan) == "—"


def test_power_agrees_with_statsmodels():
    power = pytest.importorskip("statsmodels.stats.power").TTestPower()
    for n in (2, 3, 4, 5, 7, 10, 20, 50):
        for effect in (0.2, 0.8, 1.5, 3.0):
            theirs = power.power(effect, n, 0.05)  # NaN far in a tail (scipy's nct), where ours is 1
            expected = theirs if math.isfinite(theirs) else 1.0
            assert t_test_power(effect, n) == pytest.approx(expected, abs=1e-9)
        if n > 2:
            assert minimum_detectable(1.0, n) == pytest.approx(
                power.solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8), rel=1e-5)
    for effect in (0.3, 0.7, 1.2):
        assert seeds_needed(effect, 1.0) == math.ceil(power.solve_power(effect_size=effect, alpha=0.05,
                                                                        power=0.8))


def test_cell_texts():
    assert diff_text(2.0, -0.4842, 4.4842, 0.0742) == "+2.00 [-0.48, +4.48]"
    assert diff_text(2.0, 1.0, 3.0, 0.01) == "+2.00 [+1.00, +3.00]*"
    assert diff_text(2.0, math.nan, math.nan, math.nan) == "+2.00"
    assert diff_text(2.0, 1.0, 3.0, 0.01, n=2, of=3) == "+2.00 [+1.00, +3.00]* (n = 2)"
    assert diff_text(2.0, 1.0, 3.0, 0.01, n=3, of=3) == "+2.00 [+1.00, +3.00]*"
    assert p_text(0.0004, 0.25) == "<0.001; 0.250" and p_text(math.nan, math.nan) == "—"


@pytest.fixture
def ablation_sweep(tmp_path) -> Path:
    """Three seeds at λ = 0.75: the baseline, Magnet, Latent Boost and two variants, built so that
    all but two comparisons move every seed by the same amount (no t-test)."""
    root = tmp_path / "outputs"
    for seed in range(3):
        finished(root, "ce", 0.0, seed, 88.0 + seed, val=80.0, epochs=40, silhouette=0.3)
        finished(root, "magnet", 0.75, seed, 90.0 + seed, val=80.0, epochs=36, silhouette=0.35)
        finished(root, "latent_boost", 0.75, seed, 91.0 + seed, val=80.0, epochs=30 + 2 * seed,
                 silhouette=0.4)
        finished(root, "latent_boost", 0.75, seed, 90.0, val=80.0, epochs=34, silhouette=0.38, pca=False)
        finished(root, "latent_boost", 0.75, seed, 91.5 + seed, val=80.0, epochs=32, silhouette=0.2,
                 variance_detach=True)
    return root


@pytest.mark.slow
def test_ablation_table_by_hand(ablation_sweep, tmp_path):
    markdown = build_report([ablation_sweep], tmp_path / "report", with_figures=False)["markdown"]
    table = markdown.split("## Ablation at λ = 0.75: fashion_mnist / cnn")[1].split("\n## ")[0]
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| Variant")}
    assert list(rows) == ["Baseline", "Magnet", "Latent Boost", "Latent Boost (pca=false)",
                          "Latent Boost (variance_detach=true)"]
    # Columns: accuracy, silhouette, epochs, seeds, then Δ, p and MDE; seeds vs LB, and vs baseline.
    assert rows["Latent Boost"][:4] == ["92.00 ± 1.00", "0.400 ± 0.000", "32.0 ± 2.0", "3"]
    assert rows["Latent Boost"][4:7] == ["—", "—", "—"]
    assert rows["Baseline"][7:10] == ["—", "—", "— |"]
    # pca=false: −1, −2, −3 against Latent Boost (the hand values above, negated); 2, 1, 0 against
    # the baseline: mean 1, sd 1, interval 1 ± 2.484, t = 1.732, p = 0.2254. Holm over the two
    # t-tests of the table (its five other comparisons move every seed alike): 2 · 0.0742 = 0.148,
    # then max(0.148, 1 · 0.2254). Wilcoxon: 0.25 for 3 pairs, 0.5 for 2 (a zero is dropped), ·7 → 1.
    # MDE with 3 seeds and sd 1: 3.26 (see the power test); |Δ| = 2 sd needs 5 seeds, 1 sd needs 10.
    assert rows["Latent Boost (pca=false)"][4:] == ["-2.00 [-4.48, +0.48]", "0.148; 1.000", "3.26; 5",
                                                    "+1.00 [-1.48, +3.48]", "0.225; 1.000", "3.26; 10 |"]
    # Every seed moved by 0.5: sd 0, so the t-test (and its power) is undefined.
    assert rows["Latent Boost (variance_detach=true)"][4:7] == ["+0.50 [+0.50, +0.50]", "—; 1.000", "—"]
    assert rows["Magnet"][4] == "-1.00 [-1.00, -1.00]" and rows["Magnet"][7] == "+2.00 [+2.00, +2.00]"
    # The baseline against Latent Boost is Latent Boost's row against the baseline: counted once.
    assert rows["Baseline"][4:7] == ["—", "—", "—"] and rows["Latent Boost"][7] == "+3.00 [+3.00, +3.00]"


def test_no_ablation_table_without_latent_boost_variants(tmp_path):
    root = tmp_path / "outputs"
    for seed in range(2):
        finished(root, "ce", 0.0, seed, 88.0 + seed, val=80.0)
        finished(root, "latent_boost", 0.75, seed, 90.0, val=80.0)
    assert "Ablation" not in build_report([root], tmp_path / "r", with_figures=False)["markdown"]


# What each option of conf/ablation/ must be: the loss and its parameters that differ from
# conf/loss/<loss>.yaml.
ABLATIONS = {
    "baseline": ("ce", {}),
    "magnet": ("magnet", {}),
    "full": ("latent_boost", {}),
    "no_pca": ("latent_boost", {"pca": False}),
    "no_per_class_variance": ("latent_boost", {"per_class_variance": False}),
    "no_schedule": ("latent_boost", {"schedule": False}),
    "only_pca": ("latent_boost", {"per_class_variance": False, "schedule": False}),
    "only_per_class_variance": ("latent_boost", {"pca": False, "schedule": False}),
    "only_schedule": ("latent_boost", {"pca": False, "per_class_variance": False}),
    "variance_detach": ("latent_boost", {"variance_detach": True}),
    "no_hinge": ("latent_boost", {"hinge": False}),
}
BEST_LAMBDA = {"fashion_mnist": 0.75, "cifar10": 0.75, "cifar100": 0.5}  # the paper's Table 2


def _variant(cfg) -> tuple[str, dict]:
    loss = OmegaConf.to_container(cfg.loss)
    defaults = group_option("loss", loss["name"])
    return loss["name"], {k: v for k, v in loss.items() if k != "_target_" and defaults.get(k) != v}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(BEST_LAMBDA))
def test_ablation_preset_is_exactly_the_grid(dataset):
    assert {p.stem for p in (Path(config_dir()) / "ablation").glob("*.yaml")} == set(ABLATIONS)
    configs = preset_configs(f"paper_ablation_{dataset}")
    assert len(configs) == len(ABLATIONS) * 5
    paper = preset_configs(f"paper_{dataset}")[0]
    jobs = set()
    for cfg in configs:
        assert cfg.dataset.name == dataset and cfg.model.name == paper.model.name
        assert cfg["lambda"] == BEST_LAMBDA[dataset]
        name, changes = _variant(cfg)
        jobs.add((name, tuple(sorted(changes.items())), cfg.seed))
    expected = {(name, tuple(sorted(changes.items())), seed)
                for name, changes in ABLATIONS.values() for seed in range(5)}
    assert jobs == expected


def test_variants_stay_out_of_table_2_where_their_loss_ran(ablation_sweep, tmp_path):
    markdown = build_report([ablation_sweep], tmp_path / "report", with_figures=False)["markdown"]
    summary = markdown.split("## Best λ by validation accuracy (Table 2)")[1].split("\n## ")[0]
    # One setup: the title names it, no column repeats it.
    assert "| Metric | Source | Baseline | Magnet | Latent Boost | Improv. (%) |" in summary
    # Latent Boost 91, 92, 93 against Magnet 90, 91, 92: +1 on every seed.
    assert "| Δ acc. vs Magnet | ours |  |  | +1.00 [+1.00, +1.00] |  |" in summary
    assert "pca=false" not in summary and "pca=false" in markdown
