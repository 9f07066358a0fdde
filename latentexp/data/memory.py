"""Whether a dataset fits where it is to be held: the whole splits live on the run's device (host
memory for the CPU), so data that does not fit is refused before any work, with the size needed."""

from __future__ import annotations

import os

from latentexp.errors import DataError


def available_bytes(device=None) -> int | None:
    """Free memory of a CUDA device, else the host's available memory; None where unknown."""
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


def check_fits(nbytes: int, what: str, device=None, hint: str = "") -> None:
    """Refuse ``what`` (``nbytes`` to hold) where the device has less memory free."""
    free = available_bytes(device)
    if free is not None and nbytes > free:
        where = f"{device}" if device is not None else "this machine"
        hint = hint or "Use a subset (dataset.limit_train=N) or a machine with more memory."
        raise DataError(f"{what} needs {gib(nbytes)} as uint8 arrays but {where} has {gib(free)} free: "
                        f"nothing was trained. {hint}")
