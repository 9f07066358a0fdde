"""Search, not only grids: Hydra's Optuna sweeper maximises the best validation accuracy, a trial
latentexp refuses is a failed trial and the study goes on, and the trials are ordinary runs."""

import json

import pytest
from support.helpers import cli, latentexp, result_files

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs the search extra")

TINY = ("trainer.max_epochs=1", "dataset.limit_train=200", "dataset.limit_test=100", "trainer.batch_size=32",
        "device=cpu", "hydra.launcher.n_jobs=1")


def results(root):
    return [json.loads(path.read_text()) for path in result_files(root)]


@pytest.mark.slow
def test_a_refused_trial_fails_and_the_search_goes_on(here, capfd):
    # Grid sampling of three choices: exactly three trials, one of them λ = 1.5 (outside [0, 1]).
    code = cli("train", "-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid",
               "hydra.sweeper.n_trials=3", "loss=latent_boost", "lambda=choice(0.25,1.5,0.75)", *TINY)
    err = capfd.readouterr().err
    assert code == 0, err
    assert "lambda" in err and "this trial failed; the search goes on" in err
    done = results(here / "outputs")
    assert sorted(r["spec"]["lambda"] for r in done) == [0.25, 0.75]
    assert all(r["status"] == "finished" for r in done)
    assert cli("status", "outputs") == 0 and "2 runs" in capfd.readouterr().out
    assert cli("report", "outputs", "--no-figures") == 0


@pytest.mark.slow
def test_the_preset_searches_lambda_and_t_and_resumes_as_the_same_trials(here, capfd):
    search = ("train", "-m", "hparams_search=latent_boost_lambda", "hydra.sweeper.n_trials=2", *TINY)
    assert cli(*search) == 0, capfd.readouterr().err
    first = results(here / "outputs")
    assert len(first) == 2 and {r["spec"]["loss"] for r in first} == {"latent_boost"}
    lambdas = sorted(r["spec"]["lambda"] for r in first)
    assert all(0.05 <= lam <= 0.95 for lam in lambdas) and lambdas[0] != lambdas[1]
    assert all(0.80 <= r["spec"]["config"]["loss"]["T"] <= 0.99 for r in first)
    assert "Directions: ['maximize']" in capfd.readouterr().out  # Hydra's log
    # The same command proposes the same trials (the sampler is seeded): nothing trains again.
    assert cli(*search) == 0
    said = capfd.readouterr()
    assert (said.out + said.err).count("already finished") == 2
    assert results(here / "outputs") == first


@pytest.mark.slow
def test_a_trial_proposed_again_is_the_same_finished_run_not_a_crash(here, capfd):
    """The sampler may propose values it tried before: the second trial finds the first's run."""
    code = cli("train", "-m", "hydra/sweeper=optuna", "lambda=choice(0.5)", "hydra.sweeper.n_trials=2",
               "model=ffnn", *TINY)
    err = capfd.readouterr().err
    assert code == 0, err[-3000:]
    assert "ReadonlyConfigError" not in err
    assert len(results(here / "outputs")) == 1  # one run, found again by the second trial


@pytest.mark.slow
def test_a_search_whose_every_trial_failed_ends_in_one_paragraph(tmp_path, cli_env):
    """As a terminal shows it (a process of its own: no test harness between it and its streams)."""
    done = latentexp(["train", "-m", "hydra/sweeper=optuna", "lambda=choice(1.5)", "hydra.sweeper.n_trials=2",
                      "model=ffnn", *TINY], cli_env, tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "every trial of the search failed, so it has no best value" in done.stderr
    assert "Traceback" not in done.stderr and "No trials are completed" not in done.stderr
    assert "setup plugin alembic" not in done.stdout + done.stderr  # Optuna's storage's chatter
