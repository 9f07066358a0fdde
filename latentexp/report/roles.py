"""How the report names, orders and singles out losses.

A loss's column title and its place among the losses come from its ``conf/loss/<name>.yaml``
(``report: {title, place}``); a loss without them (another config tree's, or one that leaves
them out) is shown under its config name, after the others. The roles the Latent Boost paper's
own tables give three losses are declared here once.
"""

from __future__ import annotations

from latentexp.config.tree import group_option
from latentexp.runs.spec import BASELINE_LOSS

BASELINE = BASELINE_LOSS  # every λ = 0 run; Table 2's first column
PROPOSED = "latent_boost"  # Table 2's "Improv." column, the ablation's reference, Fig. 3's α/β
PREDECESSOR = "magnet"  # what Table 2 and the ablation compare Latent Boost with
TSNE_COLUMNS = (BASELINE, PREDECESSOR, PROPOSED)  # Fig. 2's columns

# Where a loss without a place goes: after every loss that declares one.
UNPLACED = 10_000


def _declared(loss: str) -> dict:
    try:
        return group_option("loss", loss).get("report") or {}
    except KeyError:  # a loss of another config tree
        return {}


def loss_title(loss: str) -> str:
    """The loss's column title (``Latent Boost``), or its config name."""
    return _declared(loss).get("title", loss)


def loss_place(loss: str) -> int:
    """The loss's place among the losses in a table (smaller first)."""
    return _declared(loss).get("place", UNPLACED)
