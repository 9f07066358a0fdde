"""Hand-written run directories for report tests: numbers chosen so means and stds are exact."""

from __future__ import annotations

import json
from pathlib import Path

from latentexp.runs.spec import RunSpec, plain_config
from support.helpers import composed


def run_config(loss: str, lam: float, seed: int, dataset: str = "fashion_mnist", model: str = "cnn",
               max_epochs: int = 100, **loss_params) -> dict:
    """The real composed config of `latentexp train` with these overrides."""
    overrides = (f"dataset={dataset}", f"model={model}", f"loss={loss}", f"lambda={lam}", f"seed={seed}",
                 f"trainer.max_epochs={max_epochs}",
                 *(f"loss.{k}={v}" for k, v in sorted(loss_params.items())))
    return plain_config(composed(overrides))


def write_run(root: Path, config: dict, status: str = "finished", **metrics) -> Path:
    """A run directory as `latentexp train` leaves it: spec.json for a started run, result.json
    with the spec for a finished or failed one."""
    spec = RunSpec.from_config({**config, "output_root": str(root)}, resolve_data=False)  # hand-written
    spec.files.path.mkdir(parents=True, exist_ok=True)
    spec.files.spec_file.write_text(json.dumps(spec.to_json()))
    if status != "started":
        result = {"spec": spec.to_json(), "status": status, **metrics}
        spec.files.result_file.write_text(json.dumps(result))
    return spec.files.path


def finished(root: Path, loss: str, lam: float, seed: int, accuracy: float, val: float, epochs: int = 40,
             silhouette: float = 0.3, **config_kwargs) -> Path:
    run_dir = write_run(root, run_config(loss, lam, seed, **config_kwargs), test_accuracy=accuracy,
                        test_micro_f1=accuracy / 100, test_macro_f1=accuracy / 100, val_accuracy_best=val,
                        epochs_run=epochs, best_epoch=epochs - 20, epoch_seconds_mean=2.0,
                        train_seconds=2.0 * epochs, silhouette_test=silhouette)
    rows = ["epoch,train_loss,val_accuracy,pca_components"]  # a short history for the figures
    rows += [f"{e},{2.0 / e:.4f},{val - 5.0 / e:.4f},{10 + e}" for e in range(1, 4)]
    (run_dir / "history.csv").write_text("\n".join(rows) + "\n")
    return run_dir


def hand_written_sweep(root: Path) -> Path:
    """Three seeds asked. Baseline 89 ± 1; Magnet best by validation at λ=0.5 although λ=0.75 has the
    better test accuracy; Latent Boost's only complete cell (λ=0.25) is chosen over partial cells with
    better validation accuracy; ArcFace without λ; one failed run, one unfinished run, one analysed
    run. Real composed configs of the paper's setup, so the published values show beside them."""
    for seed, acc in enumerate((88.0, 89.0, 90.0)):
        finished(root, "ce", 0.0, seed, acc, val=acc, epochs=40 + 2 * seed, silhouette=0.30 + 0.01 * seed)
    for seed, acc in enumerate((89.5, 90.0, 90.5)):
        finished(root, "magnet", 0.5, seed, acc, val=91.0, epochs=36, silhouette=0.35)
    for seed, acc in enumerate((91.0, 91.5, 92.0)):
        finished(root, "magnet", 0.75, seed, acc, val=90.0, epochs=30)
    for seed, acc in enumerate((90.0, 90.5, 91.0)):
        finished(root, "latent_boost", 0.25, seed, acc, val=91.0, epochs=34, silhouette=0.40 + 0.02 * seed)
    for seed, acc in enumerate((90.0, 91.0)):
        finished(root, "latent_boost", 0.5, seed, acc, val=92.0)
    for seed, acc in enumerate((92.0, 93.0)):
        finished(root, "latent_boost", 0.75, seed, acc, val=91.5)
    write_run(root, run_config("latent_boost", 0.75, 2), status="failed",
              reason="the training loss became nan")
    write_run(root, run_config("triplet", 0.5, 0), status="started")
    for seed, acc in enumerate((87.0, 87.5, 88.0)):  # a head-replacing loss: no λ
        finished(root, "arcface", 0.75, seed, acc, val=acc)
    analysed = root / "runs" / RunSpec.from_config(run_config("ce", 0.0, 0), resolve_data=False).name
    analysis = {"gmm_covariance": "diag", "kmeans": {"hungarian_accuracy": 0.8, "ari": 0.6, "v_measure": 0.7},
                "gmm": {"hungarian_accuracy": 0.75, "ari": 0.55, "v_measure": 0.65},
                "true_labels": {"silhouette": 0.3, "davies_bouldin": 1.5, "calinski_harabasz": 1234.5}}
    (analysed / "analysis.json").write_text(json.dumps(analysis))
    return root


def with_spec_fields(run_dir: Path, **fields) -> Path:
    """Rewrite fields of a run's stored spec (spec.json and result.json's copy) as a damaged or
    hostile run tree would hold them, e.g. a ``dataset`` that names a path."""
    for name in ("spec.json", "result.json"):
        path = run_dir / name
        if path.exists():
            data = json.loads(path.read_text())
            spec = data["spec"] if name == "result.json" else data
            spec.update(fields)
            path.write_text(json.dumps(data))
    return run_dir
