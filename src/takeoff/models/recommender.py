"""The recommender family contract.

A recommender learns from an :class:`~takeoff.data.interactions.Interactions` log and scores
every item of the catalogue for known users:

* ``fit(log, ctx, items, users=None)`` learns from the training log (``items``: optional item
  features, given to a family that sets ``uses_item_features``; ``users``: optional user
  features, passed as a keyword only to a family that sets ``uses_user_features``, so families
  without them keep the three-argument signature);
* ``score(log, users)`` returns float32 scores (len(users), n_items), higher is better, for
  user codes of ``log`` (always known users: the model layer answers unknown users with
  popularity). ``log`` is the log the model was fitted on, so a family may use each user's
  history (itemknn) or its fitted user factors (als);
* ``similar(items)`` scores every item by its similarity to each of the item codes ``items``
  (len(items), n_items); the default is the cosine of ``item_vectors()``, and None when the
  family has neither (the model layer then uses co-occurrence);
* ``save(dir)`` / ``load(dir, params, log, items, users=None)``: JSON + safetensors, never
  pickle (``users`` again only for a family with ``uses_user_features``).

Optional abilities, looked up by the model layer: ``embed_users(features, history)`` (vectors of
new users), ``user_vectors(log, users)`` and ``embed_items(features)`` (vectors of new items),
whose dot products are on the scale of ``score``.

One file per family in ``models/`` plus its test: the registry finds it; ``auto_order`` puts it
in what ``auto`` tries.
Seen items are filtered by the model layer, not by the family.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from takeoff.data.interactions import Interactions, id_key
from takeoff.models.base import FitReport, Params
from takeoff.training.context import FitContext


def tokens_of(value: Any) -> list[str]:
    """The categorical tokens of one raw value: a "a|b|c" string gives three, a list gives its
    items, a number its text form (``3.0`` → ``"3"``), a missing value none."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [t for t in (str(v).strip() for v in value if v is not None) if t]
    if isinstance(value, str):
        return [t.strip() for t in value.split("|") if t.strip()]
    return [id_key(value)]


def text_of(value: Any) -> str:
    """The text of one raw value ("" when missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


@dataclass
class _Features:
    """Categorical tokens and text per row (an item or a user code)."""

    categorical: dict[str, list[list[str]]] = field(default_factory=dict)
    text: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.categorical and not self.text

    @property
    def columns(self) -> list[str]:
        """The feature columns, categorical first."""
        return [*self.categorical, *self.text]

    def __len__(self) -> int:
        return max((len(v) for v in (*self.categorical.values(), *self.text.values())), default=0)

    def like(self, columns: dict[str, list[Any]]):
        """Features of new rows read with this object's column kinds: ``columns`` maps a feature
        column to one raw value per row (absent columns give no tokens / empty text)."""
        n = max((len(v) for v in columns.values()), default=0)
        categorical = {c: [tokens_of(v) for v in columns[c]] if c in columns else [[] for _ in range(n)]
                       for c in self.categorical}
        text = {c: [text_of(v) for v in columns[c]] if c in columns else [""] * n for c in self.text}
        return type(self)(categorical, text)

    def vocabulary(self) -> dict[str, set[str]]:
        """Per categorical column, every token it holds."""
        return {c: {t for row in rows for t in row} for c, rows in self.categorical.items()}


@dataclass
class ItemFeatures(_Features):
    """Features of the catalogue's items, aligned with the log's item codes.

    Attributes:
        categorical: column → per item, a list of tokens (a genre list "Action|Comedy" gives
            two tokens; a missing value gives none).
        text: column → per item, its text ("" when missing).
        item_column: the feature table's item column.
    """

    item_column: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"categorical": self.categorical, "text": self.text, "item_column": self.item_column}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemFeatures:
        return cls(data.get("categorical", {}), data.get("text", {}), data.get("item_column"))


@dataclass
class UserFeatures(_Features):
    """Features of users (an age band, a country, a favourite genre, a short bio), aligned with
    the log's user codes (or, for new users, one row per user).

    Attributes:
        categorical: column → per user, a list of tokens ("a|b" gives two; missing gives none).
        text: column → per user, its text ("" when missing).
        user_column: the feature table's user column.

    Example:
        >>> UserFeatures({"country": [["FR"], ["DE"]]}, {"bio": ["horror fan", ""]}, "userId").to_json()["user_column"]
        'userId'
    """

    user_column: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"categorical": self.categorical, "text": self.text, "user_column": self.user_column}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserFeatures:
        return cls(data.get("categorical", {}), data.get("text", {}), data.get("user_column"))


class Recommender(ABC):
    """One kind of recommender, behind the small interface the trainer, bundle and server use."""

    name: ClassVar[str]
    Params: ClassVar[type[Params]] = Params
    uses_item_features: ClassVar[bool] = False
    uses_user_features: ClassVar[bool] = False
    # position in what ``auto`` tries (lowest first); None: only when asked for by name
    auto_order: ClassVar[int | None] = None

    def __init__(self, params: Params | dict[str, Any] | None = None):
        if isinstance(params, dict) or params is None:
            params = self.Params(**(params or {}))
        self.params = params
        self.report = FitReport()

    @abstractmethod
    def fit(self, log: Interactions, ctx: FitContext, items: ItemFeatures | None = None, *,
            users: UserFeatures | None = None) -> FitReport:
        """Learn from ``log``; return before ``ctx.deadline``. ``users`` is passed only to a
        family with ``uses_user_features``."""

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
             items: ItemFeatures | None = None, *, users: UserFeatures | None = None) -> Recommender:
        """Read a model written by :meth:`save`, for the log it was fitted on (``users`` only
        for a family with ``uses_user_features``)."""
