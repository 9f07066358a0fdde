"""The one trainer (paper §4.1): Adam, ReduceLROnPlateau on validation accuracy, early stopping,
λ-mixing of Eq. 11, best-epoch weights kept for the test, an atomic checkpoint every epoch."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from latentexp.data import DeviceData
from latentexp.losses import BatchLoss
from latentexp.train.checkpoint import load_checkpoint, save_checkpoint
from latentexp.train.early_stopping import EarlyStopping
from latentexp.train.history import write_history
from latentexp.train.optim import build_optimizer, build_scheduler, step_scheduler

log = logging.getLogger("latentexp")

CHECKPOINT_FORMAT = 1


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


class StaleCheckpoint(RuntimeError):
    """A checkpoint belongs to another config than the run's."""


DEFAULT_OPTIMIZER = {"name": "adam", "lr": 1e-3}
DEFAULT_SCHEDULER = {"name": "plateau", "factor": 0.2, "patience": 10}


class Trainer:
    def __init__(self, model: nn.Module, loss_fn: BatchLoss, data: DeviceData, trainer_cfg,
                 lam: float, seed: int, device: torch.device, identity: str,
                 optimizer_cfg=None, scheduler_cfg=None,
                 augment: bool = False, checkpoint_path: Path | None = None,
                 history_path: Path | None = None):
        self.model, self.loss_fn, self.data, self.cfg = model, loss_fn, data, trainer_cfg
        self.lam, self.device, self.identity, self.augment = float(lam), device, identity, augment
        self.checkpoint_path, self.history_path = checkpoint_path, history_path
        self.max_epochs = int(trainer_cfg["max_epochs"])
        self.amp = bool(trainer_cfg.get("amp", True)) and device.type == "cuda"
        # torch.compile'd forward (trainer.compile); the module itself keeps its plain state_dict keys.
        self.forward = torch.compile(model) if trainer_cfg.get("compile", False) else model
        # A head-replacing loss owns parameters (class weights, signatures): optimise them too.
        params = list(model.parameters()) + list(loss_fn.parameters())
        self.optimizer = build_optimizer(params, optimizer_cfg or DEFAULT_OPTIMIZER, device)
        self.scheduler = build_scheduler(self.optimizer, scheduler_cfg or DEFAULT_SCHEDULER)
        self.stopper = EarlyStopping(trainer_cfg.get("early_stopping_patience"))
        self.sampler = str(trainer_cfg.get("sampler", "random"))
        self.m_per_class = int(trainer_cfg.get("m_per_class", 4))
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.epoch = 0  # epochs completed
        self.stopped_early = False
        self.history: list[dict] = []
        self.best_state: dict | None = None
        progress = trainer_cfg.get("progress", "auto")
        self.progress = sys.stderr.isatty() if progress == "auto" else bool(progress)

    # ------------------------------------------------------------------ one step

    def autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def features(self, out) -> torch.Tensor:
        """The model output the loss reads."""
        return out.logits if self.loss_fn.feature == "logits" else out.features[self.loss_fn.feature]

    def scores(self, out) -> torch.Tensor:
        """Class scores for prediction: the loss's own head when it replaces the model's."""
        return self.loss_fn.logits(self.features(out)) if self.loss_fn.predicts else out.logits

    def objective(self, out, labels: torch.Tensor):
        """Total loss and its cross-entropy and loss-specific parts (Eq. 11 for auxiliary losses)."""
        if not self.loss_fn.auxiliary:  # cross-entropy itself, or a loss that replaces the head
            total = self.loss_fn(self.features(out), labels)
            zero = torch.zeros_like(total)
            return (total, total, zero) if self.loss_fn.feature == "logits" else (total, zero, total)
        ce = F.cross_entropy(out.logits.float(), labels)
        if self.lam == 0.0:  # the baseline: the distance term has no weight, skip its cost
            return ce, ce, torch.zeros_like(ce)
        extra = {}
        if self.loss_fn.uses_classifier:  # LMDL needs the final linear layer's W and b
            extra = {"weight": self.model.classifier.weight, "bias": self.model.classifier.bias}
        dist = self.loss_fn(self.features(out), labels, **extra)
        return self.lam * dist + (1.0 - self.lam) * ce, ce, dist

    def train_epoch(self) -> dict:
        self.model.train()
        self.loss_fn.train()
        self.loss_fn.set_epoch(self.epoch, self.max_epochs)
        batch_size = int(self.cfg["batch_size"])
        n = len(self.data.train_y)
        sums = torch.zeros(4, device=self.device)  # total, ce, dist, correct
        batches = seen = 0
        start = time.perf_counter()
        batches_iter = self.data.train_batches(batch_size, self.generator, self.augment,
                                               sampler=self.sampler, m_per_class=self.m_per_class)
        bar = tqdm(batches_iter,
                   total=n // batch_size if self.sampler == "m_per_class" else math.ceil(n / batch_size),
                   disable=not self.progress, leave=False,
                   desc=f"epoch {self.epoch + 1}")
        for x, y in bar:
            with self.autocast():
                out = self.forward(x)
            total, ce, dist = self.objective(out, y)
            with torch.no_grad():  # scored with the weights that produced the loss
                correct = (self.scores(out).argmax(1) == y).sum()
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.optimizer.step()
            sums += torch.stack([total.detach(), ce.detach(), dist.detach(), correct.float()])
            batches += 1
            seen += len(y)
        total, ce, dist, correct = sums.tolist()  # the epoch's one host synchronisation
        if not math.isfinite(total):
            raise TrainingDiverged(f"the training loss became {total} in epoch {self.epoch + 1}")
        val_accuracy = self.accuracy("val")
        row = {
            "epoch": self.epoch + 1,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": total / batches,
            "train_ce": ce / batches,
            "train_dist": dist / batches,
            "train_accuracy": 100.0 * correct / seen,
            "val_accuracy": val_accuracy,
        }
        row.update(self.loss_fn.epoch_stats())
        row["seconds"] = time.perf_counter() - start
        return row

    # ------------------------------------------------------------------ evaluation

    @torch.inference_mode()
    def predict(self, split: str, with_latents: bool = False):
        """Predicted labels, true labels and (optionally) latents of a split, as numpy arrays."""
        self.model.eval()
        self.loss_fn.eval()
        preds, latents = [], []
        for x, _ in self.data.eval_batches(split, int(self.cfg["eval_batch_size"])):
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

    # ------------------------------------------------------------------ the loop

    def fit(self) -> None:
        while self.epoch < self.max_epochs and not self.stopped_early:
            row = self.train_epoch()
            step_scheduler(self.scheduler, row["val_accuracy"])
            if self.stopper.update(row["val_accuracy"], self.epoch):
                self.best_state = self._weights()
            self.epoch += 1
            self.stopped_early = self.stopper.should_stop
            self.history.append(row)
            self.save()
            log.info(
                "epoch %d/%d  loss %.4f  train %.2f%%  val %.2f%%  lr %.2g  %.1fs%s",
                row["epoch"], self.max_epochs, row["train_loss"], row["train_accuracy"],
                row["val_accuracy"], row["lr"], row["seconds"],
                "  (best)" if self.stopper.best_epoch == self.epoch - 1 else "",
            )
        if self.stopped_early:
            log.info("early stop: no better validation accuracy for %s epochs", self.stopper.patience)

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state["model"])
            self.loss_fn.load_state_dict(self.best_state["loss"])

    def _weights(self) -> dict:
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "loss": {k: v.detach().clone() for k, v in self.loss_fn.state_dict().items()},
        }

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": CHECKPOINT_FORMAT,
            "identity": self.identity,
            "epoch": self.epoch,
            "stopped_early": self.stopped_early,
            "model": self.model.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early_stopping": self.stopper.state_dict(),
            "best": self.best_state,
            "history": self.history,
            "rng": rng,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT or state.get("identity") != self.identity:
            raise StaleCheckpoint("checkpoint belongs to another config or format")
        self.model.load_state_dict(state["model"])
        self.loss_fn.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stopper.load_state_dict(state["early_stopping"])
        self.best_state = copy.deepcopy(state["best"])
        if self.best_state is not None:
            for part in self.best_state.values():
                for k, v in part.items():
                    part[k] = v.to(self.device)
        self.history = list(state["history"])
        self.epoch, self.stopped_early = state["epoch"], state["stopped_early"]
        torch.set_rng_state(state["rng"]["torch"])
        self.generator.set_state(state["rng"]["generator"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)

    def save(self) -> None:
        # Checkpoint first: history.csv never shows an epoch that a resumed run would redo, so
        # `status` never overstates progress. The checkpoint holds the history too, and a
        # resumed run rewrites the file (see save_history).
        if self.checkpoint_path is not None:
            save_checkpoint(self.checkpoint_path, self.state_dict())
        self.save_history()

    def save_history(self) -> None:
        if self.history_path is not None:
            write_history(self.history_path, self.history)

    def resume(self) -> bool:
        """Load the run's checkpoint if there is a valid one; True when training resumes."""
        path = self.checkpoint_path
        if path is None or not path.exists():
            return False
        try:
            self.load_state_dict(load_checkpoint(path))
        except StaleCheckpoint:
            log.warning("ignoring %s: written for another config", path)
            return False
        except Exception as e:  # unreadable file: start over rather than fail the sweep
            log.warning("ignoring unreadable checkpoint %s (%s)", path, e)
            return False
        log.info("resuming from %s after epoch %d", path, self.epoch)
        return True
