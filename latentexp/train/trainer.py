"""The one trainer (paper §4.1): epochs until the budget or early stopping on validation accuracy,
the learning-rate schedule stepped once per epoch, the best epoch's weights kept for the test, and
an atomic checkpoint after every epoch. ``fit`` is the whole loop; the helpers below it are short."""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm.auto import tqdm

from latentexp.data import DeviceData
from latentexp.losses import HeadLoss, Loss
from latentexp.losses.base import mix_with_cross_entropy
from latentexp.runtime import autocast_dtype, model_autocast, precision_name, signals_deferred
from latentexp.train.callbacks import Callback, Callbacks
from latentexp.train.checkpoint import load_checkpoint, save_checkpoint
from latentexp.train.diagnostics import GradientProbe
from latentexp.train.early_stopping import EarlyStopping
from latentexp.train.history import write_history
from latentexp.train.settings import TrainerSettings

log = logging.getLogger("latentexp")

CHECKPOINT_FORMAT = 1


class TrainingFailed(RuntimeError):
    """The run cannot give a meaningful result; recorded as ``status: failed`` with the reason."""


class TrainingDiverged(TrainingFailed):
    """The training loss became NaN or infinite."""


class LossNeverActed(TrainingFailed):
    """An epoch went by in which the auxiliary loss acted on no sample: only (1 − λ)·CE trained."""


class RunFiles(Protocol):
    """Where the trainer writes (a run directory, latentexp.runs.rundir.RunDir, has both)."""

    checkpoint: Path
    history: Path


class StaleCheckpoint(RuntimeError):
    """A checkpoint belongs to another config than the run's."""


class Trainer:
    def __init__(self, model: nn.Module, loss: Loss, optimizer: torch.optim.Optimizer, scheduler,
                 data: DeviceData, settings: TrainerSettings, lam: float | None, seed: int,
                 device: torch.device, identity: str = "", files: RunFiles | None = None,
                 callbacks: Callbacks | list[Callback] | None = None):
        self.model, self.loss, self.optimizer, self.scheduler = model, loss, optimizer, scheduler
        self.data, self.settings, self.device = data, settings, device
        self.identity, self.files = identity, files  # the checkpoint's owner, and where it is written
        self.lam = lam  # λ of Eq. 11 (auxiliary losses); a head loss is the whole objective
        self.head = isinstance(loss, HeadLoss)
        # bf16 autocast of the model where the device computes bf16 natively (runtime.native_bf16).
        self.autocast_dtype = autocast_dtype(device, settings.amp)
        self.precision = precision_name(device, self.autocast_dtype)
        # torch.compile'd forward (trainer.compile); the module itself keeps its plain state_dict keys.
        self.forward = torch.compile(model) if settings.compile else model
        self.stopper = EarlyStopping(settings.early_stopping_patience)
        # A compiled forward is one autograd node: no path from the logits back to the latent.
        every = 0 if settings.compile else settings.gradient_diagnostics_every
        self.probe = GradientProbe(every, lam, device)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.epoch = 0  # epochs completed
        self.stopped_early = False
        self.history: list[dict] = []
        self.best_state: dict | None = None
        # e.g. TensorBoard / MLflow (the logger group); each guarded (train/callbacks.py)
        self.callbacks = callbacks if isinstance(callbacks, Callbacks) else Callbacks(callbacks)
        # CPU threads change the numbers: fixed when the run starts, restored when it resumes.
        self.threads = torch.get_num_threads()
        progress = settings.progress
        self.progress = sys.stderr.isatty() if progress == "auto" else bool(progress)

    # ------------------------------------------------------------------ the loop

    def fit(self, epochs: int | None = None) -> None:
        """Train until ``max_epochs`` or early stopping (or ``epochs`` more, for the benchmark);
        every epoch ends in a checkpoint."""
        stop = self.settings.max_epochs if epochs is None else min(self.settings.max_epochs,
                                                                    self.epoch + epochs)
        if self.loss.logged_loss_note and (self.head or self.lam) and self.epoch < stop:
            log.info(self.loss.logged_loss_note)
        while self.epoch < stop and not self.stopped_early:
            start = time.perf_counter()
            self.model.train()
            self.loss.train()
            self.loss.set_epoch(self.epoch, self.settings.max_epochs)  # Latent Boost's α/β schedule
            sums = torch.zeros(4, device=self.device)  # total, cross-entropy, the loss's term, correct
            batches = seen = 0
            for x, y in self.train_batches():
                with self.autocast():
                    out = self.forward(x)
                total, ce, term = self.objective(out, y)
                if self.probe.due(batches):  # how hard each term of Eq. 11 pushes the latent
                    self.probe.record(self.features(out), ce, term)
                with torch.no_grad():  # scored with the weights that produced the loss
                    correct = (self.scores(out).argmax(1) == y).sum()
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                self.optimizer.step()
                sums += torch.stack([total.detach(), ce.detach(), term.detach(), correct.float()])
                batches, seen = batches + 1, seen + len(y)
            row = self.training_row(sums, batches, seen)  # one host sync; fails on NaN or an idle loss
            row["val_accuracy"] = self.accuracy("val")
            step_scheduler(self.scheduler, row["val_accuracy"])
            if self.stopper.update(row["val_accuracy"], self.epoch):
                self.best_state = self.weights()
            self.epoch += 1
            self.stopped_early = self.stopper.should_stop
            self.history.append({**row, "seconds": time.perf_counter() - start})
            self.save()
            self.log_epoch(self.history[-1])
            self.callbacks.log_epoch(self.history[-1])  # only checkpointed epochs reach a callback
        if self.stopped_early:
            log.info("early stop: no better validation accuracy for %s epochs", self.stopper.patience)

    # ------------------------------------------------------------------ one batch

    def objective(self, out, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, cross-entropy part, the loss's own term) of one batch."""
        features = self.features(out)
        if self.head:  # the whole objective
            total = self.loss(features, labels)
            return total, torch.zeros_like(total), total
        ce = F.cross_entropy(out.logits.float(), labels)
        total, term = mix_with_cross_entropy(self.lam, ce, lambda: self.loss(features, labels))
        return total, ce, torch.zeros_like(ce) if term is None else term

    def features(self, out) -> torch.Tensor:
        """The model output the loss reads."""
        return out.logits if self.loss.feature == "logits" else out.features[self.loss.feature]

    def scores(self, out) -> torch.Tensor:
        """Class scores for prediction: a head loss's own, else the model's logits."""
        return self.loss.logits(self.features(out)) if self.head else out.logits

    def autocast(self):
        return model_autocast(self.device, self.autocast_dtype)

    def train_batches(self):
        """One epoch of training batches in the sampler's order, behind a progress bar."""
        s, n = self.settings, len(self.data.train_y)
        batches = self.data.train_batches(s.batch_size, self.generator, sampler=s.sampler,
                                          m_per_class=s.m_per_class)
        count = n // s.batch_size if s.sampler == "m_per_class" else math.ceil(n / s.batch_size)
        return tqdm(batches, total=count, disable=not self.progress, leave=False,
                    desc=f"epoch {self.epoch + 1}")

    # ------------------------------------------------------------------ one epoch's record

    def training_row(self, sums: torch.Tensor, batches: int, seen: int) -> dict:
        total, ce, term, correct = sums.tolist()
        if not math.isfinite(total):
            raise TrainingDiverged(f"the training loss became {total} in epoch {self.epoch + 1}")
        stats = {**self.loss.epoch_stats(), **self.probe.epoch_stats()}
        if stats.get("counted_fraction") == 0.0:
            s = self.settings
            raise LossNeverActed(
                f"the {type(self.loss).__name__} term acted on no sample in epoch {self.epoch + 1}, so only "
                f"(1 − λ)·cross-entropy trained: a sample counts only when its batch holds "
                f"{self.loss.batch_needs}, and no batch of trainer.batch_size={s.batch_size} with "
                f"trainer.sampler={s.sampler} did. Use a larger trainer.batch_size, or "
                f"trainer.sampler=m_per_class with trainer.m_per_class >= 2.")
        return {"epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
                "train_loss": total / batches, "train_ce": ce / batches, "train_dist": term / batches,
                "train_accuracy": 100.0 * correct / seen, **stats}

    def log_epoch(self, row: dict) -> None:
        best = "  (best)" if self.stopper.best_epoch == self.epoch - 1 else ""
        log.info("epoch %d/%d  loss %.4f%s  train %.2f%%  val %.2f%%  lr %.2g  %.1fs%s%s", row["epoch"],
                 self.settings.max_epochs, row["train_loss"], self._loss_parts(row), row["train_accuracy"],
                 row["val_accuracy"], row["lr"], row["seconds"], best, self._time_left())

    def _loss_parts(self, row: dict) -> str:
        """Eq. 11's parts where there are two (``(ce 0.41, dist 1.92)``), and a schedule's values."""
        parts = []
        if not self.head and self.lam:
            parts.append(f"ce {row['train_ce']:.4f}, dist {row['train_dist']:.4f}")  # history.csv's names
        parts += [f"{name} {row[key]:.2f}" for key, name in (("alpha", "α"), ("beta", "β")) if key in row]
        return f" ({', '.join(parts)})" if parts else ""

    def _time_left(self) -> str:
        """At most this much longer: the epochs left at the mean epoch time (early stopping may end
        the run sooner)."""
        left = self.settings.max_epochs - self.epoch
        if left <= 0 or self.stopped_early:
            return ""
        seconds = left * sum(r["seconds"] for r in self.history) / len(self.history)
        return f"  ≤ {_duration(seconds)} left"

    # ------------------------------------------------------------------ evaluation

    @torch.inference_mode()
    def predict(self, split: str, with_latents: bool = False):
        """Predicted labels, true labels and (optionally) latents of a split, as numpy arrays."""
        self.model.eval()
        self.loss.eval()
        preds, latents = [], []
        for x, _ in self.data.eval_batches(split, self.settings.eval_batch_size):
            with self.autocast():
                out = self.forward(x)
            preds.append(self.scores(out).argmax(1))
            if with_latents:
                latents.append(out.features["latent"].float())
        labels = getattr(self.data, f"{split}_y").cpu().numpy()
        pred = torch.cat(preds).cpu().numpy()
        return pred, labels, (torch.cat(latents).cpu().numpy() if with_latents else None)

    def accuracy(self, split: str) -> float:
        pred, labels, _ = self.predict(split)
        return float((pred == labels).mean() * 100.0)

    # ------------------------------------------------------------------ weights and checkpoints

    def weights(self) -> dict:
        return {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "loss": {k: v.detach().clone() for k, v in self.loss.state_dict().items()}}

    def restore_tested(self) -> None:
        """The weights the test evaluates (trainer.test_checkpoint): the best validation epoch's,
        or, for ``last``, those the last epoch left (nothing to restore)."""
        if self.settings.test_checkpoint == "best":
            self.restore_best()

    @property
    def tested_epoch(self) -> int:
        """The epoch (from 1) whose weights the test evaluates."""
        return self.stopper.best_epoch + 1 if self.settings.test_checkpoint == "best" else self.epoch

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state["model"])
            self.loss.load_state_dict(self.best_state["loss"])

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"format": CHECKPOINT_FORMAT, "identity": self.identity, "epoch": self.epoch,
                "stopped_early": self.stopped_early, "model": self.model.state_dict(),
                "loss": self.loss.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "early_stopping": self.stopper.state_dict(),
                "best": self.best_state, "history": self.history, "rng": rng, "precision": self.precision,
                "threads": self.threads, "trackers": self.callbacks.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT or state.get("identity") != self.identity:
            raise StaleCheckpoint("written for another config or format")
        if state.get("precision") != self.precision:  # e.g. a bf16 run resumed on a CPU without bf16
            raise StaleCheckpoint(f"its epochs trained in {state.get('precision')}, and this device trains "
                                  f"in {self.precision}; one run never mixes the two")
        self.model.load_state_dict(state["model"])
        self.loss.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stopper.load_state_dict(state["early_stopping"])
        self.best_state = copy.deepcopy(state["best"])
        if self.best_state is not None:
            for part in self.best_state.values():
                for k, v in part.items():
                    part[k] = v.to(self.device)
        self.history = list(state["history"])
        self.callbacks.load_state_dict(state.get("trackers", {}))  # e.g. the MLflow run to continue
        self.epoch, self.stopped_early = state["epoch"], state["stopped_early"]
        torch.set_rng_state(state["rng"]["torch"])
        self.generator.set_state(state["rng"]["generator"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.use_threads(state.get("threads"))

    def use_threads(self, threads: int | None) -> None:
        """Go on with the CPU thread count the run started with (a checkpoint's), whatever this
        process was given: a different count rounds differently, and the run would no longer be one."""
        if threads is None or threads == self.threads:
            return
        log.info("resuming with the %d CPU thread%s the run started with (this job was given %d)", threads,
                 "" if threads == 1 else "s", self.threads)
        torch.set_num_threads(threads)
        self.threads = threads

    def save(self) -> None:
        # Checkpoint first: history.csv never shows an epoch that a resumed run would redo, so
        # `status` never overstates progress. The checkpoint holds the history too, and a
        # resumed run rewrites the file (see save_history).
        with signals_deferred():  # a signal's handler never lands inside a file being written
            if self.files is not None:
                save_checkpoint(self.files.checkpoint, self.state_dict())
            self.save_history()

    def save_history(self) -> None:
        if self.files is not None:
            write_history(self.files.history, self.history)

    def resume(self) -> bool:
        """Load the run's checkpoint if there is a valid one; True when training resumes."""
        if self.files is None or not self.files.checkpoint.exists():
            return False
        path = self.files.checkpoint
        try:
            self.load_state_dict(load_checkpoint(path))
        except StaleCheckpoint as e:
            log.warning("ignoring %s and training from the start: %s", path, e)
            return False
        except Exception as e:  # unreadable file: start over rather than fail the sweep
            log.warning("ignoring unreadable checkpoint %s (%s)", path, e)
            return False
        log.info("resuming from %s after epoch %d", path, self.epoch)
        return True


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def step_scheduler(scheduler, val_accuracy: float) -> None:
    """One step per epoch; the plateau schedule watches validation accuracy."""
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(val_accuracy)
    else:
        scheduler.step()
