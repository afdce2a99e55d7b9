"""The recommender family contract.

A recommender learns from an :class:`~takeoff.data.interactions.Interactions` log and scores
every item of the catalogue for known users:

* ``fit(log, ctx, items)`` learns from the training log (``items``: optional item features);
* ``score(log, users)`` returns float32 scores (len(users), n_items), higher is better, for
  user codes of ``log`` (always known users: the model layer answers unknown users with
  popularity). ``log`` is the log the model was fitted on, so a family may use each user's
  history (itemknn) or its fitted user factors (als);
* ``similar(items)`` scores every item by its similarity to each of the item codes ``items``
  (len(items), n_items); the default is the cosine of ``item_vectors()``, and None when the
  family has neither (the model layer then uses co-occurrence);
* ``save(dir)`` / ``load(dir, params, log, items)``: JSON + safetensors, never pickle.

One file per family in ``models/`` plus its test, and a line in ``registry.RECOMMENDERS``.
Seen items are filtered by the model layer, not by the family.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from takeoff.data.interactions import Interactions
from takeoff.models.base import FitReport, Params
from takeoff.training.context import FitContext


@dataclass
class ItemFeatures:
    """Features of the catalogue's items, aligned with the log's item codes.

    Attributes:
        categorical: column → per item, a list of tokens (a genre list "Action|Comedy" gives
            two tokens; a missing value gives none).
        text: column → per item, its text ("" when missing).
        columns: the feature table's item column.
    """

    categorical: dict[str, list[list[str]]] = field(default_factory=dict)
    text: dict[str, list[str]] = field(default_factory=dict)
    item_column: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"categorical": self.categorical, "text": self.text, "item_column": self.item_column}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemFeatures:
        return cls(data.get("categorical", {}), data.get("text", {}), data.get("item_column"))

    @property
    def empty(self) -> bool:
        return not self.categorical and not self.text


class Recommender(ABC):
    """One kind of recommender, behind the small interface the trainer, bundle and server use."""

    name: ClassVar[str]
    Params: ClassVar[type[Params]] = Params
    uses_item_features: ClassVar[bool] = False

    def __init__(self, params: Params | dict[str, Any] | None = None):
        if isinstance(params, dict) or params is None:
            params = self.Params(**(params or {}))
        self.params = params
        self.report = FitReport()

    @abstractmethod
    def fit(self, log: Interactions, ctx: FitContext, items: ItemFeatures | None = None) -> FitReport:
        """Learn from ``log``; return before ``ctx.deadline``."""

    @abstractmethod
    def score(self, log: Interactions, users: np.ndarray) -> np.ndarray:
        """float32 scores (len(users), log.n_items) for the user codes ``users`` (all known)."""

    def item_vectors(self) -> np.ndarray | None:
        """One vector per item code, for cosine "similar items"; None if the family has none."""
        return None

    def similar(self, items: np.ndarray) -> np.ndarray | None:
        """float32 similarity (len(items), n_items) of every item to each item code in ``items``."""
        vectors = self.item_vectors()
        if vectors is None:
            return None
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.maximum(norms, 1e-12)
        return (unit[items] @ unit.T).astype(np.float32)

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the fitted model into ``directory`` (JSON + safetensors)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, params: dict[str, Any], log: Interactions,
             items: ItemFeatures | None = None) -> Recommender:
        """Read a model written by :meth:`save`, for the log it was fitted on."""
