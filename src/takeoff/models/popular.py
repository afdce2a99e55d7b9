"""``popular``: the most popular items, optionally with recent interactions counting more.

Each interaction adds ``0.5 ** (age / half_life_days)`` to its item (age measured back from the
log's latest time), or 1 with no half-life or no times. Every user gets the same ranking: the
baseline every recommender must beat, and the answer for users the model has never seen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from takeoff.data.interactions import Interactions
from takeoff.errors import BundleError
from takeoff.models.base import FitReport, Params
from takeoff.models.recommender import ItemFeatures, Recommender
from takeoff.training.context import FitContext

WEIGHTS_FILE = "popular.safetensors"
DAY = 86_400.0


class PopularParams(Params):
    """Hyperparameters of the popularity baseline."""

    half_life_days: float | None = Field(
        None, gt=0, description="Interactions this many days older than the latest count half; None: all count 1."
    )
    use_weights: bool = Field(False, description="Sum the interaction weights (ratings) instead of counting.")


def popularity(log: Interactions, half_life_days: float | None = None, use_weights: bool = False) -> np.ndarray:
    """float32 popularity of every item code of ``log``."""
    weights = log.weights.astype(np.float64) if use_weights else np.ones(len(log))
    if half_life_days is not None and log.times is not None and len(log):
        age = (log.times.max() - log.times) / DAY
        weights = weights * 0.5 ** (age / half_life_days)
    return np.bincount(log.item_codes, weights=weights, minlength=log.n_items).astype(np.float32)


class PopularRecommender(Recommender):
    name = "popular"
    auto_order = 10
    Params = PopularParams

    def fit(self, log: Interactions, ctx: FitContext, items: ItemFeatures | None = None) -> FitReport:
        self.scores = popularity(log, self.params.half_life_days, self.params.use_weights)
        return self.report

    def score(self, log: Interactions, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores, (len(users), len(self.scores))).copy()

    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"scores": self.scores}, str(Path(directory) / WEIGHTS_FILE))
        (Path(directory) / "popular.json").write_text(json.dumps({"n_items": int(len(self.scores))}))

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], log: Interactions,
             items: ItemFeatures | None = None) -> PopularRecommender:
        from safetensors.numpy import load_file

        model = cls(params)
        model.scores = load_file(str(Path(directory) / WEIGHTS_FILE))["scores"]
        if len(model.scores) != log.n_items:
            raise BundleError(str(directory), f"the popular scores cover {len(model.scores)} items but the "
                              f"interaction log has {log.n_items}", "load the model with the log it was trained on")
        return model
