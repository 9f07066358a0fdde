"""scripts/gpu_check.sh, the one prepared GPU call: its short mode runs every step on the CPU, so
that the first GPU session cannot fail on a typo, and its GPU mode fits the device's 15 minutes."""

import json
import re
import subprocess
import sys
import tarfile

import pytest
from support.helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "gpu_check.sh"
DEVICE_MINUTES = 15  # the device tool's time per session, the machine's start and transfers included
START_AND_TRANSFERS = 4 * 60  # what the machine's start, the copies and give_back take, at most


def gpu_mode_settings() -> dict[str, int]:
    text = SCRIPT.read_text()
    gpu = text.split("else\n", 1)[1].split("\nfi\n", 1)[0]
    settings = {k: int(v) for k, v in re.findall(r"(\w+_(?:seconds|cap))=(\d+)", gpu)}
    settings["jobs"] = len(re.search(r"job_counts=\(([^)]*)\)", gpu).group(1).split())
    settings["models"] = len(re.search(r"bench_models=\(([^)]*)\)", gpu).group(1).split())
    settings["budget"] = int(re.search(r"budget=\$\{GPU_CHECK_SECONDS:-(\d+)\}", text).group(1))
    return settings


def test_the_gpu_mode_fits_the_device_time_on_paper():
    s = gpu_mode_settings()
    assert s["budget"] <= 600 - 20  # one device command may run 600 s: end well inside it
    assert s["budget"] + START_AND_TRANSFERS <= DEVICE_MINUTES * 60
    fixed = s["test_cap"] + s["models"] * s["bench_cap"] + s["jobs"] * s["job_seconds"]
    assert s["budget"] - fixed >= 60, "less than a minute would be left for the Table 2 runs"
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


@pytest.mark.slow
def test_the_short_mode_runs_every_step_and_keeps_what_it_wrote(tmp_path, cli_env):
    out = tmp_path / "out"
    env = {**cli_env, "GPU_CHECK_SHORT": "1", "PYTHON": sys.executable, "GPU_CHECK_WORK": str(tmp_path / "w")}
    done = subprocess.run(["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    log = (out / "gpu_check.log").read_text()
    assert done.returncode == 0, log + done.stderr[-3000:]
    assert "skipped" not in log and "unbound variable" not in done.stderr + log
    for step in re.findall(r"exit (\d+) after \d+s \(limit \d+s\): (.*)", log):
        assert step[0] in ("0", "124"), step  # finished, or stopped at its time limit (the job counts)
    names = {p.name for p in out.iterdir()}
    assert names == {"gpu_check.log", "pytest-cuda.log", "bench-ffnn.json", "jobs.json", "table2.tar.gz"}
    assert len(names) <= 8  # the device tool brings back at most 8 files
    bench = json.loads((out / "bench-ffnn.json").read_text())
    assert {"device", "results", "evaluation", "paper_costs"} <= set(bench) and bench["results"], bench
    jobs = json.loads((out / "jobs.json").read_text())
    assert set(jobs) == {"1", "2"} and all(j["window_seconds"] == 2 for j in jobs.values())
    with tarfile.open(out / "table2.tar.gz") as tar:
        members = tar.getnames()
    results = [m for m in members if m.endswith("/result.json")]
    assert len(results) == 3 and "table2/report.md" in members and "table2/status.txt" in members
    assert not [m for m in members if m.endswith((".pt", ".npz"))]  # never checkpoints or latents
