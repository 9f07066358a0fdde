"""``run(cfg) -> result``: one training run, from config to result.json, resumable."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from latentexp.analysis import save_latents
from latentexp.config import loss_params, model_params, validate_config
from latentexp.data import load_device_data
from latentexp.errors import ConfigError
from latentexp.identity import (
    BASELINE_LOSS,
    identity_hash,
    is_baseline,
    plain_config,
    run_fields,
    run_name,
)
from latentexp.io import read_json, remove_partial_writes, write_json, write_text
from latentexp.losses import LOSSES, build_loss
from latentexp.metrics import classification_metrics, silhouette
from latentexp.models import build_model
from latentexp.runtime import configure_backends, device_name, resolve_device, seed_everything, versions
from latentexp.train.lock import RunLock, holder
from latentexp.train.trainer import Trainer, TrainingDiverged

log = logging.getLogger("latentexp")

RESULT_FILE = "result.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "checkpoint.pt"


def default_run_dir(cfg: DictConfig) -> Path:
    return Path(cfg.output_root) / "runs" / run_name(cfg)


def run_state(run_dir: Path) -> str:
    """``finished`` or ``failed`` (result.json), ``running`` (a live lock), ``resumable (epoch k)``
    (a checkpoint to resume from), ``started`` (a directory with no complete epoch), else ``new``."""
    result_path = run_dir / RESULT_FILE
    if result_path.exists():
        return str(read_json(result_path).get("status", "finished"))
    busy = holder(run_dir)
    if busy is not None:
        return f"running (host {busy.get('host')}, pid {busy.get('pid')})"
    if (run_dir / CHECKPOINT_FILE).exists() and (run_dir / HISTORY_FILE).exists():
        epochs = max(0, len((run_dir / HISTORY_FILE).read_text().splitlines()) - 1)
        return f"resumable (after epoch {epochs})"
    return "started (no epoch finished)" if (run_dir / "config.yaml").exists() else "new"


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Train and test one run; return its result (also written to ``run_dir/result.json``).

    A run whose result.json exists is not trained again; an unfinished one resumes from its
    last epoch checkpoint.
    """
    validate_config(cfg)
    cfg = _as_baseline_if_equivalent(cfg)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    result_path = run_dir / RESULT_FILE
    if result_path.exists():
        result = read_json(result_path)
        log.info("%s already %s; not training again", run_dir, result.get("status", "done"))
        return result
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir)
    if not lock.acquire():
        busy = holder(run_dir) or {}
        log.info("%s is being trained by another job (host %s, pid %s); leaving it to that job",
                 run_dir, busy.get("host"), busy.get("pid"))
        return {"run_name": run_dir.name, "status": "running elsewhere", "holder": busy}
    try:
        return _train(cfg, run_dir)
    finally:
        lock.release()


def _train(cfg: DictConfig, run_dir: Path) -> dict:
    result_path = run_dir / RESULT_FILE
    if result_path.exists():  # finished by another job between our check and our lock
        return read_json(result_path)
    for leftover in remove_partial_writes(run_dir):
        log.info("removed %s, left half-written by a killed run", leftover.name)
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(plain_config(cfg)))

    device = resolve_device(cfg.device)
    configure_backends(device)
    channels_last = bool(cfg.trainer.channels_last) and device.type == "cuda"
    data = load_device_data(cfg.dataset, cfg.seed, device, channels_last)
    seed_everything(cfg.seed)
    model = build_model(cfg.model.name, data.in_channels, data.image_size, data.num_classes,
                        **model_params(cfg)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    feature = LOSSES[cfg.loss.name].feature
    loss_fn = build_loss(cfg.loss.name, num_classes=data.num_classes,
                         embedding_size=model.feature_dims.get(feature, data.num_classes),
                         **loss_params(cfg)).to(device)
    identity = identity_hash(cfg)
    trainer = Trainer(model, loss_fn, data, cfg.trainer, cfg["lambda"], cfg.seed, device,
                      identity=identity, optimizer_cfg=cfg.optimizer,
                      scheduler_cfg=cfg.lr_scheduler, augment=bool(cfg.dataset.augment),
                      checkpoint_path=run_dir / CHECKPOINT_FILE,
                      history_path=run_dir / HISTORY_FILE)
    trainer.resume()
    log.info("run %s: %s on %s, %d train / %d val / %d test samples from %s",
             run_dir.name, cfg.model.name, device, len(data.train_y), len(data.val_y),
             len(data.test_y), data.source)

    base = {
        "run_name": run_dir.name,
        "run": run_fields(cfg),
        "identity": identity,
        "config": plain_config(cfg),
        "device": device_name(device),
        "versions": versions(),
        "data_source": data.source,
    }
    started = time.perf_counter()
    try:
        with _out_of_memory_as_advice(cfg, "training"):
            trainer.fit()
    except TrainingDiverged as e:
        result = {**base, "status": "failed", "reason": str(e), "epochs_run": trainer.epoch,
                  "finished_at": _now()}
        write_json(result_path, result)
        log.error("run %s failed: %s", run_dir.name, e)
        return result

    trainer.save_history()  # whole again if a kill fell between the last checkpoint and its history
    trainer.restore_best()
    eval_start = time.perf_counter()
    with _out_of_memory_as_advice(cfg, "evaluation"):
        pred, labels, latents = trainer.predict("test", with_latents=True)
        save_latents(run_dir, latents, labels, pred)  # for `latentexp analyze`, without retraining
        sil = silhouette(latents, labels, device=device)  # on the run's device: seconds, not minutes
    test = classification_metrics(labels, pred)
    eval_seconds = time.perf_counter() - eval_start

    seconds = [row["seconds"] for row in trainer.history]
    result = {
        **base,
        "status": "finished",
        "test_accuracy": test["accuracy"],
        "test_micro_f1": test["micro_f1"],
        "test_macro_f1": test["macro_f1"],
        "val_accuracy_best": trainer.stopper.best,
        "best_epoch": trainer.stopper.best_epoch + 1,
        "epochs_run": trainer.epoch,
        "stopped_early": trainer.stopped_early,
        "epoch_seconds_mean": float(np.mean(seconds)),
        "train_seconds": float(np.sum(seconds)),
        "test_eval_seconds": eval_seconds,
        "silhouette_test": sil,
        "pca_components": [row["pca_components"] for row in trainer.history if "pca_components" in row],
        "num_train": len(data.train_y),
        "num_val": len(data.val_y),
        "num_test": len(data.test_y),
        "wall_seconds_this_session": time.perf_counter() - started,
        "finished_at": _now(),
    }
    write_json(result_path, result)  # written last: its presence marks the run as done
    log.info("test accuracy %.2f%%  micro-F1 %.4f  silhouette %.4f  (best epoch %d of %d)",
             result["test_accuracy"], result["test_micro_f1"], sil, result["best_epoch"],
             result["epochs_run"])
    return result


@contextlib.contextmanager
def _out_of_memory_as_advice(cfg: DictConfig, stage: str):
    """CUDA out of memory becomes a ConfigError naming the batch size to lower. Nothing is
    recorded as done, and the epochs checkpointed so far stay: a smaller evaluation batch is the
    same run (it resumes); a smaller training batch is a new run."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        batch, eval_batch = int(cfg.trainer.batch_size), int(cfg.trainer.eval_batch_size)
        where = f"device={cfg.device}, {cfg.model.name} on {cfg.dataset.name}"
        if stage == "evaluation":
            advice = (f"lower trainer.eval_batch_size (now {eval_batch}), e.g. "
                      f"trainer.eval_batch_size={max(1, eval_batch // 4)}; the run then resumes where it "
                      f"stopped")
        else:
            advice = (f"lower trainer.batch_size (now {batch}), e.g. "
                      f"trainer.batch_size={max(1, batch // 2)} (a new run), or trainer.eval_batch_size "
                      f"(now {eval_batch}) if it failed while validating")
        raise ConfigError(f"CUDA ran out of memory during {stage} ({where}): {advice}; or free the GPU "
                          f"of other processes.") from None


def _as_baseline_if_equivalent(cfg: DictConfig) -> DictConfig:
    """An auxiliary loss at λ = 0 trains as the cross-entropy baseline it is identical to, so every
    job that shares the baseline's run directory also shares its checkpoint format."""
    if cfg.loss.name == BASELINE_LOSS or not is_baseline(cfg.loss.name, cfg["lambda"]):
        return cfg
    log.info("%s at λ = 0 is the cross-entropy baseline: training loss=ce, shared by every λ = 0 job",
             cfg.loss.name)
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.loss = {"name": BASELINE_LOSS}
        cfg["lambda"] = 0.0
    return cfg


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

