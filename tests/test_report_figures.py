"""The report's figures: file names safe and unique whatever the runs recorded, written atomically,
an index that says which file is which, and figures a reader can read (one λ, variants, classes)."""

import os
import subprocess
import sys
from urllib.parse import unquote

import numpy as np
import pytest
from matplotlib.figure import Figure
from support.runs import finished, with_spec_fields

from latentexp.io import write_npz
from latentexp.report import figures
from latentexp.report.cells import best_cells, summarise_cells
from latentexp.report.collect import collect_runs
from latentexp.report.command import build_report
from latentexp.report.names import MAX_PART, file_part
from latentexp.runs.rundir import RunDir

TRICKY = ["fashion_mnist", "../../escape/NAME", "a/b", "a%2Fb", "a_b", "a-b", "a+b", ".hidden", "..", ".",
          "", "tab\there", "new\nline", "λ-data", "\ud800", "x" * 200, "x" * 199 + "y", "%2E" + "x" * 100]


def test_file_parts_are_safe_and_one_to_one():
    parts = [file_part(name) for name in TRICKY]
    assert len(set(parts)) == len(TRICKY)  # no two names share a file
    for name, part in zip(TRICKY, parts, strict=True):
        assert "/" not in part and "\\" not in part and not part.startswith(".") and ".." not in part
        assert part.isprintable() and part.isascii() and "-" not in part and len(part) <= MAX_PART
        if "+" not in part:  # not shortened: it reads back
            assert unquote(part, errors="surrogatepass") == name
    assert file_part("fashion_mnist") == "fashion_mnist" and file_part("a/b") == "a%2Fb"


def test_a_hostile_run_tree_gets_its_figures_inside_the_report_and_none_overwritten(tmp_path):
    """Dataset names from disk that name a path, hold a '/', or differ only where they are made safe."""
    shared = tmp_path / "shared"
    names = ["../../../../escape/NAME", "a/b", "a_b", "a%2Fb"]  # the first climbs out of --out
    for seed, dataset in enumerate(names):  # seeds apart: the runs' own directories are apart
        with_spec_fields(finished(shared / "outputs", "magnet", 0.5, seed, 88.0, val=88.0), dataset=dataset)
    before = {p for p in tmp_path.rglob("*")}
    out = shared / "outputs" / "report"
    files = build_report([shared / "outputs"], out, formats=("md",), tsne=False)["files"]
    new = {p for p in tmp_path.rglob("*")} - before
    assert {p for p in new if p.is_dir()} == {out, out / "figures"}, sorted(map(str, new))
    assert all(p == out or p.parent in (out, out / "figures") for p in new), sorted(map(str, new))
    pictures = [f for f in files if f.suffix == ".png"]
    assert all(f.parent == out / "figures" for f in files if f.suffix in (".png", ".pdf"))
    curves = sorted(f.name for f in pictures if f.name.startswith("training_curves_"))
    assert curves == sorted(f"training_curves_{file_part(name)}-cnn.png" for name in names)  # one each
    index = (out / "figures" / "README.md").read_text()
    assert all(f"[{f.name}]" in index for f in pictures) and "| a/b / cnn |" in index


def test_a_figure_that_fails_while_drawing_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    old = {tmp_path / "curve.png": b"old png", tmp_path / "curve.pdf": b"old pdf"}
    for path, data in old.items():
        path.write_bytes(data)
    fig = Figure()
    fig.subplots().plot([0, 1], [0, 1])
    draw = fig.savefig

    def fails_on_pdf(target, format, **options):
        draw(target, format=format, **options)
        if format == "pdf":
            raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", fails_on_pdf)
    with pytest.raises(OSError, match="disk full"):
        figures.save(fig, tmp_path, "curve")
    # No new PNG beside the old PDF, and no temporary file left.
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == old
    monkeypatch.setattr(fig, "savefig", draw)
    assert [p.name for p in figures.save(fig, tmp_path, "curve")] == ["curve.png", "curve.pdf"]
    assert all(p.read_bytes() != old[p] for p in old) and sorted(p.name for p in tmp_path.iterdir()) == [
        "curve.pdf", "curve.png"]


@pytest.mark.slow  # a process of its own: imports the report's figures, torch included
def test_a_report_killed_while_writing_a_figure_leaves_the_previous_one_whole(tmp_path):
    (tmp_path / "curve.png").write_bytes(b"old png")
    script = ("import sys; from pathlib import Path; from matplotlib.figure import Figure; "
              "from latentexp.report.figures import save; fig = Figure(); fig.subplots().plot([0, 1]); "
              "save(fig, Path(sys.argv[1]), 'curve')")
    env = {**os.environ, "LATENTEXP_FAULT": "curve.png:1"}  # SIGKILL half way through writing it
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()
    assert (tmp_path / "curve.png").read_bytes() == b"old png"
    assert not (tmp_path / "curve.pdf").exists()  # never a new PDF beside the old PNG either


def _drawn(monkeypatch) -> list[Figure]:
    """The figures ``figures.save`` is given, saved as usual."""
    drawn, save = [], figures.save
    monkeypatch.setattr(figures, "save", lambda fig, out, stem: drawn.append(fig) or save(fig, out, stem))
    return drawn


@pytest.mark.slow
def test_one_lambda_is_drawn_as_points_and_each_setup_is_said_once(tmp_path, monkeypatch):
    root = tmp_path / "outputs"
    for epochs in (2, 10):
        for seed in (0, 1):
            finished(root, "ce", 0.0, seed, 88.0 + seed, val=88.0, max_epochs=epochs)
            finished(root, "magnet", 0.5, seed, 89.0 + seed, val=89.0, max_epochs=epochs)
    drawn = _drawn(monkeypatch)
    report = build_report([root], tmp_path / "report", formats=("md",), tsne=False)
    accuracy = [fig for fig in drawn if "accuracy at λ = 0.5" in fig.axes[0].get_title()]
    assert len(accuracy) == 2
    assert all("the one λ that ran" in fig.axes[0].get_title().replace("\n", " ") for fig in accuracy)
    ticks = [t.get_text() for t in accuracy[0].axes[0].get_xticklabels()]
    assert ticks == ["Baseline (λ = 0)\n2 seeds", "Magnet\n2 seeds"]
    for fig in drawn:  # titles fit their figure: the settings on lines of their own
        title = fig.axes[0].get_title() or fig.get_suptitle()
        assert max(map(len, title.splitlines())) * figures.TITLE_SIZE * 0.6 / 72 <= fig.get_figwidth()
    markdown = report["markdown"]
    for table in ("Best λ by validation accuracy (Table 2)", "Silhouette of the test latents (Table 3)"):
        text = markdown.split(f"## {table}")[1].split("\n## ")[0]
        assert text.count("trainer.max_epochs=10") == 1 and text.count("trainer.max_epochs=2") == 1
    index = (tmp_path / "report" / "figures" / "README.md").read_text()
    assert index.count("trainer.max_epochs=10") == 1


def test_pca_components_keep_an_ablations_variants_apart(tmp_path, monkeypatch):
    root = tmp_path / "outputs"
    for seed in (0, 1):
        finished(root, "latent_boost", 0.75, seed, 90.0, val=90.0)
        finished(root, "latent_boost", 0.75, seed, 89.0, val=89.0, hinge=False)
    drawn = _drawn(monkeypatch)
    figures.pca_components_figure(collect_runs([root]), tmp_path / "figures")
    (fig,) = drawn
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["Latent Boost, λ = 0.75", "Latent Boost (hinge=false), λ = 0.75"]


def test_the_t_sne_figure_has_one_legend_of_the_classes(sweep_runs, tmp_path, monkeypatch):
    runs, best = sweep_runs
    drawn = _drawn(monkeypatch)
    figures.tsne_panels(runs, best, tmp_path, compute=False)
    (fig,) = drawn
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["class 0", "class 1", "class 2", "class 3"]


@pytest.fixture
def sweep_runs(written_sweep):
    """The hand-written sweep with a cached t-SNE embedding for each of Fig. 2's three losses
    (four classes, no class names: runs before format 5 recorded none)."""
    runs = collect_runs([written_sweep])
    best = best_cells(summarise_cells(runs))
    for loss in ("ce", "magnet", "latent_boost"):
        for run_dir in runs.loc[(runs["loss"] == loss) & (runs["status"] == "finished"), "run_dir"]:
            write_npz(RunDir(run_dir).tsne, embedding=np.zeros((8, 2), np.float32), labels=np.arange(8) % 4)
    return runs, best


def test_every_figure_file_is_in_the_index(written_sweep, tmp_path):
    files = build_report([written_sweep], tmp_path / "report", formats=(), tsne=False)["files"]
    index = (tmp_path / "report" / "figures" / "README.md").read_text()
    pictures = [f for f in files if f.suffix in (".png", ".pdf")]
    assert pictures and all(f"({f.name})" in index for f in pictures)
    assert (tmp_path / "report" / "figures" / "README.md") in files


def test_a_figure_says_how_many_seeds_its_spread_stands_on():
    from latentexp.report.figures import over_seeds

    assert over_seeds([5, 5, 5]) == "mean ± std over 5 seeds"
    assert over_seeds([1, 5]) == "mean ± std over 1–5 seeds"
    assert over_seeds([1, 1]) == "one seed, no ±"


def test_a_searchs_trials_are_one_series_of_points_beside_the_curves(tmp_path, monkeypatch):
    root = tmp_path / "outputs"
    for seed in (0, 1):
        finished(root, "ce", 0.0, seed, 88.0, val=88.0)
        for lam in (0.25, 0.5, 0.75):
            finished(root, "magnet", lam, seed, 89.0, val=89.0)
    for lam, T in ((0.3, 0.81), (0.6, 0.9035278047694104), (0.9, 0.97)):  # three one-seed trials
        finished(root, "latent_boost", lam, 0, 90.0, val=90.0, T=T)
    for seed in (0, 1):  # an ablation's variant, two seeds: a curve of its own
        finished(root, "latent_boost", 0.75, seed, 90.0, val=90.0, hinge=False)
    drawn = _drawn(monkeypatch)
    figures.accuracy_vs_lambda(summarise_cells(collect_runs([root])), tmp_path / "figures")
    (fig,) = drawn
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()
             if not line.get_label().startswith("_")}
    assert set(lines) == {"Baseline (λ = 0)", "Magnet", "Latent Boost (hinge=false)",
                          "Latent Boost: 3 one-seed settings (a search)"}
    trials = lines["Latent Boost: 3 one-seed settings (a search)"]
    assert trials.get_linestyle() == "None" and len(trials.get_xdata()) == 3
    assert lines["Magnet"].get_linestyle() != "None"
