"""The Latent Boost paper's published numbers (Tables 1-3 and 5-8), shipped as published.csv.

Values are kept as the printed strings so a report shows them exactly as the paper does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd

from latentexp.report.roles import PROPOSED

# The paper's dataset × backbone pairs: published values are shown beside these setups only.
PAPER_MODELS = {"fashion_mnist": "cnn", "cifar10": "vgg16", "cifar100": "resnet50"}
# Appendix tables with the full λ grid of the four peer losses (and the baseline).
APPENDIX_TABLES = {"fashion_mnist": 5, "cifar10": 6, "cifar100": 7}
LATENT_BOOST_TABLE = 8


@dataclass(frozen=True)
class Published:
    mean: str
    std: str

    def text(self) -> str:
        return f"{self.mean} ± {self.std}" if self.std else self.mean


@lru_cache(maxsize=1)
def published_values() -> pd.DataFrame:
    with resources.files("latentexp.report").joinpath("published.csv").open() as f:
        frame = pd.read_csv(f, comment="#", dtype=str, keep_default_na=False)
    frame["table"] = frame["table"].astype(int)
    frame["lambda_value"] = frame["lambda"].astype(float)
    return frame


def lookup(table: int, dataset: str, loss: str, lam: float | None, metric: str) -> Published | None:
    frame = published_values()
    hit = frame[(frame["table"] == table) & (frame["dataset"] == dataset) & (frame["loss"] == loss)
                & (frame["metric"] == metric)]
    if lam is not None:
        hit = hit[(hit["lambda_value"] - float(lam)).abs() < 1e-9]
    if hit.empty:
        return None
    row = hit.iloc[0]
    return Published(row["mean"], row["std"])


def grid_value(dataset: str, loss: str, lam: float | None, metric: str) -> Published | None:
    """A λ-sweep cell's published value: Table 8 for Latent Boost, else the appendix table."""
    table = LATENT_BOOST_TABLE if loss == PROPOSED else APPENDIX_TABLES.get(dataset)
    return None if table is None else lookup(table, dataset, loss, lam, metric)


def table1_disagreement(dataset: str, loss: str, lam: float | None, metric: str) -> Published | None:
    """Table 1's value where it differs from the appendix grid (the paper's CIFAR-100 rows)."""
    main, grid = lookup(1, dataset, loss, lam, metric), grid_value(dataset, loss, lam, metric)
    if main is None or grid is None or main.text() == grid.text():
        return None
    if float(main.mean) == float(grid.mean) and (not main.std or float(main.std) == float(grid.std)):
        return None  # the same number printed with other trailing zeros
    return main
