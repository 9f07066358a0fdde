"""`latentexp analyze RUN_DIR`: cluster quality and a t-SNE of a run's saved test latents,
cached in the run directory (analysis.json, tsne.npz); no retraining."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from latentexp.arguments import run_paths_parser
from latentexp.io import open_regular, read_json_object, write_json, write_npz
from latentexp.metrics.clustering import cluster_quality
from latentexp.printable import printable
from latentexp.progress import Steps
from latentexp.runs.rundir import RunDir

log = logging.getLogger("latentexp")


def tsne_embedding(latents: np.ndarray, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(2.0, (len(latents) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        latents.astype(np.float32))


def analyze(run_dir: str | Path, seed: int = 0, tsne: bool = True, force: bool = False,
            gmm_covariance: str = "diag") -> dict:
    """The cluster quality of a run's test latents (and their t-SNE), cached in the run directory."""
    files = RunDir(run_dir)
    if files.analysis.exists() and not force and (not tsne or files.tsne.exists()):
        try:
            return read_json_object(files.analysis)
        except (OSError, ValueError) as err:  # a cache killed mid-write by hand, or damaged: recompute it
            log.warning("%s is unreadable (%s); computing the analysis again", files.analysis, err)
    return _analyse(files, seed, tsne, gmm_covariance)[0]


def tsne_of(run_dir: str | Path, compute: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
    """A run's cached t-SNE embedding and labels; computed (with the analysis) when missing and
    ``compute``, else None."""
    files = RunDir(run_dir)
    if files.tsne.exists():
        try:
            with open_regular(files.tsne) as f, np.load(f, allow_pickle=False) as data:
                return data["embedding"], data["labels"]
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            if not compute:
                log.warning("%s is unreadable (%s); `latentexp analyze --force %s` computes it again",
                            files.tsne, err, files.path)
                return None
            log.warning("%s is unreadable (%s); computing the t-SNE again", files.tsne, err)
    if not compute:
        return None
    log.info("t-SNE of %s (cached in the run directory)", files.path)
    _, embedding, labels = _analyse(files, 0, True, "diag")
    return embedding, labels


def _analyse(files: RunDir, seed: int, tsne: bool, gmm_covariance: str):
    data = files.load_latents()
    latents, labels = data["latents"].astype(np.float64), data["labels"]
    with Steps(f"analyze {printable(files.name)}", 2 if tsne else 1) as step:
        step(f"K-Means, GMM and indices of {len(labels)} latents")
        quality = cluster_quality(latents, labels, seed, gmm_covariance)
        if tsne:  # about a minute for 10,000 test latents on a CPU
            step(f"t-SNE of {len(labels)} latents")
        embedding = tsne_embedding(latents, seed).astype(np.float32) if tsne else None
    result = {"run_dir": str(files.path), "num_samples": len(labels), "dim": latents.shape[1], "seed": seed,
              "gmm_covariance": gmm_covariance, **quality}
    try:  # a cache: on a run tree you cannot write, the results are still returned
        if embedding is not None:
            write_npz(files.tsne, embedding=embedding, labels=labels)
        write_json(files.analysis, result)
    except OSError as err:
        log.warning("could not cache the analysis in %s (%s); copy the run somewhere writable to keep it",
                    files.path, err.strerror or err)
    return result, embedding, labels


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
