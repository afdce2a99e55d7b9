"""Confidence intervals of metrics on held-out predictions: a seeded percentile bootstrap.

The rows are resampled with replacement and every metric recomputed; the interval is the
central ``level`` share of the resampled values. The cost is bounded: at most ``resamples``
resamples, fewer when one metric computation is slow enough that they would take more than
``max_seconds`` (the number used is reported).

Example:
    >>> task = Task("regression", "y")
    >>> out = bootstrap(task, np.arange(50.0), np.arange(50.0) + 1, seed=0)
    >>> out["intervals"]["mae"]
    [1.0, 1.0]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from takeoff.data.schema import Task
from takeoff.evaluation.metrics import compute_metrics

SKIP = {"threshold", "per_class", "per_label"}  # not metrics of the model's quality


def bootstrap(task: Task, y: np.ndarray, pred: np.ndarray, threshold: Any = None, *, seed: int = 0,
              resamples: int = 200, level: float = 0.95, max_seconds: float = 3.0) -> dict[str, Any]:
    """Percentile bootstrap intervals of every scalar metric of ``compute_metrics``.

    Args:
        task, y, pred, threshold: as for :func:`~takeoff.evaluation.metrics.compute_metrics`.
        seed: the resampling seed (default 0): the same inputs give the same intervals.
        resamples: the most resamples drawn (default 200).
        level: the interval's coverage (default 0.95).
        max_seconds: the time the resamples may take, estimated from the first (default 3).

    Returns:
        ``{"level", "resamples", "rows", "intervals": {metric: [low, high]}}``; a metric
        undefined on some resamples (ROC-AUC with one class drawn) is taken over the others.
    """
    y, pred = np.asarray(y), np.asarray(pred)
    n = len(y)
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    started = time.perf_counter()
    drawn = 0
    for i in range(resamples):
        rows = rng.integers(0, n, n)
        try:
            metrics = compute_metrics(task, y[rows], pred[rows], threshold)
        except ValueError:  # a resample the metrics refuse (e.g. no row of a class): skip it
            metrics = {}
        drawn += 1
        for name, value in metrics.items():
            if name not in SKIP and isinstance(value, (int, float)) and np.isfinite(value):
                values.setdefault(name, []).append(float(value))
        if i == 0 and (time.perf_counter() - started) * resamples > max_seconds:
            resamples = max(20, int(max_seconds / max(time.perf_counter() - started, 1e-9)))
        if drawn >= resamples:
            break
    tail = (1 - level) / 2 * 100
    intervals = {name: [round(float(np.percentile(v, tail)), 5), round(float(np.percentile(v, 100 - tail)), 5)]
                 for name, v in values.items() if len(v) >= 10}
    return {"level": level, "resamples": drawn, "rows": int(n), "intervals": intervals}
