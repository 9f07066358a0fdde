"""One job trains a run directory at a time.

Several jobs can name the same run: every λ = 0 job of a sweep is the one baseline run, and a
parallel launcher (joblib, SLURM arrays) starts them together. A job trains a run only while it
holds an exclusive ``flock`` on the directory's lock file; the others see the lock taken and
leave the run to its holder. The kernel drops the lock when its holder dies, however it dies
(SIGKILL, preemption, a lost node on NFS once its lease expires), so a killed run never blocks
its own resumption. The file itself is never deleted: deleting a lock file lets two jobs lock
two different files of the same name.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import stat
import time
from pathlib import Path

from latentexp.io import read_text

log = logging.getLogger("latentexp")


def holder(path: Path) -> dict | None:
    """The live holder of the lock file ``path`` (host, pid, since), or None when nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO in its place must not hang `status`
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(read_text(path) or "{}")
            except (OSError, ValueError):
                return {}
        except OSError:  # no lock support on this filesystem: nobody can be seen holding it
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self, attempts: int = 5, wait: float = 0.1) -> bool:
        """True when this job now holds the lock; False when another live job holds it.

        A few short retries: `status` or a dry run probes the lock for microseconds, a training
        job holds it for minutes.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(attempts):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == attempts - 1:
                    os.close(fd)
                    return False
                time.sleep(wait)
            except OSError as err:  # e.g. a cluster filesystem mounted without lock support
                log.warning("cannot lock %s (%s): jobs that share this run could train it twice",
                            self.path, err)
                break
        self.fd = fd
        info = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)  # who holds it, for `status`; the flock is what counts
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # drops the flock
            self.fd = None
