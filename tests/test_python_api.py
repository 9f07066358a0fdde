"""docs/python_api.md's script for the core alone, run as printed in a fresh interpreter: it trains
Latent Boost on arrays and never imports Hydra, OmegaConf or any layer above the core."""

import re
import subprocess
import sys

from support.helpers import NOTHING_ABOVE_THE_CORE, REPO_ROOT

DOC = (REPO_ROOT / "docs" / "python_api.md").read_text()
(SCRIPT,) = re.findall(r"<!-- file: core_script.py -->\n```python\n(.*?)```", DOC, flags=re.S)


def test_the_core_script_trains_without_hydra_or_the_layers_above(tmp_path):
    (tmp_path / "core_script.py").write_text(SCRIPT + NOTHING_ABOVE_THE_CORE)
    out = subprocess.run([sys.executable, "core_script.py"], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    accuracy, epochs = re.search(r"test accuracy ([\d.]+)% after (\d+) epochs; latents \(100, 64\)",
                                 out.stdout).groups()
    assert int(epochs) == 3 and float(accuracy) > 90.0, out.stdout  # brightness tells the classes apart
    epochs_seen = re.findall(r"^epoch (\d+): validation [\d.]+%$", out.stdout, flags=re.M)
    assert [int(n) for n in epochs_seen] == [1, 2, 3]  # the callback saw each epoch once
    assert list(tmp_path.iterdir()) == [tmp_path / "core_script.py"]  # no run directory: nothing written
