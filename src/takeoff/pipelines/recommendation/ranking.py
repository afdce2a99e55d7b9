"""What a recommender answers: ranked items with notes, and the top items of many users at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from takeoff.data.interactions import Interactions
from takeoff.evaluation.ranking import top_k
from takeoff.models.recommender import Recommender


@dataclass
class Recommendations:
    """Ranked items for one user (or like one item), with notes on how they were chosen."""

    items: list[Any]
    scores: list[float]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"items": [{"item": i, "score": s} for i, s in zip(self.items, self.scores)], "notes": self.notes}

    def __len__(self) -> int:
        return len(self.items)


def recommend_top(family: Recommender, log_: Interactions, users: np.ndarray, k: int, exclude_seen: bool,
                  batch: int = 1024) -> np.ndarray:
    """Top-``k`` item codes per user code (-1 pads when fewer items are left)."""
    seen = log_.matrix().tocsr() if exclude_seen else None
    out = np.full((len(users), min(k, log_.n_items)), -1, dtype=np.int64)
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        scores = family.score(log_, chunk).astype(np.float64, copy=True)
        if seen is not None:
            rows = seen[chunk]
            scores[np.repeat(np.arange(len(chunk)), np.diff(rows.indptr)), rows.indices] = -np.inf
        top = top_k(scores, k)
        top[~np.isfinite(np.take_along_axis(scores, top, axis=1))] = -1
        out[start:start + len(chunk), : top.shape[1]] = top
    return out
