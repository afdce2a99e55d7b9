"""Ranking metrics for recommendation: HR@K, NDCG@K, MAP@K and catalogue coverage.

Each evaluated user has a set of held-out items (leave-last-out gives one) and a ranked list
of the top ``k`` recommendations from items they had not seen in training.

Example:
    >>> ranking_metrics(top, relevant, n_items=9000, k=10)
    {"hr@10": 0.09, "ndcg@10": 0.05, "map@10": 0.04, "coverage@10": 0.12, "users": 671}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Users are grouped by how many training interactions they have, for the report.
ACTIVITY_BUCKETS = ((1, 5), (6, 20), (21, 100), (101, None))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.arange(scores.shape[0])[:, None]
    order = np.lexsort((part, -scores[rows, part]), axis=1)
    return part[rows, order]


def ranking_metrics(top: np.ndarray, relevant: Sequence[set[int]], n_items: int, k: int) -> dict[str, float]:
    """HR@k (share of users with a held-out item in their top k), NDCG@k, MAP@k and coverage@k
    (share of the catalogue that appears in someone's top k).

    Args:
        top: (n_users, >= k) ranked item codes per user (-1 pads lists shorter than k).
        relevant: per user, the held-out item codes.
        n_items: catalogue size.
        k: cut-off.
    """
    top = top[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    hits, ndcgs, aps = [], [], []
    for ranked, truth in zip(top, relevant):
        if not truth:
            continue
        gains = np.array([item in truth for item in ranked], dtype=np.float64)
        hits.append(float(gains.any()))
        ideal = discounts[: min(len(truth), k)].sum()
        ndcgs.append(float((gains * discounts[: len(gains)]).sum() / ideal))
        precision = np.cumsum(gains) / np.arange(1, len(gains) + 1)
        aps.append(float((precision * gains).sum() / min(len(truth), k)))
    shown = np.unique(top[top >= 0])
    n = len(hits)
    return {
        f"hr@{k}": float(np.mean(hits)) if n else 0.0,
        f"ndcg@{k}": float(np.mean(ndcgs)) if n else 0.0,
        f"map@{k}": float(np.mean(aps)) if n else 0.0,
        f"coverage@{k}": float(len(shown) / max(n_items, 1)),
        "users": n,
    }


def by_activity(top: np.ndarray, relevant: Sequence[set[int]], activity: np.ndarray, n_items: int,
                k: int) -> list[dict[str, float | str]]:
    """:func:`ranking_metrics` per bucket of users by training interactions (``activity``)."""
    rows = []
    for low, high in ACTIVITY_BUCKETS:
        mask = (activity >= low) & (activity <= (high if high is not None else np.inf))
        if not mask.any():
            continue
        picked = np.flatnonzero(mask)
        metrics = ranking_metrics(top[picked], [relevant[i] for i in picked], n_items, k)
        rows.append({"bucket": f"{low}–{high}" if high is not None else f"{low}+", **metrics})
    return rows
