"""Classification metrics. For single-label multi-class data micro-F1 equals accuracy; it is
reported anyway because the paper reports it."""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    # Imported here: scikit-learn (with SciPy and pandas) takes 2 s to import, which every training
    # process would pay at its start, a killed or refused one too; only the test evaluation needs it.
    from sklearn.metrics import f1_score

    return {
        "accuracy": float((y_true == y_pred).mean() * 100.0),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro")),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }
