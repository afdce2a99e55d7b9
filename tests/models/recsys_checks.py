"""Hit rate of a recommender family on held-out interactions, for the family tests."""

from __future__ import annotations

import numpy as np

from takeoff.data.interactions import Interactions


def hit_rate(model, train: Interactions, test: Interactions, k: int = 10) -> float:
    """HR@k of each held-out interaction among the items its user has not seen in ``train``."""
    users = test.user_codes.astype(np.int64)
    scores = model.score(train, users).astype(np.float64)
    scores[train.matrix()[users].nonzero()] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([target in row for row, target in zip(top, test.item_codes)]))
