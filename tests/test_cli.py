"""The `latentexp` console script: its commands in this process, and in subprocesses what only a
process shows (the exit code of the installed script, the wheel)."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support.helpers import cli, latentexp, result_files

pytestmark = pytest.mark.slow

TINY = ["trainer.max_epochs=1", "dataset.limit_train=300", "trainer.batch_size=64", "device=cpu"]


def test_train_end_to_end_then_skip_when_finished(here, capfd):
    assert cli("train", "loss=latent_boost", "lambda=0.75", *TINY) == 0
    (result,) = result_files(here / "outputs")
    data = json.loads(result.read_text())
    assert data["status"] == "finished" and data["spec"]["lambda"] == 0.75
    assert result.parent.name.startswith("fashion_mnist-cnn-latent_boost-lam0.75-seed0-")
    assert (result.parent / "history.csv").exists() and (result.parent / ".hydra" / "config.yaml").exists()
    before = result.stat().st_mtime_ns
    capfd.readouterr()
    assert cli("train", "loss=latent_boost", "lambda=0.75", *TINY) == 0
    again = capfd.readouterr()
    assert "not training again" in again.out + again.err
    assert result.stat().st_mtime_ns == before


def test_multirun_sweep_writes_one_directory_per_run(here):
    assert cli("train", "-m", "loss=ce,magnet", "lambda=0.5", "hydra.launcher.n_jobs=1", *TINY) == 0
    names = sorted(p.parent.name for p in result_files(here / "outputs"))
    assert len(names) == 2 and names[0].startswith("fashion_mnist-cnn-ce-lam0-seed0-")  # ce ignores λ
    assert names[1].startswith("fashion_mnist-cnn-magnet-lam0.5-seed0-")


@pytest.mark.parametrize(
    "args,code,needles",
    [
        (["loss=latent_boots"], 2, ["loss=latent_boots is not an option", "latent_boost", "magnet"]),
        (["lambda=1.5"], 2, ["lambda=1.5 is invalid", "[0, 1]"]),
        (["lambda=abc"], 2, ["lambda='abc' is invalid"]),
        (["trainer.max_epochs=0"], 2, ["trainer.max_epochs=0 is invalid", "positive integer"]),
        (["device=gpu"], 2, ["device='gpu' is invalid", "auto, cpu, cuda"]),
        (["loss.T=0"], 2, ["loss.T=0 is invalid", "(0, 1]"]),
        (["+loss.gamma=2"], 2, ["loss.gamma is not a parameter of LatentBoostLoss", "alpha0"]),
        (["dataset=cifar10", "dataset.download=false"], 2, ["Dataset cifar10 was not found", "Searched"]),
        (["dataset=mnist2"], 2, ["dataset=mnist2 is not an option", "fashion_mnist", "cifar10"]),
        (["experiment=paper_table9_cifar10"], 2, ["experiment=paper_table9_cifar10", "paper_table8_cifar10"]),
        (["-m", "loss=magnet,triplett"], 2, ["loss=triplett is not an option", "triplet"]),
        (["seed=-1"], 2, ["seed=-1 is invalid", "an integer from 0 to 2**32 - 1"]),
        (["trainer.batch_size=0"], 2, ["trainer.batch_size=0 is invalid", "positive integer"]),
        (["dataset.val_fraction=1.5"], 2, ["dataset.val_fraction=1.5 is invalid", "(0, 1)"]),
        (["dataset.limit_test=1"], 2, ["dataset.limit_test=1 is invalid", "integer >= 2"]),
        (["trainer.compile=maybe"], 2, ["trainer.compile='maybe' is invalid", "true or false"]),
        (["loss=triplet", "loss.margin=wide"], 2, ["loss.margin='wide' is invalid", "a number"]),
        (["loss=magnet", "loss.variance_detach=sometimes"], 2,
         ["loss.variance_detach='sometimes' is invalid"]),
        (["trainer.sampler=m_per_class", "trainer.m_per_class=5"], 2,
         ["a multiple of trainer.m_per_class (5)"]),
        # the README's old example; 128/4 = 32 classes of 10
        (["loss=triplet", "lambda=0.5", "trainer.sampler=m_per_class", "trainer.m_per_class=4"], 2,
         ["batch_size/m <= the 10 classes", "trainer.m_per_class=16"]),
        # settings under which the loss can never act
        (["trainer.batch_size=1"], 2, ["loss=latent_boost acts on a sample only when", "batch_size >= 3"]),
        (["loss=magnet", "lambda=0.5", "trainer.batch_size=1"], 2, ["loss=magnet acts on a sample only"]),
        (["loss=npair", "lambda=0.5", "trainer.sampler=m_per_class", "trainer.m_per_class=1",
          "trainer.batch_size=8"], 2, ["loss=npair acts on a sample only when", "m_per_class >= 2"]),
        # keys no config has, or uses
        (["foo=1"], 2, ["the config has no key 'foo'"]),
        (["+foo=1"], 2, ["foo is not a setting of latentexp"]),
        (["+dataset.foo=1"], 2, ["dataset.foo is not a parameter of FashionMNIST",
                                 "root, download, limit_train"]),
        (["+optimizer.foo=1"], 2, ["optimizer.foo is not a parameter of Adam"]),
        # found by a review: a bad class, a class under another's name, wrong directions
        (["loss._target_=nope.Nope"], 2, ["loss._target_=nope.Nope cannot be imported"]),
        (["loss._target_=torch.nn.MSELoss", "loss.name=mse"], 2, ["neither an AuxiliaryLoss nor a HeadLoss"]),
        (["optimizer._target_=torch.optim.SGD"], 2, ["optimizer.name=adam names conf/optimizer/adam.yaml"]),
        (["loss.name=lb2", "loss.T=0"], 2, ["loss.T=0 is invalid"]),
        (["lr_scheduler.mode=min"], 2, ["lr_scheduler.mode='min' is invalid"]),
        (["+model.num_classes=5"], 2, ["model.num_classes comes from the data"]),
        (["~optimizer.lr"], 2, ["no key 'optimizer.lr'"]),
        # a bad value anywhere in a sweep stops it before its first job
        (["-m", "lambda=0.5,1.5"], 2, ["lambda=1.5 is invalid"]),
        (["loss=magnet,ce"], 2, ["sweeps several values: add -m"]),
        (["loss=lmdl", "loss.momentum=sometimes"], 2, ["loss.momentum='sometimes' is invalid"]),
        (["optimizer.lr=-1"], 2, ["optimizer.lr=-1 is invalid"]),
    ],
)
def test_bad_overrides_fail_with_a_clear_message(tmp_path, monkeypatch, capsys, args, code, needles):
    """In-process (the same `main` as the console script, without a Python start-up per case)."""
    from latentexp.cli import main

    monkeypatch.chdir(tmp_path)
    for name in ("LATENTEXP_DATA", "HYDRA_FULL_ERROR", "LATENTEXP_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "argv", ["latentexp"])
    # The bad value comes last so that it wins over the caps that keep an accepted run small.
    flags = [a for a in args if a.startswith("-")]  # -m before the overrides, as on a command line
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *flags, "trainer.max_epochs=1", "dataset.limit_train=300", "device=cpu",
              *[a for a in args if a not in flags]])
    message = capsys.readouterr().err
    assert exit_info.value.code == code, (exit_info.value.code, message)
    for needle in needles:
        assert needle in message, (needle, message)
    assert "Traceback" not in message


def test_a_bad_override_exits_2_from_the_console_script(tmp_path, cli_env):
    out = latentexp(["train", "lambda=1.5"], cli_env, tmp_path)
    assert out.returncode == 2 and "lambda=1.5 is invalid" in out.stderr and "Traceback" not in out.stderr


def test_the_installed_console_script_runs(tmp_path, cli_env):
    out = subprocess.run(["latentexp", "--help"], env=cli_env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "report PATH" in out.stdout


def test_unknown_command_and_help(here, capsys):
    assert cli("trian") == 2 and "unknown command 'trian'" in capsys.readouterr().err
    assert cli("--help") == 0 and "train" in capsys.readouterr().out


def test_train_help_names_latentexp_flags_and_the_default_tracker(here, capfd):
    assert cli("train", "--help") == 0
    out = capfd.readouterr().out
    for flag in ("--dry-run", "--debug", "--cfg job", "-m, --multirun", "--hydra-help"):
        assert f"\n{flag} " in out, flag
    assert "`logger: {}` is the default logger=none" in out and "\nlogger: {}" in out
    assert "loss: amc, arcface" in out  # Hydra's own parts are still there
    assert "\ntrainer: default\n" in out  # the trainer's schema is no option to choose


@pytest.mark.parametrize(
    "preset,dataset,model",
    [("paper_fashion_mnist", "fashion_mnist", "cnn"), ("paper_cifar10", "cifar10", "vgg16"),
     ("paper_cifar100", "cifar100", "resnet50")],
)
def test_experiment_presets_compose(here, capfd, preset, dataset, model):
    assert cli("train", f"experiment={preset}", "--cfg", "job") == 0, capfd.readouterr().err
    out = capfd.readouterr().out
    assert f"name: {dataset}" in out and f"name: {model}" in out
    assert "lambda: 0.75" in out


def test_wheel_ships_the_config_tree(tmp_path):
    """A non-editable install must find conf/ inside the package."""
    repo = Path(__file__).resolve().parents[1]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path), str(repo)], capture_output=True, text=True)
    if built.returncode != 0 and "hatchling" in built.stderr:
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path),
                                str(repo)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("latentexp-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    assert "latentexp/conf/config.yaml" in names and "latentexp/conf/loss/latent_boost.yaml" in names
    probe = "from latentexp.config.tree import config_dir; print(config_dir())"
    found = subprocess.run([sys.executable, "-c", probe],
                           env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, cwd=tmp_path,
                           capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == tmp_path / "site" / "latentexp" / "conf"
