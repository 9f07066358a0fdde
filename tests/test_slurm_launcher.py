"""hydra/launcher=slurm without a cluster: its composed settings and its paragraph for a task that
ended without a result (the cluster runs are tests/test_slurm.py)."""

from hydra_plugins.latentexp_launcher.slurm import uncompleted_paragraph
from latentexp.config.tree import compose

SUBMITIT_MESSAGE = """Job 37 (task: 0) with path /o/.submitit/37/37_0_result.pkl
has not produced any output (state: CANCELLED by 0)
Error stream produced:
----------------------------------------
slurmstepd-vm: error: *** JOB 37 ON vm CANCELLED AT 2026-12-07T23:34:37 ***
"""


def test_a_task_without_a_result_is_one_paragraph_that_says_what_to_do():
    text = uncompleted_paragraph(SUBMITIT_MESSAGE, "/o")
    assert "\n" not in text and text.startswith("SLURM task 37_0 of the sweep ended without a result "
                                                 "(CANCELLED by 0)")
    assert "/o/.submitit/" in text and "run the same command again" in text and "latentexp status /o" in text


def test_the_shipped_launcher_requeues_a_task_out_of_time_and_keeps_hydras_options():
    launcher = compose(["hydra/launcher=slurm"], with_hydra=True).hydra.launcher
    assert launcher._target_ == "hydra_plugins.latentexp_launcher.slurm.SlurmLauncher"
    assert launcher.max_num_timeout == 3 and launcher.signal_delay_s == 120 and launcher.cpus_per_task == 2
    assert launcher.partition is None and "gpus_per_node" in launcher and "setup" in launcher
