"""``run(cfg) -> result``: one training run, from its config to result.json, resumable."""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from latentexp.config.components import build_source
from latentexp.data import DeviceData, load_device_data
from latentexp.data.identity import check_data_unchanged
from latentexp.errors import ConfigError, DataError
from latentexp.launch.build import build_trainer
from latentexp.launch.trackers import build_trackers
from latentexp.launch.validation import validate_config
from latentexp.metrics import classification_metrics, silhouette
from latentexp.runs.spec import RunSpec
from latentexp.runtime import configure_backends, device_name, resolve_device, versions
from latentexp.train.trainer import Trainer, TrainingFailed

log = logging.getLogger("latentexp")


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Train and test one run; return its result (also written to ``run_dir/result.json``).

    A run whose result.json exists is not trained again (its test latents are rewritten from the
    checkpoint if they are missing or broken); an unfinished one resumes from its last epoch
    checkpoint. Any job that names an equivalent config (an auxiliary loss at λ = 0,
    cross-entropy at any λ) trains that same run. Whatever can refuse a run (a bad value, the
    data, the device, the sampler) refuses it before its directory is created.
    """
    validate_config(cfg)
    return run_spec(RunSpec.from_config(cfg, run_dir), requested_loss=cfg.loss.name)


def run_spec(spec: RunSpec, requested_loss: str | None = None) -> dict:
    """``run`` of a job already validated and specified (latentexp.launch.jobs): the same run, with no
    second validation or spec. ``requested_loss``: the loss the job named (an auxiliary loss at
    λ = 0 trains the baseline, and says so)."""
    try:
        return _run_spec(spec, requested_loss)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DataError(f"cannot write {err.filename or spec.files.path}: the disk is full ({err.strerror}). "
                        f"Every file the run wrote before is intact (each is written whole or not at all): "
                        f"free some space, or set output_root=DIR on another disk and move the run there, "
                        f"and run the same command again; the run resumes from its last checkpoint."
                        ) from None


def _run_spec(spec: RunSpec, requested_loss: str | None) -> dict:
    files = spec.files
    files.check_holds(spec.name, spec.hash)  # another run's directory: refused, nothing reused
    done = files.read_result()  # an unreadable one stops with a message that says how to repair it
    if done is not None and not (done.get("status") == "finished" and files.latents_broken()):
        log.info("%s already %s; not training again", files.path, done.get("status", "done"))
        return done
    if done is not None and files.copied_without_latents():
        log.warning("%s is finished but has neither test latents nor a checkpoint to rebuild them from (a "
                    "run copied with its small files only, as committed results are); not training again. "
                    "`latentexp analyze` and the report's t-SNE need the latents: delete the run directory "
                    "and run the same command to train it again if you need them", files.path)
        return done
    if requested_loss is not None and spec.loss != requested_loss:
        log.info("%s at λ = 0 is the cross-entropy baseline: training loss=ce, shared by every λ = 0 job",
                 requested_loss)
    config = spec.config
    device = resolve_device(config["device"])
    configure_backends(device)
    source = build_source(config["dataset"])  # the one dataset object of this run
    data = load_device_data(source.load(), config["dataset"], spec.seed, device,
                            bool(config["trainer"]["channels_last"]))
    if spec.data_fingerprint is not None:
        check_data_unchanged(source, config["dataset"]["name"], spec.data_fingerprint)
    trainer = build_trainer(spec, data, device, files)

    lock = files.lock()  # creates the run directory
    if not lock.acquire():
        busy = files.holder() or {}
        log.info("%s is being trained by another job (host %s, pid %s); leaving it to that job",
                 files.path, busy.get("host"), busy.get("pid"))
        return {"spec": spec.to_json(), "status": "running elsewhere", "holder": busy}
    try:
        files.check_holds(spec.name, spec.hash)  # started there by another run since our first look?
        done = files.read_result()  # finished by another job between our first look and our lock?
        if done is None:
            return _train(spec, trainer, data, device)
        if done.get("status") == "finished" and files.latents_broken():
            return _rewrite_latents(spec, trainer, done)
        return done
    finally:
        lock.release()


def _train(spec: RunSpec, trainer: Trainer, data: DeviceData, device: torch.device) -> dict:
    files = spec.files
    for leftover in files.start(spec.to_json(), OmegaConf.to_yaml(spec.config)):
        log.info("removed %s, left half-written by a killed run", leftover.name)
    config = spec.config
    trainer.callbacks = build_trackers(config.get("logger"), config, files.path, spec.name, spec.hash,
                                      _preset_name())
    threads = torch.get_num_threads()  # a resumed run may take its own: this process's again after it
    trainer.resume()
    trainer.callbacks.start(trainer.history)  # a resumed run logs its earlier epochs where they are missing
    try:
        return _fit_and_test(spec, trainer, data, device)
    finally:
        trainer.callbacks.close()  # flushes; a killed or interrupted run's MLflow run stays open to resume
        torch.set_num_threads(threads)


def _fit_and_test(spec: RunSpec, trainer: Trainer, data: DeviceData, device: torch.device) -> dict:
    files, config = spec.files, spec.config
    log.info("run %s: %s on %s in %s, %d train / %d val / %d test samples from %s", spec.name, spec.model,
             device, trainer.precision, len(data.train_y), len(data.val_y), len(data.test_y), data.source)
    log.info("run directory %s (checkpoint each epoch; a killed run resumes with the same command)",
             files.path)

    base = {"spec": spec.to_json(), "device": device_name(device), "precision": trainer.precision,
            "threads": trainer.threads, "versions": versions(), "data_source": data.source,
            "data": data.describe()}
    started = time.perf_counter()
    try:
        with _out_of_memory_as_advice(config, "training"):
            trainer.fit()
    except TrainingFailed as e:
        result = {**base, "status": "failed", "reason": str(e), "epochs_run": trainer.epoch,
                  "finished_at": _now()}
        files.write_result(result)
        log.error("run %s failed: %s", spec.name, e)
        trainer.callbacks.finish(result)
        return result

    trainer.save_history()  # whole again if a kill fell between the last checkpoint and its history
    trainer.restore_tested()
    eval_start = time.perf_counter()
    with _out_of_memory_as_advice(config, "evaluation"):
        pred, labels, latents = trainer.predict("test", with_latents=True)
        files.save_latents(latents, labels, pred)  # for `latentexp analyze`, without retraining
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
        "tested_epoch": trainer.tested_epoch,
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
    files.write_result(result)  # written last: its presence marks the run as done
    trainer.callbacks.finish(result)
    log.info("test accuracy %.2f%%  micro-F1 %.4f  silhouette %.4f  (%s epoch %d of %d)",
             result["test_accuracy"], result["test_micro_f1"], sil, trainer.settings.test_checkpoint,
             result["tested_epoch"], result["epochs_run"])
    log.info("result written to %s; `latentexp report %s` makes the tables", files.result_file,
             files.path.parent.parent)
    return result


def _rewrite_latents(spec: RunSpec, trainer: Trainer, result: dict) -> dict:
    """Rewrite a finished run's missing or unreadable test latents from the tested weights in its
    checkpoint (the best epoch's, or the last's); the result itself stays as it is (the predictions
    are checked against it)."""
    files = spec.files
    trained_in = result.get("precision")
    if trained_in is not None and trained_in != trainer.precision:
        raise DataError(f"{files.latents} is missing or unreadable, and this device would rebuild it in "
                        f"{trainer.precision} from weights trained in {trained_in}; run the same command on "
                        f"a device that trains in {trained_in}, or delete {files.path} to train the run "
                        f"again.")
    if not trainer.resume():
        raise DataError(f"{files.latents} is missing or unreadable and {files.checkpoint} cannot rebuild it; "
                        f"delete {files.path} and run the same command to train the run again.")
    trainer.restore_tested()
    with _out_of_memory_as_advice(spec.config, "evaluation"):
        pred, labels, latents = trainer.predict("test", with_latents=True)
    accuracy = classification_metrics(labels, pred)["accuracy"]
    if abs(accuracy - result["test_accuracy"]) > 1e-9:
        log.warning("the rewritten test predictions give %.4f%% where result.json says %.4f%% (another "
                    "device or library version?); the latents are written anyway", accuracy,
                    result["test_accuracy"])
    files.save_latents(latents, labels, pred)
    log.info("rewrote %s from the tested weights in %s", files.latents, files.checkpoint)
    return result


@contextlib.contextmanager
def _out_of_memory_as_advice(config: dict, stage: str):
    """CUDA out of memory becomes a ConfigError naming the batch size to lower. Nothing is
    recorded as done, and the epochs checkpointed so far stay: a smaller evaluation batch is the
    same run (it resumes); a smaller training batch is a new run."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        batch, eval_batch = int(config["trainer"]["batch_size"]), int(config["trainer"]["eval_batch_size"])
        where = f"device={config['device']}, {config['model']['name']} on {config['dataset']['name']}"
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


def _preset_name() -> str | None:
    """The preset a Hydra job was composed from (experiment=...), which names its MLflow experiment."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get("experiment")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
