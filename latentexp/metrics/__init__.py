from latentexp.metrics.classification import classification_metrics
from latentexp.metrics.latent import silhouette

__all__ = ["classification_metrics", "silhouette"]
