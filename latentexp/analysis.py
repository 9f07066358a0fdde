"""`latentexp analyze RUN_DIR`: cluster quality and a t-SNE of a run's saved test latents,
cached in the run directory (analysis.json, tsne.npz); no retraining."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentexp.arguments import run_paths_parser
from latentexp.io import read_json, write_json, write_npz
from latentexp.metrics.clustering import cluster_quality
from latentexp.rundir import RunDir


def tsne_embedding(latents: np.ndarray, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(2.0, (len(latents) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        latents.astype(np.float32))


def analyze(run_dir: str | Path, seed: int = 0, tsne: bool = True, force: bool = False,
            gmm_covariance: str = "diag") -> dict:
    files = RunDir(run_dir)
    if files.analysis.exists() and not force and (not tsne or files.tsne.exists()):
        return read_json(files.analysis)
    data = files.load_latents()
    latents, labels = data["latents"].astype(np.float64), data["labels"]
    result = {"run_dir": str(run_dir), "num_samples": len(labels), "dim": latents.shape[1], "seed": seed,
              "gmm_covariance": gmm_covariance, **cluster_quality(latents, labels, seed, gmm_covariance)}
    if tsne:
        embedding = tsne_embedding(latents, seed)
        write_npz(files.tsne, embedding=embedding.astype(np.float32), labels=labels)
    write_json(files.analysis, result)
    return result


def main(argv: list[str]) -> None:
    parser = run_paths_parser(
        "latentexp analyze",
        "Cluster quality (K-Means and GMM with k = classes: Hungarian accuracy, ARI, V-measure, homogeneity, "
        "completeness, silhouette, Davies-Bouldin, Calinski-Harabasz) and a t-SNE of a run's saved test "
        "latents, cached in the run directory.",
        metavar="RUN_DIR", help="run directories (outputs/runs/<name>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tsne", action="store_true", help="skip the t-SNE embedding")
    parser.add_argument("--force", action="store_true", help="recompute even when cached")
    parser.add_argument("--gmm-covariance", default="diag", choices=["diag", "full", "tied", "spherical"])
    args = parser.parse_args(argv)
    for run_dir in args.paths:
        result = analyze(run_dir, args.seed, tsne=not args.no_tsne, force=args.force,
                         gmm_covariance=args.gmm_covariance)
        print(f"{run_dir}:")
        for part in ("true_labels", "kmeans", "gmm"):
            print(f"  {part:12s} " + "  ".join(f"{k} {v:.4f}" for k, v in result[part].items()))
