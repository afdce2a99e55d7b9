"""TreeSHAP for the members made of trees (``explains_trees``, e.g. LightGBM's own exact
``pred_contrib``), from their ``tree_contributions``.

For each row, the contributions of the feature columns plus the expected value sum to the
raw score of the trees: the log-odds (binary), each class's raw score (multiclass), or the
value (regression). They are folded per input column, then rescaled linearly into the unit
of the explained output so that they sum to ``p(x) - p(base)``, where ``p(base)`` is the
probability (or value) at the expected raw score; the raw contributions are kept beside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from takeoff.explain.rows import fold, pick
from takeoff.features.block import Features

RAW_UNITS = {"binary": "log-odds", "multiclass": "raw score (log-odds scale) of the class", "regression": "value"}


@dataclass
class TreeShap:
    """TreeSHAP of some rows for their explained class.

    Attributes:
        raw: per input column, (n, columns), in raw-score units (they sum with ``raw_base``
            to ``raw_score``).
        raw_base: the expected raw score (n,); raw_score: the raw score (n,).
        values: ``raw`` rescaled into the explained output's unit, (n, columns): they sum to
            ``output - base``.
        base: the explained output at the expected raw score (n,); output: at the row (n,).
    """

    raw: np.ndarray
    raw_base: np.ndarray
    raw_score: np.ndarray
    values: np.ndarray
    base: np.ndarray
    output: np.ndarray


def tree_shap(member, X: Features, member_output: np.ndarray, classes: np.ndarray | None,
              columns: Sequence[str]) -> TreeShap:
    """TreeSHAP of every row of ``X`` for its explained class, folded onto ``columns``."""
    kind = member.task.kind
    contrib = member.tree_contributions(X)  # (n, k, d+1)
    n = len(contrib)
    index = classes if kind == "multiclass" else np.zeros(n, dtype=np.int64)
    chosen = contrib[np.arange(n), index]  # (n, d+1)
    raw = fold(chosen[:, :-1], X.sources, columns)
    raw_base = chosen[:, -1]
    raw_score = chosen.sum(axis=1)
    output = pick(member_output, classes)
    if kind == "binary":
        base = 1.0 / (1.0 + np.exp(-raw_base))
        slope = output * (1.0 - output)
    elif kind == "multiclass":
        biases = contrib[:, :, -1]  # (n, k)
        e = np.exp(biases - biases.max(axis=1, keepdims=True))
        base = (e / e.sum(axis=1, keepdims=True))[np.arange(n), index]
        slope = output * (1.0 - output)
    else:
        base, slope = raw_base, np.ones(n)
    change = raw_score - raw_base
    # linear rescaling: output - base spread over the columns in proportion to their raw share;
    # where the raw score barely moved, the local slope of the link does the same job
    safe = np.abs(change) > 1e-9
    scale = np.where(safe, (output - base) / np.where(safe, change, 1.0), slope)
    return TreeShap(raw, raw_base, raw_score, raw * scale[:, None], base, output)


def tree_importance(member, X: Features, classes: np.ndarray | None, columns: Sequence[str]) -> np.ndarray:
    """Global TreeSHAP: the mean absolute raw contribution of each input column."""
    contrib = member.tree_contributions(X)  # (n, k, d+1)
    n = len(contrib)
    index = classes if member.task.kind == "multiclass" else np.zeros(n, dtype=np.int64)
    raw = fold(contrib[np.arange(n), index][:, :-1], X.sources, columns)
    return np.abs(raw).mean(axis=0)
