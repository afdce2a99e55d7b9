"""Permutation importance: how much worse the model gets when one input column is shuffled.

Model-agnostic: it only calls ``model.predict_features``. A column is shuffled whole, every
feature column it made (value, missing indicator, datetime parts, hashed text, category code)
with the same row order, and its raw strings too for the families that read text themselves.
Shuffling features this way equals transforming shuffled input rows, since each feature is
made from one input column of the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from takeoff.explain.rows import Rows, pick
from takeoff.features.block import Features


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

    task, X = model.task, rows.X
    if y is not None:
        metric = PRIMARY_METRIC[task.kind]
        base = score(task, y, rows.output)
    else:
        metric, base = None, pick(rows.output, rows.classes)
    drops = np.zeros((len(columns), repeats))
    n_num = len(X.numeric_names)
    for j, column in enumerate(columns):
        numeric = [i for i, s in enumerate(X.sources[:n_num]) if s == column]
        categorical = [i for i, s in enumerate(X.sources[n_num:]) if s == column]
        if not numeric and not categorical and column not in X.text and column not in X.images:
            continue  # the column made no feature (e.g. a datetime whose parts never varied)
        for r in range(repeats):
            order = rng.permutation(len(rows))
            output = model.predict_features(_shuffled(X, numeric, categorical, column, order))
            if y is not None:
                drops[j, r] = base - score(task, y, output)
            else:
                drops[j, r] = float(np.mean(np.abs(pick(output, rows.classes) - base)))
    unit = UNITS.get(metric, f"drop in {metric}") if metric else "mean absolute change of the output"
    return Permutation(drops.mean(axis=1), drops.std(axis=1), unit, metric)


# score() is higher-is-better (losses negated): a drop of the score is a rise of a loss
UNITS = {"roc_auc": "drop in ROC AUC", "log_loss": "rise in log loss", "rmse": "rise in RMSE"}


def _shuffled(X: Features, numeric: list[int], categorical: list[int], column: str, order: np.ndarray) -> Features:
    """``X`` with one input column's features (and raw text or decoded images) in the row order ``order``."""
    num, cat = X.numeric, X.categorical
    if numeric:
        num = num.copy()
        num[:, numeric] = X.numeric[np.ix_(order, numeric)]
    if categorical:
        cat = cat.copy()
        cat[:, categorical] = X.categorical[np.ix_(order, categorical)]
    text = dict(X.text)
    if column in text:
        text[column] = text[column][order]
    images = dict(X.images)
    if column in images:
        images[column] = images[column][order]
    return replace(X, numeric=num, categorical=cat, text=text, images=images)
