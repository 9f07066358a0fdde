"""``hydra/launcher=slurm`` (conf/hydra/launcher/slurm.yaml): Hydra's submitit SLURM launcher, with
one change: a task that ends without a result (cancelled, out of time once too often, its node
lost) ends the sweep command with one paragraph that says what to do, not submitit's traceback.
Without the ``slurm`` extra (hydra-submitit-launcher) this module defines nothing."""

from __future__ import annotations

import logging
import re

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _SubmititSlurm
except ImportError:  # the extra is not installed: hydra/launcher=slurm says so when it is chosen
    _SubmititSlurm = None

log = logging.getLogger("latentexp")

UNCOMPLETED_EXIT = 1  # a failed state, said in one paragraph


def uncompleted_paragraph(message: str, sweep_dir: str) -> str:
    """What to tell of submitit's UncompletedJobError ``message`` (its first line names the job and
    task, its second the state SLURM gave it)."""
    lines = message.splitlines()
    task = re.match(r"Job (\S+) \(task: (\d+)\)", lines[0]) if lines else None
    state = re.search(r"\(state: ([^)]*)\)", message)
    job = f"{task.group(1)}_{task.group(2)}" if task else "a task"
    return (f"SLURM task {job} of the sweep ended without a result"
            f"{f' ({state.group(1)})' if state else ''}; its log is in {sweep_dir}/.submitit/. The sweep "
            f"command stops here; the array's other tasks go on by themselves (`squeue --me`). Every "
            f"finished run is kept and a killed one keeps its last epoch's checkpoint: run the same command "
            f"again to resume (it skips finished runs and leaves runs a live task holds to it; "
            f"`latentexp status {sweep_dir}` shows what is left).")


if _SubmititSlurm is not None:
    from submitit.core.utils import UncompletedJobError

    class SlurmLauncher(_SubmititSlurm):
        def launch(self, job_overrides, initial_job_idx):
            try:
                return super().launch(job_overrides, initial_job_idx)
            except UncompletedJobError as error:
                log.error(uncompleted_paragraph(str(error), str(self.config.hydra.sweep.dir)))
                raise SystemExit(UNCOMPLETED_EXIT) from None  # said above: no traceback
