"""Device choice, seeding and the versions a result records."""

from __future__ import annotations

import contextlib
import os
import platform
import random

import numpy as np
import torch

from latentexp.errors import ConfigError

# The GPU this process claimed (an open, locked file); kept for the process's lifetime.
_claimed_gpu = None


def claim_free_gpu(count: int, lock_dir: str | None = None, names: list[str] | None = None) -> int:
    """The first GPU no other latentexp process on this node holds (a flock per GPU), so parallel
    jobs of a joblib sweep get one GPU each; GPU 0 if every one is taken. Lock files are named by
    the GPU's UUID where known (``names``), so jobs with different CUDA_VISIBLE_DEVICES agree."""
    global _claimed_gpu
    import fcntl
    import os
    import tempfile

    if _claimed_gpu is not None:
        return _claimed_gpu[0]
    lock_dir = lock_dir or tempfile.gettempdir()
    for index in range(count):
        path = os.path.join(lock_dir, f"latentexp-gpu-{names[index] if names else index}.lock")
        try:  # read-only is enough for flock; another user's file in a sticky /tmp is fine
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _claimed_gpu = (index, fd)
        return index
    return 0


def _gpu_names(count: int) -> list[str] | None:
    try:
        return [str(torch.cuda.get_device_properties(i).uuid) for i in range(count)]
    except (AttributeError, RuntimeError):
        return None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        count = torch.cuda.device_count()
        return torch.device(f"cuda:{claim_free_gpu(count, names=_gpu_names(count))}" if count > 1 else "cuda")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={name} was asked for but CUDA is not available here; use device=cpu or device=auto."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={name} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bf16 in hardware: a CUDA GPU that does (Ampere and later), or a
    CPU with AVX512-BF16 or AMX whose kernels may use them. Elsewhere bf16 autocast is emulated and
    slower than float32 (docs/decisions.md, "bf16 and channels_last on the CPU")."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch's own CPU probes
        has = any(getattr(torch.cpu, name, lambda: False)() for name in checks)
        return has and not _cpu_kernels_capped_below_bf16()
    return False


def _cpu_kernels_capped_below_bf16() -> bool:
    """True when ATEN_CPU_CAPABILITY or ONEDNN_MAX_CPU_ISA keeps torch's CPU kernels from the
    bf16 instructions the CPU has (e.g. =avx2 / =AVX2): bf16 would then run emulated."""
    import os

    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return True
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return isa not in ("ALL", "DEFAULT") and not any(part in isa for part in ("BF16", "FP16", "AMX", "AVX10"))


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The model's autocast dtype under ``trainer.amp``: bf16 where the device computes it
    natively, else None (the model runs in float32). Losses always compute in float32."""
    return torch.bfloat16 if amp and native_bf16(device) else None


def model_autocast(device: torch.device, dtype: torch.dtype | None):
    """The context the model's forward runs in: autocast to ``dtype`` (from autocast_dtype), or
    nothing when that is None."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def precision_name(device: torch.device, dtype: torch.dtype | None) -> str:
    """What result.json and checkpoints record: bf16 (autocast), tf32 (float32 storage with TF32
    matmuls and convolutions, as configure_backends allows on CUDA GPUs that have them, Ampere
    and later) or fp32."""
    if dtype is not None:
        return "bf16"
    tf32 = device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8
    return "tf32" if tf32 else "fp32"


def configure_backends(device: torch.device) -> None:
    keep_freed_memory()
    use_scheduler_threads()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


DEFERRED_SIGNALS = ("SIGUSR2", "SIGTERM")  # submitit's timeout/preemption signal, and the scheduler's


@contextlib.contextmanager
def signals_deferred():
    """Handle SIGUSR2 and SIGTERM when the block ends, not inside it. A handler may raise where
    the signal lands (submitit's requeue ends a SLURM task with sys.exit from its SIGUSR2 handler):
    inside torch.save that left the writer inconsistent, and it failed with "unexpected pos"
    instead, a failed result for a task that had been requeued. Off the main thread: no change."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [getattr(signal, name) for name in DEFERRED_SIGNALS if hasattr(signal, name)]
    previous = {signum: signal.getsignal(signum) for signum in signums}
    pending: list[tuple[int, object]] = []
    for signum in signums:
        signal.signal(signum, lambda number, frame: pending.append((number, frame)))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for number, frame in pending:  # as they would have been handled, now
            handler = previous[number]
            if callable(handler):
                handler(number, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)


def use_scheduler_threads() -> int | None:
    """In a task that submitit started on SLURM, torch's CPU threads become the task's CPUs
    (``SLURM_CPUS_PER_TASK``) unless ``OMP_NUM_THREADS`` names them: a cluster that does not bind a
    task to its CPUs would otherwise let every task on a node use all of the node's cores. The count
    set, or None where nothing changed."""
    env = os.environ
    cpus = env.get("SLURM_CPUS_PER_TASK", "")
    if env.get("SUBMITIT_EXECUTOR") != "slurm" or "OMP_NUM_THREADS" in env or not cpus.isdigit():
        return None
    torch.set_num_threads(int(cpus))
    return int(cpus)


# glibc's mallopt parameters (malloc.h) and the size below which freed memory stays in the process.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BELOW = 1 << 30
_NEVER_TRIM = 2**31 - 1  # the largest C int: free memory at the heap's top is never returned


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks of up to 1 GiB for reuse instead of handing them back
    to the kernel. A CPU training step allocates and frees activations of several MB; by default
    each one is a fresh mmap whose every page faults in again (zeroed by the kernel) on its next
    use: 30 % of the paper CNN's step (docs/speed.md). The process keeps its peak heap instead.
    Changes no number; a no-op off glibc. True where it took effect."""
    import ctypes
    import ctypes.util

    global _kept
    if _kept is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _kept = bool(libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BELOW)
                         and libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))
        except (OSError, AttributeError):  # not glibc (macOS, musl): its allocator as it is
            _kept = False
    return _kept


_kept: bool | None = None


def versions() -> dict[str, str]:
    import sklearn
    import torchvision

    import latentexp

    return {
        "latentexp": latentexp.__version__,
        "latentexp_revision": source_revision(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def source_revision() -> str | None:
    """The git commit of the package's source tree, with "+changes" when it has uncommitted
    changes; None for an installed wheel (its version says what it is)."""
    import subprocess
    from pathlib import Path

    source = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        changed = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--", "."],
                                 capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+changes" if changed.stdout.strip() else "")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU as the kernel reports it (Linux's /proc/cpuinfo): its model name, family and model
    numbers (a virtual machine's name may be only "AMD EPYC") and the vector extensions that decide
    the fastest precision, e.g. "AMD EPYC (family 26, model 2; avx512f avx512_bf16)"; elsewhere what
    Python's platform module knows (often only the architecture, e.g. x86_64)."""
    fields: dict[str, str] = {}
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), " ".join(value.split()))
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    numbers = ", ".join(f"{label} {fields[key]}"
                        for key, label in (("cpu family", "family"), ("model", "model")) if key in fields)
    has = fields.get("flags", "").split()
    flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in has]
    extra = "; ".join(part for part in (numbers, " ".join(flags)) if part)
    return f"{name} ({extra})" if extra else name
