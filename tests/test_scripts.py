"""The developers' scripts in scripts/ (outside the package): each answers --help, so none imports
a module that moved; and the data fetcher reads datasets through the config layer."""

import subprocess
import sys

import pytest
from support.helpers import REPO_ROOT, load_script

SCRIPTS = sorted((REPO_ROOT / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_answers_help(script):
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         cwd=REPO_ROOT)
    assert out.returncode == 0 and "usage:" in out.stdout, out.stderr[-2000:]


def test_fetch_data_reports_what_it_finds(here, capsys):
    fetch = load_script("fetch_data")
    assert fetch.main(["fashion_mnist", "--no-download"]) == 0  # the test data under $LATENTEXP_DATA
    assert "fashion_mnist: 600 train / 200 test images, 10 classes, from" in capsys.readouterr().out
