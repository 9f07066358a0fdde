"""Cluster quality of a latent space (COREL Tables 3-4, LACE Table 2): K-Means and a Gaussian
mixture with k = number of classes, scored against the true labels, plus internal indices."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics
from sklearn.cluster import KMeans
from sklearn.metrics import confusion_matrix
from sklearn.mixture import GaussianMixture

from latentexp.metrics.latent import silhouette


def hungarian_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy after the best one-to-one matching of clusters to classes (Hungarian method)."""
    cm = confusion_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(-cm)
    return float(cm[rows, cols].sum() / len(y_true))


def internal_indices(latents: np.ndarray, assignment: np.ndarray) -> dict[str, float]:
    """Silhouette, Davies-Bouldin and Calinski-Harabasz of a partition (NaN when undefined)."""
    if not 2 <= len(np.unique(assignment)) < len(assignment):
        return {"silhouette": float("nan"), "davies_bouldin": float("nan"), "calinski_harabasz": float("nan")}
    return {
        "silhouette": silhouette(latents, assignment),
        "davies_bouldin": float(metrics.davies_bouldin_score(latents, assignment)),
        "calinski_harabasz": float(metrics.calinski_harabasz_score(latents, assignment)),
    }


def external_indices(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    homogeneity, completeness, v_measure = metrics.homogeneity_completeness_v_measure(y_true, y_pred)
    return {
        "hungarian_accuracy": hungarian_accuracy(y_true, y_pred),
        "ari": float(metrics.adjusted_rand_score(y_true, y_pred)),
        "v_measure": float(v_measure),
        "homogeneity": float(homogeneity),
        "completeness": float(completeness),
    }


def cluster_quality(latents: np.ndarray, labels: np.ndarray, seed: int = 0,
                    gmm_covariance: str = "diag") -> dict[str, dict[str, float]]:
    """Scores of the true-label partition and of K-Means / GMM clusterings with k = classes.

    The GMM uses diagonal covariances by default (Decision: full covariances of 512-2048-d
    latents are slow and often singular); ``gmm_covariance`` takes sklearn's other choices.
    """
    latents = np.asarray(latents, dtype=np.float64)
    k = len(np.unique(labels))
    out = {"true_labels": internal_indices(latents, labels)}
    clusterers = {
        "kmeans": KMeans(n_clusters=k, n_init=10, random_state=seed),
        "gmm": GaussianMixture(n_components=k, covariance_type=gmm_covariance, random_state=seed,
                               reg_covar=1e-4),
    }
    for name, model in clusterers.items():
        assignment = model.fit_predict(latents)
        out[name] = {**external_indices(labels, assignment), **internal_indices(latents, assignment)}
    return out
