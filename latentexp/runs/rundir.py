"""The run directory: the name of every file a run writes, the run's state, and the formats other
commands read back (the spec, the result, the history, the test latents).

    outputs/runs/<run name>/
      spec.json         the run spec (latentexp.runs.spec), written when the run starts
      config.yaml       the config it trains, for people to read
      checkpoint.pt     the last epoch (atomic)          history.csv   one row per epoch
      test_latents.npz  test latents, labels, predictions
      result.json       written last: status, metrics and the spec; its presence means done
      analysis.json, tsne.npz   `latentexp analyze`'s cache
      run.lock          held (flock) by the job that trains the run

Nothing here imports torch: `status` and `report` read runs without the training stack.
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from latentexp.errors import DataError
from latentexp.io import (
    open_regular,
    read_json_object,
    read_text,
    remove_partial_writes,
    write_json,
    write_npz,
    write_text,
)
from latentexp.runs.runlock import RunLock, holder

SPEC_FILE = "spec.json"
CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.csv"
LATENTS_FILE = "test_latents.npz"
RESULT_FILE = "result.json"
ANALYSIS_FILE = "analysis.json"
TSNE_FILE = "tsne.npz"
LOCK_FILE = "run.lock"

# What a run's directory may hold before its spec is written: the run's files, Hydra's record of
# the job (.hydra/, <job>.log) and a tracker's folder.
RUN_FILES = frozenset({SPEC_FILE, CONFIG_FILE, CHECKPOINT_FILE, HISTORY_FILE, LATENTS_FILE, RESULT_FILE,
                       ANALYSIS_FILE, TSNE_FILE, LOCK_FILE, ".hydra", "tensorboard"})

# Finished runs first looked for by their result, started ones by their spec; runs written before
# the spec existed (format 1) by their config.yaml.
MARKERS = (RESULT_FILE, SPEC_FILE, CONFIG_FILE)
LATENT_ARRAYS = ("latents", "labels", "predictions")


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def name(self) -> str:
        return self.path.name

    spec_file = property(lambda self: self.path / SPEC_FILE)
    config_file = property(lambda self: self.path / CONFIG_FILE)
    checkpoint = property(lambda self: self.path / CHECKPOINT_FILE)
    history = property(lambda self: self.path / HISTORY_FILE)
    latents = property(lambda self: self.path / LATENTS_FILE)
    result_file = property(lambda self: self.path / RESULT_FILE)
    analysis = property(lambda self: self.path / ANALYSIS_FILE)
    tsne = property(lambda self: self.path / TSNE_FILE)

    # ------------------------------------------------------------------ state

    def lock(self) -> RunLock:
        """The run's lock (not yet acquired), creating the run directory for it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(f"cannot create the run directory {self.path} ({err.strerror or err}); set "
                            f"output_root=DIR to a directory you can write.") from None
        return RunLock(self.path / LOCK_FILE)

    def holder(self) -> dict | None:
        """Host and pid of the live job training this run, or None."""
        return holder(self.path / LOCK_FILE)

    def state(self) -> str:
        """``finished`` or ``failed`` (result.json), ``running (…)`` (a live lock), ``resumable (after
        epoch k)`` (a checkpoint to resume from), ``started (no epoch finished)``, else ``new``."""
        result = self.read_result()
        if result is not None:
            return str(result.get("status", "finished"))
        busy = self.holder()
        if busy is not None:
            return f"running (host {busy.get('host')}, pid {busy.get('pid')})"
        if self.checkpoint.exists() and self.history.exists():
            return f"resumable (after epoch {self.epochs_recorded()})"
        if self.spec_file.exists() or self.config_file.exists():
            return "started (no epoch finished)"
        return "new"

    def epochs_recorded(self) -> int:
        if not self.history.exists():
            return 0
        try:
            return max(0, len(read_text(self.history).splitlines()) - 1)
        except (OSError, ValueError) as err:
            raise DataError(f"{self.history} is unreadable ({err}); delete it, or the run directory, and "
                            f"run the run's `latentexp train` command again.") from None

    # ------------------------------------------------------------------ reading

    def read_result(self) -> dict | None:
        return self._read_json(self.result_file)

    def read_spec(self) -> dict | None:
        """The stored spec: result.json's once finished, else spec.json's; None for runs written
        before specs existed (format 1) or for directories that are not runs."""
        return self.result_and_spec()[1]

    def result_and_spec(self) -> tuple[dict | None, dict | None]:
        """``read_result()`` and ``read_spec()``, with result.json parsed once for both."""
        result = self.read_result()
        if result is None:
            return None, self._read_json(self.spec_file)
        spec = result.get("spec")
        if spec is not None and not isinstance(spec, dict):
            raise DataError(f"{self.result_file} is unreadable (its spec is not a JSON object). Delete it "
                            f"and run the run's `latentexp train` command again: the run resumes from its "
                            f"checkpoint, and a finished run is evaluated again from its best weights.")
        return result, spec

    def check_holds(self, name: str, run_hash: str) -> None:
        """Refuse a directory that holds another run than ``name``/``run_hash`` (a finished, killed
        or started one, of this format or an older one) before anything in it is reused, resumed
        or overwritten: a run aimed at another's directory (hydra.run.dir=...) must not hand back
        that run's result, nor train over it."""
        stored = self.read_spec()
        if stored is None and not self.is_old_format():
            foreign = sorted(self._foreign_files())
            if foreign:  # not a run's directory at all (hydra.run.dir=., a folder of the user's)
                raise DataError(f"{self.path} holds files that are no run's ({', '.join(foreign[:3])}"
                                f"{', ...' if len(foreign) > 3 else ''}); a run would write over them. Leave "
                                f"hydra.run.dir at its default (each run in <output_root>/runs/<its name>/), "
                                f"or give an empty directory.")
            return  # no run here yet (a new directory, or one holding only Hydra's record)
        held = "a run written before run specs existed" if stored is None else (
            f"the run {stored.get('name')} (hash {stored.get('hash')})")
        if stored is not None and stored.get("hash") == run_hash and stored.get("name") == name:
            return
        raise DataError(f"{self.path} holds {held}, not {name} (hash {run_hash}); nothing was reused or "
                        f"overwritten. Leave hydra.run.dir at its default (each run in "
                        f"<output_root>/runs/<its name>/), or give a directory of its own.")

    def _foreign_files(self) -> list[str]:
        """Names in the directory that neither a run nor Hydra's record of its job writes."""
        if not self.path.is_dir():
            return []
        return [p.name for p in self.path.iterdir() if p.name not in RUN_FILES
                and not p.name.endswith(".log") and not (p.name.startswith(".") and p.name.endswith(".tmp"))]

    def is_old_format(self) -> bool:
        """A latentexp run written before the run spec existed (format 1): no spec anywhere, and
        a config with dataset, model and loss (not some other tool's config.yaml)."""
        result, spec = self.result_and_spec()
        if spec is not None:
            return False
        if result is not None:
            config = result.get("config")
        elif self.config_file.exists():
            try:
                config = yaml.safe_load(read_text(self.config_file))
            except (OSError, ValueError, yaml.YAMLError):
                return False
        else:
            return False
        parts = ("dataset", "model", "loss")
        return isinstance(config, dict) and all(isinstance(config.get(k), dict) for k in parts)

    def _read_json(self, path: Path) -> dict | None:
        if not path.exists():
            return None
        try:
            data = read_json_object(path)
        except (OSError, ValueError) as err:
            raise DataError(f"{path} is unreadable ({err}). Delete it and run the run's `latentexp train` "
                            f"command again: the run resumes from its checkpoint, and a finished run is "
                            f"evaluated again from its best weights without training.") from None
        return data

    def load_latents(self) -> dict[str, np.ndarray]:
        if not self.latents.exists():
            raise DataError(f"{self.latents} does not exist: analyze needs a finished run directory "
                            f"(outputs/runs/<name>/) that saved its test latents.")
        try:
            with open_regular(self.latents) as f, np.load(f, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            if set(LATENT_ARRAYS) - set(arrays):
                raise ValueError(f"it lacks {', '.join(sorted(set(LATENT_ARRAYS) - set(arrays)))}")
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise DataError(f"{self.latents} is unreadable ({err}). Delete it and run the run's `latentexp "
                            f"train` command again: a finished run rewrites its test latents from the best "
                            f"weights in {CHECKPOINT_FILE}, without training.") from None
        return arrays

    def copied_without_latents(self) -> bool:
        """A finished run whose test latents and checkpoint are both absent: copied with its small
        files (result.json, history.csv) only, as committed results are. Nothing can rebuild the
        latents, and nothing needs training."""
        return not self.latents.exists() and not self.checkpoint.exists()

    def latents_broken(self) -> bool:
        """Missing, or not a zip holding the three arrays (a cheap look at the zip's directory; a
        file damaged inside is found when it is read)."""
        try:
            with zipfile.ZipFile(self.latents) as archive:
                return not {f"{name}.npy" for name in LATENT_ARRAYS} <= set(archive.namelist())
        except (OSError, zipfile.BadZipFile):
            return True

    # ------------------------------------------------------------------ writing

    def start(self, spec: dict[str, Any], config_yaml: str) -> list[Path]:
        """Remove temporary files a killed write left behind (returned), and write the spec and the
        readable config into the (locked) run directory."""
        leftovers = remove_partial_writes(self.path)
        write_json(self.spec_file, spec)
        write_text(self.config_file, config_yaml)
        return leftovers

    def write_result(self, result: dict) -> None:
        write_json(self.result_file, result)  # written last: its presence marks the run as done

    def save_latents(self, latents: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> None:
        # The order of LATENT_ARRAYS.
        """Test-set latents (float16 to keep sweeps small), labels and predictions, atomically."""
        write_npz(self.latents, latents=latents.astype(np.float16), labels=labels.astype(np.int64),
                  predictions=predictions.astype(np.int64))


def check_output_root(root: Path) -> None:
    """Create the output root and write a probe file in it: a root that cannot be created (it lies
    under a file) or written (permissions, a read-only filesystem) stops the command here."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as err:
        where = err.filename or root
        raise DataError(f"output_root={root} cannot be written ({err.strerror or err}: {where}). Set "
                        f"output_root=DIR to a directory you can write.") from None


def find_run_dirs(paths: list[str | Path]) -> list[RunDir]:
    """Every run directory under ``paths`` (output roots or run directories), each once."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise DataError(f"{path} does not exist; give an output root such as outputs/ or a run "
                            f"directory (runs live in outputs/runs/<name>/).")
        if not path.is_dir():
            raise DataError(f"{path} is a file; give an output root such as outputs/ or a run directory "
                            f"(runs live in outputs/runs/<name>/).")
        for marker in MARKERS:
            candidates = [path / marker] if (path / marker).is_file() else path.rglob(marker)
            for file in candidates:
                if file.parent.name != ".hydra":  # Hydra's own copy of the job config
                    found.add(file.parent.resolve())
    return [RunDir(p) for p in sorted(found)]
