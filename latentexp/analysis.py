"""`latentexp analyze RUN_DIR`: cluster quality and a t-SNE of a run's saved test latents,
cached in the run directory (analysis.json, tsne.npz); no retraining."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from latentexp.errors import DataError
from latentexp.io import read_json, write_json, write_npz
from latentexp.metrics.clustering import cluster_quality

LATENTS_FILE = "test_latents.npz"
ANALYSIS_FILE = "analysis.json"
TSNE_FILE = "tsne.npz"


def save_latents(run_dir: Path, latents: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> None:
    """Test-set latents (float16 to keep sweeps small), labels and predictions, atomically."""
    write_npz(run_dir / LATENTS_FILE, latents=latents.astype(np.float16), labels=labels.astype(np.int64),
              predictions=predictions.astype(np.int64))


def load_latents(run_dir: Path) -> dict[str, np.ndarray]:
    path = run_dir / LATENTS_FILE
    if not path.exists():
        raise DataError(f"{path} does not exist: analyze needs a finished run directory "
                        f"(outputs/runs/<name>/) that saved its test latents.")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def tsne_embedding(latents: np.ndarray, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(2.0, (len(latents) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        latents.astype(np.float32))


def analyze(run_dir: str | Path, seed: int = 0, tsne: bool = True, force: bool = False,
            gmm_covariance: str = "diag") -> dict:
    run_dir = Path(run_dir)
    cached = run_dir / ANALYSIS_FILE
    if cached.exists() and not force and (not tsne or (run_dir / TSNE_FILE).exists()):
        return read_json(cached)
    data = load_latents(run_dir)
    latents, labels = data["latents"].astype(np.float64), data["labels"]
    result = {"run_dir": str(run_dir), "num_samples": len(labels), "dim": latents.shape[1], "seed": seed,
              "gmm_covariance": gmm_covariance, **cluster_quality(latents, labels, seed, gmm_covariance)}
    if tsne:
        embedding = tsne_embedding(latents, seed)
        write_npz(run_dir / TSNE_FILE, embedding=embedding.astype(np.float32), labels=labels)
    write_json(cached, result)
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="latentexp analyze",
        description="Cluster quality (K-Means and GMM with k = classes: Hungarian accuracy, ARI, V-measure, "
                    "homogeneity, completeness, silhouette, Davies-Bouldin, Calinski-Harabasz) and a t-SNE "
                    "of a run's saved test latents, cached in the run directory.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tsne", action="store_true", help="skip the t-SNE embedding")
    parser.add_argument("--force", action="store_true", help="recompute even when cached")
    parser.add_argument("--gmm-covariance", default="diag", choices=["diag", "full", "tied", "spherical"])
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        result = analyze(run_dir, args.seed, tsne=not args.no_tsne, force=args.force,
                         gmm_covariance=args.gmm_covariance)
        print(f"{run_dir}:")
        for part in ("true_labels", "kmeans", "gmm"):
            print(f"  {part:12s} " + "  ".join(f"{k} {v:.4f}" for k, v in result[part].items()))
