"""Permutation importance of a model on the rows being explained: the drop of the task's
primary metric when one input column is shuffled (with labels), or the mean change of the
explained output (without). The shuffling is :mod:`takeoff.evaluation.importance`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from takeoff.evaluation.importance import permutation_drops
from takeoff.explain.rows import Rows, pick


@dataclass
class Permutation:
    """Importance per input column: the mean and standard deviation over the repeats."""

    mean: np.ndarray
    std: np.ndarray
    unit: str
    metric: str | None


def permutation_importance(model, rows: Rows, columns: Sequence[str], y: np.ndarray | None,
                           repeats: int, rng: np.random.Generator) -> Permutation:
    """Permutation importance of each of ``columns`` on ``rows``.

    Args:
        model: the :class:`~takeoff.Model`.
        rows: the rows (a seeded sample of the data).
        columns: the input columns, in the order of the result.
        y: the rows' encoded target, or None. With it, importance is the drop of the task's
            primary metric (higher-is-better score, so positive = the column helps); without,
            the mean absolute change of the explained output.
        repeats: shuffles per column, averaged.
        rng: the seeded generator drawing the shuffles.
    """
    from takeoff.evaluation.metrics import PRIMARY_METRIC, score

    task = model.task
    if y is not None:
        metric = PRIMARY_METRIC[task.kind]
        base = score(task, y, rows.output)

        def drop(output: np.ndarray) -> float:
            return base - score(task, y, output)
    else:
        metric, base = None, pick(rows.output, rows.classes)

        def drop(output: np.ndarray) -> float:
            return float(np.mean(np.abs(pick(output, rows.classes) - base)))

    drops = permutation_drops(model.predict_features, rows.X, columns, repeats, rng, drop)
    unit = UNITS.get(metric, f"drop in {metric}") if metric else "mean absolute change of the output"
    return Permutation(drops.mean(axis=1), drops.std(axis=1), unit, metric)


# score() is higher-is-better (losses negated): a drop of the score is a rise of a loss
UNITS = {"roc_auc": "drop in ROC AUC", "log_loss": "rise in log loss", "rmse": "rise in RMSE"}
