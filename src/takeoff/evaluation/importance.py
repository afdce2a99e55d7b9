"""Permutation importance: how much worse a model gets when one input column is shuffled.

Model-agnostic: it only calls a ``predict(features) -> outputs`` function. A column is
shuffled whole, every feature column it made (value, missing indicator, datetime parts,
hashed text, category code) with the same row order, and its raw strings and decoded images
too for the families that read those themselves. Shuffling features this way equals
transforming shuffled input rows, since each feature is made from one input column of the
same row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from takeoff.data.schema import Task
from takeoff.features.block import Features

IMPORTANCE_ROWS = 2000  # rows of the validation split a training run measures importance on...
IMPORTANCE_CELLS = 200_000  # ...fewer on wide tables (one prediction per column), but at least:
IMPORTANCE_MIN_ROWS = 200


def permutation_drops(predict: Callable[[Features], np.ndarray], X: Features, columns: Sequence[str],
                      repeats: int, rng: np.random.Generator,
                      drop: Callable[[np.ndarray], float]) -> np.ndarray:
    """The drop of each of ``columns`` for each shuffle.

    Args:
        predict: the model's outputs for features.
        X: the rows' features.
        columns: the input columns, in the order of the result.
        repeats: shuffles per column.
        rng: the seeded generator drawing the shuffles (one permutation per column and repeat,
            in that order; a column that made no feature draws none and stays 0).
        drop: how much worse the outputs of shuffled rows are than the model's own.

    Returns:
        float64 (len(columns), repeats).
    """
    drops = np.zeros((len(columns), repeats))
    n_num = X.numeric.shape[1]
    for j, column in enumerate(columns):
        numeric = [i for i, s in enumerate(X.sources[:n_num]) if s == column]
        categorical = [i for i, s in enumerate(X.sources[n_num:]) if s == column]
        if not numeric and not categorical and column not in X.text and column not in X.images:
            continue  # the column made no feature (e.g. a datetime whose parts never varied)
        for r in range(repeats):
            order = rng.permutation(len(X))
            drops[j, r] = drop(predict(shuffled(X, numeric, categorical, column, order)))
    return drops


def shuffled(X: Features, numeric: list[int], categorical: list[int], column: str, order: np.ndarray) -> Features:
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


def validation_importance(predict: Callable[[Features], np.ndarray], task: Task, X: Features, y: np.ndarray,
                          seed: int, max_rows: int = IMPORTANCE_ROWS, seconds: float | None = None) -> dict[str, float]:
    """Drop in the task's score when one input column is shuffled, on a seeded sample of at
    most ``max_rows`` labelled rows (fewer on a wide table: rows × input columns stay under
    :data:`IMPORTANCE_CELLS`, with at least :data:`IMPORTANCE_MIN_ROWS`); one shuffle per
    column, most important first.

    With ``seconds``, the sample shrinks (to no fewer than :data:`IMPORTANCE_MIN_ROWS` rows) so
    that one prediction per column fits that time, as measured on the first prediction; if even
    that would take more than twice the time, nothing is measured (an empty dict).
    """
    import time

    from takeoff.evaluation.metrics import score

    n_columns = len(dict.fromkeys(X.sources)) + len(X.images)
    max_rows = min(max_rows, max(IMPORTANCE_MIN_ROWS, IMPORTANCE_CELLS // max(n_columns, 1)))
    rng = np.random.default_rng(seed)
    index = np.sort(rng.permutation(len(X))[:max_rows])
    X, y = X.take(index), y[index]
    started = time.monotonic()
    base_pred = predict(X)
    per_row = (time.monotonic() - started) / max(len(X), 1)
    if seconds is not None and per_row * len(X) * n_columns > seconds:
        rows = int(seconds / max(per_row * n_columns, 1e-9))
        if rows < IMPORTANCE_MIN_ROWS and per_row * min(len(X), IMPORTANCE_MIN_ROWS) * n_columns > 2 * seconds:
            return {}
        keep = np.sort(rng.permutation(len(X))[:max(rows, IMPORTANCE_MIN_ROWS)])
        X, y, base_pred = X.take(keep), y[keep], base_pred[keep]
    base = score(task, y, base_pred)
    columns = [*dict.fromkeys(X.sources), *X.images]
    drops = permutation_drops(predict, X, columns, 1, rng, lambda output: base - score(task, y, output))
    out = {column: float(d) for column, d in zip(columns, drops[:, 0])}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
