"""A docs walkthrough (adding a loss, a backbone, a dataset) run as printed: its files written out
from the ``<!-- file: NAME -->`` blocks, its ``<!-- command -->`` trained through the console
script's entry point, and its own test file run."""

from __future__ import annotations

import importlib
import json
import re
import shlex
from pathlib import Path

from latentexp.cli import main
from support.helpers import REPO_ROOT


class Walkthrough:
    def __init__(self, doc: str):
        self.text = (REPO_ROOT / "docs" / doc).read_text()

    def files(self) -> dict[str, str]:
        return dict(re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", self.text, flags=re.S))

    def command(self) -> list[str]:
        (command,) = re.findall(r"<!-- command -->\n```bash\n(.*?)\n```", self.text, flags=re.S)
        return shlex.split(command)

    def run(self, tmp_path: Path, monkeypatch, data_root: Path, *quick: str) -> tuple[Path, dict, int]:
        """Write the files into ``tmp_path``, train the command there with ``quick`` appended, and
        run every test of the walkthrough's test file: (run directory, its result, tests run)."""
        for name, text in self.files().items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text)
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))  # PYTHONPATH=.
        monkeypatch.setenv("LATENTEXP_DATA", str(data_root))
        main(["train", *self.command()[3:], *quick, "device=cpu"])
        (result,) = tmp_path.glob("outputs/runs/*/result.json")
        (test_file,) = (name for name in self.files() if Path(name).name.startswith("test_"))
        tests = importlib.import_module(Path(test_file).stem)  # as pytest runs it
        ran = [name for name in dir(tests) if name.startswith("test_")]
        for name in ran:
            getattr(tests, name)()
        return result.parent, json.loads(result.read_text()), len(ran)
