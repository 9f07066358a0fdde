"""One job trains a run directory at a time.

Several jobs can name the same run: every λ = 0 job of a sweep is the one baseline run, and a
parallel launcher (joblib, SLURM arrays) starts them together. The first job creates ``run.lock``
exclusively; the others see it and leave the run to it. A lock is stale, and taken over, when its
holder on this host is no longer alive, or when it was not refreshed (once per epoch) for
``STALE_SECONDS`` (a holder on another host that died).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

LOCK_FILE = "run.lock"
STALE_SECONDS = 6 * 3600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(run_dir: Path) -> dict | None:
    """Who holds the run's lock, or None when nobody (or only a stale lock) does."""
    path = run_dir / LOCK_FILE
    try:
        info = json.loads(path.read_text())
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return None
    if info.get("host") == socket.gethostname():
        return info if _alive(int(info.get("pid", -1))) and info.get("pid") != os.getpid() else None
    return info if age < STALE_SECONDS else None


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_FILE
        self.held = False

    def acquire(self) -> bool:
        """True when this process now holds the lock; False when a live job holds it."""
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if holder(self.path.parent) is not None:
                    return False
                self.path.unlink(missing_ok=True)  # stale: its holder is gone
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, f)
            self.held = True
            return True
        return False

    def refresh(self) -> None:
        if self.held:
            os.utime(self.path)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
