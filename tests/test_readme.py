"""Every command the README shows, and every train command of the pages it sends readers to for
more of the same (sweeps, trackers, results, speed), parsed from them and run in this process, so
that no example can rot: a `train` command trains one tiny epoch on the test data (with data limits
appended), a sweep (-m) has every job composed and validated as `latentexp train` does before its
first job (a command that asks for --dry-run lists its runs for real), and report, status, analyze
and bench run on what the train commands wrote."""

import re
import runpy
import shlex

import pytest
import torch
from support.helpers import REPO_ROOT

import latentexp
from latentexp.cli import check_every_job, main
from latentexp.launch.sweeps import job_configs
from latentexp.runs.spec import RunSpec

README = (REPO_ROOT / "README.md").read_text()
# Words that mark syntax or a placeholder rather than a command to run.
PLACEHOLDERS = re.compile(r"[<…\[]|\bPATH\b|\bDIR\b")
# Appended to every train command: one tiny epoch on the test data of its dataset (20 CIFAR test
# images: evaluating VGG-16 or ResNet-50 on more would cost most of the run).
TINY = {
    "fashion_mnist": ["dataset.limit_train=200", "dataset.limit_test=100"],
    "cifar10": ["dataset.limit_train=60", "dataset.val_fraction=0.2", "dataset.limit_test=20",
                "dataset.verify_md5=false"],
    "cifar100": ["dataset.label_set=coarse", "dataset.limit_train=100", "dataset.val_fraction=0.2",
                 "dataset.limit_test=20", "trainer.batch_size=20", "dataset.verify_md5=false"],
}


OWN_IMAGES = README.split("## Latent Boost on your own images", 1)[1].split("\n## ", 1)[0]


def readme_commands(text: str = README) -> list[str]:
    """`latentexp` and `python scripts/...` commands: each line of a bash block (continuations
    joined, comments and `cmd && ` chains split off; the set-up's `.venv/bin/latentexp` is
    `latentexp`), and inline code that runs one (three words or more, no placeholder)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split(" #")[0].split("&&"):
                part = part.strip().removeprefix(".venv/bin/")
                if part.startswith(("latentexp ", "python scripts/")):
                    found.append(" ".join(part.split()))
    for span in re.findall(r"`((?:latentexp|python scripts/)[^`]*)`", text):
        span = span.split(" | ")[0]  # `latentexp status outputs | head -1`: its latentexp part
        if len(span.split()) >= 3 and not PLACEHOLDERS.search(span):
            found.append(" ".join(span.split()))
    return list(dict.fromkeys(found))


# The worked example on your own images runs as one story on its own folder (the last test).
OWN_COMMANDS = readme_commands(OWN_IMAGES)
# Where the README's launchers, searches, trackers, worked example and timings went: their train
# commands are run (or, with -m, planned) as the README's are.
USING_DOCS = ("sweeps.md", "trackers.md", "results.md", "speed.md")
DOC_TRAIN = [c for doc in USING_DOCS for c in readme_commands((REPO_ROOT / "docs" / doc).read_text())
             if c.startswith("latentexp train")]
COMMANDS = [c for c in dict.fromkeys(readme_commands() + DOC_TRAIN) if c not in OWN_COMMANDS]
TRAIN = [c for c in COMMANDS if c.startswith("latentexp train") and " -m " not in f"{c} "]
SWEEPS = [c for c in COMMANDS if c.startswith("latentexp train") and " -m " in f"{c} "]
OTHERS = [c for c in COMMANDS if c not in TRAIN and c not in SWEEPS]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")


@pytest.fixture
def in_workdir(workdir, monkeypatch, data_root):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("LATENTEXP_DATA", str(data_root))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    return workdir


def test_the_readme_shows_the_commands_we_expect_to_test():
    assert len(TRAIN) >= 8 and len(SWEEPS) >= 5 and len(OTHERS) >= 4, COMMANDS
    assert "latentexp train loss=latent_boost lambda=0.75" in TRAIN
    assert "latentexp report outputs" in OTHERS and "latentexp bench --quick" in OTHERS
    joblib = ("latentexp train -m experiment=paper_table2_cifar10 hydra/launcher=joblib "
              "hydra.launcher.n_jobs=4")
    assert joblib in SWEEPS  # from docs/sweeps.md


SET_UP = re.search(r"## Set-up.*?```bash\n(.*?)```", README, flags=re.S).group(1).splitlines()


def test_ci_runs_the_readme_set_up_and_its_test_command():
    """.ci/run is the README's set-up on a fresh machine: each step of its first command but the
    training, then its test command, as they are written (-q and -qq aside)."""
    assert len(SET_UP) == 2, SET_UP
    install, tests = SET_UP
    assert install.endswith("&& .venv/bin/latentexp train") and tests == ".venv/bin/python -m pytest -q"
    unquiet = lambda line: " ".join(w for w in line.split() if w not in ("-q", "-qq"))  # noqa: E731
    steps = [unquiet(step) for step in install.split("&&")[:-1]] + [unquiet(tests)]
    ci = [unquiet(line) for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    assert [line for line in ci if line in steps] == steps, ci


def call(argv: list[str]) -> None:
    """``latentexp ARGV`` in this process; exit 0 (Hydra's --help exits) is success."""
    try:
        main(argv)
    except SystemExit as stop:
        assert stop.code in (0, None), f"latentexp {' '.join(argv)} exited {stop.code}"


@pytest.mark.slow
@pytest.mark.parametrize("command", TRAIN)
def test_every_train_command(command, in_workdir, capsys):
    args = shlex.split(command)[2:]
    if any(flag in args for flag in ("--help", "--cfg")):
        call(["train", *args])
        assert "lambda:" in capsys.readouterr().out
        return
    assert train_tiny(args)["status"] == "finished"


def train_tiny(args: list[str]) -> dict:
    """A README train command with one epoch on the test data, in this directory; its result (a
    run finished before is not trained again)."""
    (cfg,) = job_configs(args, multirun=False)
    tiny = [*args, "trainer.max_epochs=1", "device=cpu", *TINY[cfg.dataset.name]]
    call(["train", *tiny])
    (job,) = job_configs(tiny, multirun=False)
    return RunSpec.from_config(job).files.read_result()


@pytest.mark.slow
@pytest.mark.parametrize("command", SWEEPS)
def test_every_sweep_command(command, in_workdir, capsys):
    args = shlex.split(command)[2:]
    if "--dry-run" in args:  # the README asks for the listing: give it for real
        call(["train", *args])
        assert re.search(r"\d+ jobs, \d+ distinct runs", capsys.readouterr().out)
    else:
        check_every_job(args, dry_run=True)  # every job composed (launcher settings too) and validated


@pytest.mark.slow
@pytest.mark.parametrize("command", OTHERS)
def test_every_other_command(command, in_workdir, capsys):
    # On the Fashion-MNIST runs of the README's train commands (trained here unless this worker
    # ran those tests first): the CIFAR ones cost a VGG-16 and a ResNet-50 epoch each, and their own
    # tests train them already.
    for train in TRAIN:
        args = shlex.split(train)[2:]
        if not any(flag in args for flag in ("--help", "--cfg")) and \
                job_configs(args, multirun=False)[0].dataset.name == "fashion_mnist":
            train_tiny(args)
    capsys.readouterr()
    args = shlex.split(command)
    if args[:2] == ["python", "scripts/gradient_norms.py"]:  # on the runs the train commands wrote
        runpy.run_path(str(REPO_ROOT / args[1]), run_name="not_main")["main"](args[2:])
        assert "| latent_boost | 0.75 |" in capsys.readouterr().out
        return
    if args[0] == "python":  # python scripts/bench.py ... is `latentexp bench ...`
        args = ["latentexp", "bench", *args[2:]]
    name, rest = args[1], args[2:]
    if name == "bench":
        if "cuda" in rest and not torch.cuda.is_available():
            pytest.skip("needs a CUDA device")
        rest = [a for a in rest if a not in (">",) and not a.startswith("docs/")]
        call([name, *rest, "--quick", "--models", "cnn", "--batch-size", "32", "--test-samples", "64"])
        assert "trainer" in capsys.readouterr().out
        return
    if name == "analyze":
        rest = [str(next((in_workdir / "outputs" / "runs").glob("*/result.json")).parent), *rest[1:]]
    call([name, *rest])
    assert capsys.readouterr().out.strip()


@pytest.mark.slow
def test_latent_boost_on_your_own_images(tmp_path, monkeypatch, capsys):
    """The section's commands in order, on a generated folder of three classes of pictures of
    varying sizes: each as written, with one epoch, 8x8 images, 2 trials and one seed appended or
    put in place (a ResNet-18 run takes seconds even so); the report names the classes."""
    from support.datasets import write_image_folder

    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "my_images", classes=3, per_class=10)
    steps = [c.split()[1:3] for c in OWN_COMMANDS]
    assert steps == [["train", "-m"], ["train", "-m"], ["train", "-m"], ["report", "outputs/my_images"]]
    quick = ["trainer.max_epochs=1", "device=cpu", "dataset.image_size=8", "trainer.batch_size=8"]
    for command in OWN_COMMANDS:
        quicker = command.replace("n_trials=20", "n_trials=2").replace("seed=0,1,2,3,4", "seed=0")
        args = shlex.split(quicker)[1:]
        call(args + quick if args[0] == "train" else args)
    runs = latentexp.load_runs(tmp_path / "outputs" / "my_images")
    assert (runs.status == "finished").all() and set(runs.dataset) == {"my_images"}
    assert len(runs) == 2 + 3  # 2 trials; the baseline, Magnet and Latent Boost
    assert (tmp_path / "outputs" / "my_images" / "optimization_results.yaml").is_file()
    assert runs.class_names.iloc[0] == ["class_a0", "class_b1", "class_c2"]
    assert list((tmp_path / "outputs" / "my_images" / "report").glob("*.md"))
