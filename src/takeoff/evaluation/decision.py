"""The decision rule tuned for the user's metric: which predicted probabilities become which
label.

A probability model is chosen and blended on a proper score; the *decision* is then tuned on
out-of-fold (or validation) predictions for the metric the user asked for. For binary tasks
that is one threshold (:func:`takeoff.evaluation.metrics.tune_threshold`); for multiclass, one
weight per class, the predicted class being the largest ``probability × weight``: the class
shares to a tuned power, so that a small class is predicted where plain argmax never would,
which is what macro-F1 or balanced accuracy reward.
"""

from __future__ import annotations

import numpy as np

from takeoff.data.schema import Task
from takeoff.evaluation.metrics import THRESHOLD_METRICS, score, tune_threshold

# metrics computed from predicted labels: the decision rule is tuned for them
DECISION_METRICS = frozenset(THRESHOLD_METRICS)

_PRIOR_POWERS = (0.0, 0.25, 0.5, 0.75, 1.0)


def is_decision_metric(metric: str) -> bool:
    """Whether ``metric`` scores predicted labels (so the decision rule is tuned for it)."""
    return metric in DECISION_METRICS


def tune_decision(task: Task, y: np.ndarray, pred: np.ndarray, metric: str, binary_metric: str = "macro_f1"):
    """The decision rule for ``task`` that maximises ``metric`` on ``(y, pred)``.

    Args:
        task: binary or multiclass (other kinds get None).
        y: true class codes.
        pred: probabilities (n, n_classes).
        metric: the run's metric. For a binary task a metric that is not a decision metric
            (e.g. roc_auc) leaves the threshold to ``binary_metric``.
        binary_metric: the threshold's metric when ``metric`` does not score labels.

    Returns:
        binary: the threshold (float); multiclass: a list of class weights, or None where
        the plain most-probable class is as good.
    """
    if task.kind == "binary":
        return tune_threshold(y, pred[:, 1], metric if is_decision_metric(metric) else binary_metric)
    if task.kind == "multiclass" and is_decision_metric(metric):
        return tune_class_weights(task, y, pred, metric)
    return None


def tune_class_weights(task: Task, y: np.ndarray, proba: np.ndarray, metric: str) -> list[float] | None:
    """Per-class weights ``prior ** -a`` on the probabilities, with ``a`` the value of
    :data:`_PRIOR_POWERS` (0: plain argmax ... 1: divide by the class share) that maximises
    ``metric`` on ``(y, proba)``. One number is tuned, not one per class: per-class weights
    tuned freely fit the noise of a few hundred rows (measured: they lost macro-F1 on held-out
    rows where the one-number rule gained). Weights are scaled so that the largest is 1.

    Returns:
        The weights, or None when plain argmax scores best (nothing to tune).
    """
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    k = proba.shape[1]
    best_w, best = None, score(task, y, proba, metric)
    for w in prior_corrections(y, k):
        v = score(task, y, proba * w, metric)
        if v > best + 1e-12:
            best_w, best = w, v
    return None if best_w is None else [float(x) for x in best_w / best_w.max()]


def prior_corrections(y: np.ndarray, k: int) -> list[np.ndarray]:
    """Class weights ``prior ** -a`` for each ``a > 0`` of :data:`_PRIOR_POWERS` (rarer classes
    weigh more)."""
    prior = np.bincount(y, minlength=k).astype(np.float64) + 1.0
    prior /= prior.sum()
    return [prior ** -a for a in _PRIOR_POWERS if a > 0]


def decided_score(task: Task, y: np.ndarray, pred: np.ndarray, metric: str) -> float:
    """``metric`` of ``pred`` (higher is better) as a candidate will be judged once its decision
    is tuned: for a decision metric the threshold (binary) or the best prior correction
    (multiclass) is applied first, so that models are compared at their best decision and not
    at 0.5 or argmax. Other metrics are :func:`~takeoff.evaluation.metrics.score`."""
    if not is_decision_metric(metric) or task.kind not in ("binary", "multiclass"):
        return score(task, y, pred, metric)
    if task.kind == "binary":
        t = tune_threshold(y, pred[:, 1], metric)
        return score(task, y, np.column_stack([1.0 - (pred[:, 1] >= t), pred[:, 1] >= t]).astype(np.float64), metric)
    k = pred.shape[1]
    return max(score(task, y, pred * w, metric) for w in [np.ones(k), *prior_corrections(y, k)[1::2]])

