"""Metrics per task, a higher-is-better score for model selection, and threshold tuning.

Inputs follow the family contract (:mod:`takeoff.models.base`): ``y`` holds class codes
(classification) or float values (regression); ``pred`` holds probabilities of shape
(n_rows, n_classes) with columns in ``task.classes`` order, or values of shape (n_rows,).

Counting metrics (accuracy, precision, recall, F1) come from one confusion matrix built with
``np.bincount``, which is exact, fast on millions of rows, and cannot be confused by a class
that is missing from ``y``. Ranking metrics (ROC AUC, average precision) use scikit-learn.
Metrics that are undefined on the given ``y`` (ROC AUC with a single class present, R² of a
constant target) are left out of the result rather than raised or reported as NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from takeoff.data.stats import roc_auc
from takeoff.data.schema import TASKS, Task
from takeoff.errors import DataError, UnknownNameError

PRIMARY_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "multilabel": "log_loss", "regression": "rmse"}

# Which metrics each task reports (and ``score`` accepts), and which way is better.
TASK_METRICS = {
    "binary": ("roc_auc", "pr_auc", "accuracy", "balanced_accuracy", "f1", "macro_f1",
               "log_loss", "brier"),
    "multiclass": ("log_loss", "accuracy", "balanced_accuracy", "macro_f1", "roc_auc"),
    # multilabel: log_loss is the mean binary cross-entropy over labels; F1s at the thresholds
    "multilabel": ("log_loss", "micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "roc_auc", "pr_auc"),
    "regression": ("rmse", "mae", "mape", "r2"),
}
_LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "mape", "hamming_loss"})
_HIGHER_IS_BETTER = frozenset({"roc_auc", "pr_auc", "accuracy", "balanced_accuracy", "f1",
                               "macro_f1", "micro_f1", "subset_accuracy", "r2"})
THRESHOLD_METRICS = ("macro_f1", "f1", "accuracy", "balanced_accuracy")

DEFAULT_THRESHOLD = 0.5
PROBA_EPS = 1e-15  # probabilities are clipped to [eps, 1] so log loss stays finite
_N_QUANTILES = 100  # tune_threshold: quantile cut points (plus midpoints: at most ~200)


def greater_is_better(metric: str) -> bool:
    """Tell whether a larger value of ``metric`` means a better model.

    Args:
        metric: a metric name, e.g. "roc_auc" (True) or "log_loss" (False).

    Returns:
        True for scores (AUC, accuracy, F1, R²), False for losses (log loss, Brier, RMSE, MAE).

    Raises:
        UnknownNameError: ``metric`` is not a metric takeoff computes.

    Example:
        >>> greater_is_better("rmse")
        False
    """
    if metric in _HIGHER_IS_BETTER:
        return True
    if metric in _LOWER_IS_BETTER:
        return False
    raise UnknownNameError("metric", metric, sorted(_HIGHER_IS_BETTER | _LOWER_IS_BETTER))


def compute_metrics(
    task: Task, y: np.ndarray, pred: np.ndarray, threshold: float | None = None
) -> dict[str, Any]:
    """Compute the full set of metrics for ``task`` as JSON-ready Python numbers.

    Args:
        task: the task; ``task.kind`` picks the metrics, ``task.classes`` names the classes.
        y: true class codes (int, shape (n,)) or true values (float, shape (n,)).
        pred: probabilities (n, n_classes), columns in ``task.classes`` order; for binary a
            1-D array of positive-class probabilities is accepted too. Values (n,) for
            regression.
        threshold: the decision rule the counting metrics (accuracy, F1...) use. Binary: the
            positive-class probability at or above which a row is predicted positive (default
            0.5). Multiclass: None (most probable class) or one weight per class (the largest
            weighted probability wins). Multilabel: one threshold per label.

    Returns:
        binary: ``roc_auc``, ``pr_auc``, ``accuracy``, ``balanced_accuracy``, ``f1`` (positive
        class), ``macro_f1``, ``log_loss``, ``brier``, ``threshold``. multiclass:
        ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``log_loss``, ``roc_auc`` (macro
        one-vs-rest, only when every class is present in ``y``) and ``per_class``:
        ``{str(label): {"precision", "recall", "f1", "support"}}``. regression: ``rmse``,
        ``mae``, ``r2``. Metrics undefined on this ``y`` (ROC/PR AUC with one class present,
        R² of a constant ``y``) are omitted. All values are plain Python floats (``support``
        is an int). Macro F1 averages over the classes present in ``y`` or in the predictions.

    Raises:
        DataError: shapes disagree, there are no rows, codes are out of range, or values are
            not finite.

    Example:
        >>> task = Task("binary", "churn", ["no", "yes"])
        >>> m = compute_metrics(task, np.array([0, 1]), np.array([[0.8, 0.2], [0.3, 0.7]]))
        >>> m["accuracy"], m["roc_auc"]
        (1.0, 1.0)
    """
    if task.kind == "multilabel":
        return _multilabel_metrics(task, *_validate_multilabel(task, y, pred), threshold)
    y, pred = _validate(task, y, pred)
    if task.kind == "regression":
        return _regression_metrics(y, pred)
    proba = _normalised(pred)
    k = len(task.classes)
    out: dict[str, Any] = {}
    if task.kind == "binary":
        t = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        p_pos = pred[:, 1]
        for name in ("roc_auc", "pr_auc"):
            value = _ranking_metric(name, y, p_pos)
            if value is not None:
                out[name] = value
        cm = _confusion(y, (p_pos >= t).astype(np.int64), 2)
        counts = _class_counts(cm)
        out["accuracy"] = counts["accuracy"]
        out["balanced_accuracy"] = counts["balanced_accuracy"]
        out["f1"] = float(counts["f1"][1])
        out["macro_f1"] = counts["macro_f1"]
        out["log_loss"] = _log_loss(y, proba)
        out["brier"] = float(np.mean((p_pos - y) ** 2))
        out["threshold"] = t
        return out
    cm = _confusion(y, _weighted_argmax(pred, threshold), k)
    counts = _class_counts(cm)
    out["accuracy"] = counts["accuracy"]
    out["balanced_accuracy"] = counts["balanced_accuracy"]
    out["macro_f1"] = counts["macro_f1"]
    out["log_loss"] = _log_loss(y, proba)
    auc = _multiclass_auc(y, proba, k)
    if auc is not None:
        out["roc_auc"] = auc
    out["per_class"] = {
        str(label): {
            "precision": float(counts["precision"][i]),
            "recall": float(counts["recall"][i]),
            "f1": float(counts["f1"][i]),
            "support": int(counts["support"][i]),
        }
        for i, label in enumerate(task.classes)
    }
    return out


def score(task: Task, y: np.ndarray, pred: np.ndarray, metric: str | None = None) -> float:
    """One number for model selection where HIGHER IS ALWAYS BETTER (losses are negated).

    Cheaper than :func:`compute_metrics`: only ``metric`` is computed. Binary accuracy and F1
    use the 0.5 threshold.

    Args:
        task: the task.
        y: true class codes or values, shape (n,).
        pred: probabilities (n, n_classes) or values (n,), as for :func:`compute_metrics`.
        metric: one of ``TASK_METRICS[task.kind]``. Default: ``PRIMARY_METRIC[task.kind]``.

    Returns:
        The metric, negated when lower is better (so ``-log_loss``, ``-rmse``). When the metric
        is undefined on this ``y`` (ROC AUC / PR AUC with one class present, R² of a constant
        ``y``), the negated log loss (classification) or negated RMSE (regression) is returned
        instead, so that candidates scored on the same ``y`` stay comparable.

    Raises:
        UnknownNameError: ``metric`` does not apply to this task.
        DataError: as :func:`compute_metrics`.

    Example:
        >>> task = Task("regression", "price")
        >>> score(task, np.array([1.0, 2.0]), np.array([1.0, 4.0]))  # -rmse
        -1.4142135623730951
    """
    kind = _check_kind(task)
    metric = PRIMARY_METRIC[kind] if metric is None else metric
    if metric not in TASK_METRICS[kind]:
        raise UnknownNameError(f"metric for a {kind} task", metric, list(TASK_METRICS[kind]))
    if kind == "multilabel":
        y, pred = _validate_multilabel(task, y, pred)
        value = _multilabel_metrics(task, y, pred, None, only=metric).get(metric)
        if value is None:
            metric, value = "log_loss", _multilabel_log_loss(y, pred)
        return float(value) if greater_is_better(metric) else -float(value)
    y, pred = _validate(task, y, pred)
    value = _single_metric(task, y, pred, metric)
    if value is None:  # undefined on this y: fall back to the task's proper scoring rule
        metric = "rmse" if kind == "regression" else "log_loss"
        value = _single_metric(task, y, pred, metric)
    return float(value) if greater_is_better(metric) else -float(value)


def tune_threshold(y: np.ndarray, p_pos: np.ndarray, metric: str = "macro_f1") -> float:
    """Find the positive-class probability threshold that maximises ``metric`` on ``(y, p_pos)``.

    Candidates are the midpoints between consecutive distinct quantiles of ``p_pos`` (about
    100 of them, so a clean gap between the classes is found and a threshold never sits on an
    observed score), the smallest score and 0.5; every candidate is scored at once from one
    sort of ``p_pos`` (fast on millions of rows). A row is positive when
    ``p_pos >= threshold``. Ties go to the candidate closest to 0.5.

    Args:
        y: true binary codes (0/1), shape (n,).
        p_pos: predicted probability of the positive class (code 1), shape (n,).
        metric: "macro_f1" (default), "f1" (positive class), "accuracy" or
            "balanced_accuracy".

    Returns:
        The threshold, a Python float. 0.5 when ``y`` holds a single class (nothing to tune).

    Raises:
        UnknownNameError: ``metric`` is not one of the four above.
        DataError: lengths differ, ``y`` is not 0/1, there are no rows, or ``p_pos`` is not
            finite.

    Example:
        >>> tune_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.4, 0.9]))
        0.35
    """
    if metric not in THRESHOLD_METRICS:
        raise UnknownNameError("threshold metric", metric, list(THRESHOLD_METRICS))
    y, p = _validate(Task("binary", "target", [0, 1]), y, p_pos)
    p = p[:, 1]
    n_pos = int(y.sum())
    if n_pos in (0, len(y)):
        return DEFAULT_THRESHOLD

    order = np.argsort(p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    levels = np.unique(np.quantile(p_sorted, np.linspace(0, 1, _N_QUANTILES + 1),
                                   method="inverted_cdf"))
    # Cut between observed scores (never on one), plus "all positive" and the default 0.5.
    candidates = np.unique(np.concatenate(
        [levels[:1], (levels[:-1] + levels[1:]) / 2, [DEFAULT_THRESHOLD]]))
    # Rows at index >= first are predicted positive: counts for every candidate at once.
    first = np.searchsorted(p_sorted, candidates, side="left")
    pos_below = np.concatenate([[0], np.cumsum(y_sorted)])[first]
    n = len(y)
    tp = n_pos - pos_below
    fp = (n - first) - tp
    fn = n_pos - tp
    tn = (n - n_pos) - fp
    values = _threshold_metric(metric, tp, fp, fn, tn)
    best = values.max()
    tied = np.flatnonzero(values >= best - 1e-12)
    return float(candidates[tied[np.argmin(np.abs(candidates[tied] - DEFAULT_THRESHOLD))]])


def predicted_codes(task: Task, pred: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Turn probabilities into class codes.

    Args:
        task: the task (binary or multiclass).
        pred: probabilities (n, n_classes) in ``task.classes`` order; for binary a 1-D array
            of positive-class probabilities is accepted too.
        threshold: the decision rule. Binary: rows with positive-class probability
            ``>= threshold`` get code 1 (default 0.5). Multiclass: None (the most probable
            class) or one weight per class, the code being that of the largest weighted
            probability (weights tuned for a metric, :func:`takeoff.evaluation.decision.tune_class_weights`).

    Returns:
        int64 codes, shape (n,): ``task.classes[code]`` is the predicted label.

    Raises:
        DataError: the task is regression, or ``pred`` has the wrong shape.

    Example:
        >>> predicted_codes(Task("binary", "t", ["no", "yes"]), np.array([0.2, 0.6]))
        array([0, 1])
    """
    kind = _check_kind(task)
    if kind == "regression":
        raise DataError("predicted_codes needs a classification task; this task is regression.")
    if kind == "multilabel":
        _, pred = _validate_multilabel(task, np.zeros((len(pred), len(task.classes)), np.int64), pred)
        return (pred >= _label_thresholds(task, threshold)).astype(np.int64)
    pred = _as_proba(task, np.asarray(pred, dtype=np.float64))
    if kind == "binary":
        t = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        return (pred[:, 1] >= t).astype(np.int64)
    return _weighted_argmax(pred, threshold)


def _weighted_argmax(proba: np.ndarray, weights) -> np.ndarray:
    """The multiclass decision: the most probable class, or the largest ``proba * weights``."""
    if weights is None:
        return np.argmax(proba, axis=1).astype(np.int64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (proba.shape[1],):
        raise DataError(f"a multiclass decision needs one weight per class ({proba.shape[1]}); received {w.shape}.")
    return np.argmax(proba * w, axis=1).astype(np.int64)


MIN_LABEL_POSITIVES = 10  # fewer validation rows with a label: it shares the common threshold


def tune_label_thresholds(y: np.ndarray, pred: np.ndarray, metric: str = "f1") -> list[float]:
    """One threshold per label of a multilabel task.

    A label with at least ``MIN_LABEL_POSITIVES`` rows with it and as many without in ``y``
    gets the threshold that maximises its own ``metric`` (default its F1, with
    :func:`tune_threshold`); a rarer one gets the common threshold that maximises ``metric``
    over every (row, label) decision at once (micro F1), since a few positives make a label's
    own optimum noise.

    Example:
        >>> y = np.array([[0, 1], [1, 1], [1, 0]])
        >>> tune_label_thresholds(y, np.array([[0.1, 0.9], [0.7, 0.6], [0.6, 0.2]]))
        [0.5, 0.5]
    """
    y, pred = np.asarray(y), np.asarray(pred, dtype=np.float64)
    if y.ndim != 2 or pred.shape != y.shape:
        raise DataError(f"y and the predictions must both have shape (n_rows, n_labels); received {y.shape} and {pred.shape}.")
    common = tune_threshold(y.ravel(), pred.ravel(), metric)
    out = []
    for k in range(y.shape[1]):
        n_pos = int(y[:, k].sum())
        enough = n_pos >= MIN_LABEL_POSITIVES and len(y) - n_pos >= MIN_LABEL_POSITIVES
        out.append(tune_threshold(y[:, k], pred[:, k], metric) if enough else common)
    return out


# --- internals ------------------------------------------------------------------------------


def _validate_multilabel(task: Task, y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, K) 0/1 targets and (n, K) finite probabilities for a multilabel task."""
    k = len(task.classes)
    y, pred = np.asarray(y), np.asarray(pred, dtype=np.float64)
    if pred.ndim != 2 or pred.shape[1] != k:
        raise DataError(
            f"predictions for a multilabel task with {k} labels must have shape (n_rows, {k}), one probability per "
            f"label in task.classes order; received shape {pred.shape}."
        )
    if y.ndim != 2 or y.shape[1] != k:
        raise DataError(f"y of a multilabel task must be a 0/1 matrix (n_rows, {k}); received shape {y.shape}. "
                        "Fix: encode label sets with task.encode().")
    if len(y) == 0:
        raise DataError("no rows to evaluate: y is empty. Fix: evaluate on a non-empty set.")
    if len(pred) != len(y):
        raise DataError(f"y has {len(y)} rows but the predictions have {len(pred)}; they must match row for row.")
    if not np.isfinite(pred).all():
        raise DataError(f"{int((~np.isfinite(pred)).sum())} prediction value(s) are NaN or infinite; metrics need "
                        "finite predictions. Fix: check the model's inputs and training.")
    if not np.isin(y, (0, 1)).all():
        raise DataError("y of a multilabel task must hold only 0 and 1. Fix: encode label sets with task.encode().")
    return y.astype(np.int64), pred


def _label_thresholds(task: Task, threshold) -> np.ndarray:
    k = len(task.classes)
    if threshold is None:
        return np.full(k, DEFAULT_THRESHOLD)
    t = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (k,)) if np.ndim(threshold) == 0 else np.asarray(threshold, dtype=np.float64)
    if t.shape != (k,):
        raise DataError(f"a multilabel task with {k} labels needs {k} thresholds; received {t.shape[0]}.")
    return t


def _multilabel_log_loss(y: np.ndarray, pred: np.ndarray) -> float:
    p = np.clip(pred, PROBA_EPS, 1 - PROBA_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _multilabel_metrics(task: Task, y: np.ndarray, pred: np.ndarray, threshold, only: str | None = None) -> dict[str, Any]:
    """Micro/macro F1, subset accuracy, Hamming loss, macro ROC/PR AUC over the labels both
    present and absent in ``y``, log loss, and per label precision/recall/F1/support/threshold."""
    t = _label_thresholds(task, threshold)
    if only == "log_loss":
        return {"log_loss": _multilabel_log_loss(y, pred)}
    hit = (pred >= t).astype(np.int64)
    tp = (hit * y).sum(axis=0).astype(np.float64)
    fp = (hit * (1 - y)).sum(axis=0).astype(np.float64)
    fn = ((1 - hit) * y).sum(axis=0).astype(np.float64)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    counted = (tp + fp + fn) > 0  # labels present in y or predicted somewhere
    out: dict[str, Any] = {
        "micro_f1": float(_safe_div(np.array([2 * tp.sum()]), np.array([2 * tp.sum() + fp.sum() + fn.sum()]))[0]),
        "macro_f1": float(f1[counted].mean()) if counted.any() else 0.0,
        "subset_accuracy": float((hit == y).all(axis=1).mean()),
        "hamming_loss": float((hit != y).mean()),
        "log_loss": _multilabel_log_loss(y, pred),
    }
    both = [k for k in range(y.shape[1]) if 0 < y[:, k].sum() < len(y)]
    if both:
        for name in ("roc_auc", "pr_auc"):
            if only is None or only == name:
                out[name] = float(np.mean([_ranking_metric(name, y[:, k], pred[:, k]) for k in both]))
    if only is None:
        out["thresholds"] = {str(label): float(t[k]) for k, label in enumerate(task.classes)}
        out["per_label"] = {
            str(label): {
                "precision": float(_safe_div(tp[k:k + 1], tp[k:k + 1] + fp[k:k + 1])[0]),
                "recall": float(_safe_div(tp[k:k + 1], tp[k:k + 1] + fn[k:k + 1])[0]),
                "f1": float(f1[k]),
                "support": int(y[:, k].sum()),
                "threshold": float(t[k]),
            }
            for k, label in enumerate(task.classes)
        }
    return out


def _check_kind(task: Task) -> str:
    if task.kind not in TASKS:
        raise UnknownNameError("task", task.kind, list(TASKS))
    return task.kind


def _as_proba(task: Task, pred: np.ndarray) -> np.ndarray:
    """Probabilities as (n, n_classes); a binary 1-D positive-class vector is expanded."""
    k = len(task.classes)
    if task.kind == "binary" and pred.ndim == 1:
        return np.column_stack([1.0 - pred, pred])
    if pred.ndim != 2 or pred.shape[1] != k:
        raise DataError(
            f"predictions for a {task.kind} task with {k} classes must have shape (n_rows, {k}); "
            f"received shape {pred.shape}. Fix: pass the family's predict() output, one "
            "probability column per class in task.classes order."
        )
    return pred


def _validate(task: Task, y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes and values once; return (y, pred) as float/int arrays of the right shape."""
    kind = _check_kind(task)
    y = np.asarray(y)
    pred = np.asarray(pred, dtype=np.float64)
    if kind == "regression" and pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if y.ndim != 1:
        raise DataError(f"y must be 1-D (one value per row); received shape {y.shape}.")
    if len(y) == 0:
        raise DataError("no rows to evaluate: y is empty. Fix: evaluate on a non-empty set.")
    if len(pred) != len(y):
        raise DataError(
            f"y has {len(y)} rows but the predictions have {len(pred)}; they must match row "
            "for row."
        )
    bad = int((~np.isfinite(pred)).sum())
    if bad:
        raise DataError(
            f"{bad} prediction value(s) are NaN or infinite; metrics need finite predictions. "
            "Fix: check the model's inputs and training (a diverged fit predicts NaN)."
        )
    if kind == "regression":
        if pred.ndim != 1:
            raise DataError(
                f"regression predictions must have shape (n_rows,); received {pred.shape}."
            )
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise DataError(
                f"{int((~np.isfinite(y)).sum())} target value(s) are NaN or infinite. Fix: drop "
                "rows with a missing target before evaluating."
            )
        return y, pred
    pred = _as_proba(task, pred)
    k = len(task.classes)
    if not np.issubdtype(y.dtype, np.integer):
        as_float = y.astype(np.float64)
        if not (np.isfinite(as_float).all() and (as_float == np.round(as_float)).all()):
            raise DataError(
                "y must hold class codes (0 .. n_classes-1) for a classification task; received "
                f"non-integer values of dtype {y.dtype}. Fix: encode labels with task.encode()."
            )
        y = as_float.astype(np.int64)
    y = y.astype(np.int64, copy=False)
    if y.min() < 0 or y.max() >= k:
        raise DataError(
            f"y holds class codes outside 0..{k - 1} (min {y.min()}, max {y.max()}); the task "
            f"has {k} classes: {task.classes}. Fix: encode labels with task.encode()."
        )
    return y, pred


def _normalised(pred: np.ndarray) -> np.ndarray:
    """Clip probabilities to [eps, 1] and renormalise rows to sum to 1."""
    clipped = np.clip(pred, PROBA_EPS, 1.0)
    return clipped / clipped.sum(axis=1, keepdims=True)


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    return float(-np.mean(np.log(proba[np.arange(len(y)), y])))


def _confusion(y: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Confusion counts, shape (k, k): rows are true codes, columns predicted codes."""
    return np.bincount(y * k + codes, minlength=k * k).reshape(k, k)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _class_counts(cm: np.ndarray) -> dict[str, Any]:
    """Per-class precision/recall/F1/support and the summary scores from a confusion matrix."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, support + predicted)
    seen = (support > 0) | (predicted > 0)  # as scikit-learn: classes in y or predictions
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "accuracy": float(tp.sum() / cm.sum()),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "macro_f1": float(f1[seen].mean()),
    }


def _ranking_metric(name: str, y: np.ndarray, p_pos: np.ndarray) -> float | None:
    """Binary ROC AUC or average precision; None when y holds a single class."""
    if y.min() == y.max():
        return None
    positive = np.asarray(y) == 1
    return roc_auc(positive, p_pos) if name == "roc_auc" else _average_precision(positive, np.asarray(p_pos))


def _multiclass_auc(y: np.ndarray, proba: np.ndarray, k: int) -> float | None:
    """Macro one-vs-rest ROC AUC; None unless every class is present in y."""
    if len(np.unique(y)) < k:
        return None
    if k == 2:
        return roc_auc(y == 1, proba[:, 1])
    return float(np.mean([roc_auc(y == c, proba[:, c]) for c in range(k)]))  # one-vs-rest, unweighted


def _average_precision(positive: np.ndarray, scores: np.ndarray) -> float:
    """Average precision as scikit-learn defines it (the precision at each distinct threshold,
    weighted by the recall it adds), with NumPy alone: a ``takeoff[lite]`` install evaluates
    without scikit-learn (ROC-AUC likewise, :func:`~takeoff.data.stats.roc_auc`)."""
    order = np.argsort(-scores, kind="mergesort")
    scores, hits = scores[order], positive[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # the end of each run of tied scores
    tp = np.cumsum(hits)[last]
    precision = tp / (last + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    err = pred - y
    out = {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
    mape = _mape(y, err)
    if mape is not None:
        out["mape"] = mape
    r2 = _r2(y, err)
    if r2 is not None:
        out["r2"] = r2
    return out


def _mape(y: np.ndarray, err: np.ndarray) -> float | None:
    """Mean absolute percentage error (a share: 0.1 is 10%) over the rows whose target is not 0."""
    nonzero = y != 0
    if not nonzero.any():
        return None
    return float(np.mean(np.abs(err[nonzero]) / np.abs(y[nonzero])))


def _r2(y: np.ndarray, err: np.ndarray) -> float | None:
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0.0:
        return None  # constant y: R² is undefined
    return float(1.0 - np.sum(err**2) / total)


def _single_metric(task: Task, y: np.ndarray, pred: np.ndarray, metric: str) -> float | None:
    """One metric on validated inputs; None when it is undefined on this y."""
    if task.kind == "regression":
        err = pred - y
        if metric == "rmse":
            return float(np.sqrt(np.mean(err**2)))
        if metric == "mae":
            return float(np.mean(np.abs(err)))
        if metric == "mape":
            return _mape(y, err)
        return _r2(y, err)
    if metric == "log_loss":
        return _log_loss(y, _normalised(pred))
    if task.kind == "binary":
        p_pos = pred[:, 1]
        if metric in ("roc_auc", "pr_auc"):
            return _ranking_metric(metric, y, p_pos)
        if metric == "brier":
            return float(np.mean((p_pos - y) ** 2))
        counts = _class_counts(_confusion(y, (p_pos >= DEFAULT_THRESHOLD).astype(np.int64), 2))
        return float(counts["f1"][1]) if metric == "f1" else counts[metric]
    if metric == "roc_auc":
        return _multiclass_auc(y, _normalised(pred), len(task.classes))
    return _class_counts(_confusion(y, np.argmax(pred, axis=1), len(task.classes)))[metric]


def _threshold_metric(metric: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray,
                      tn: np.ndarray) -> np.ndarray:
    """A metric for arrays of confusion counts (one entry per candidate threshold)."""
    f1_pos = _safe_div(2 * tp, 2 * tp + fp + fn)
    if metric == "f1":
        return f1_pos
    if metric == "accuracy":
        return (tp + tn) / (tp + fp + fn + tn)
    if metric == "balanced_accuracy":  # both classes are present (checked by the caller)
        return (_safe_div(tp, tp + fn) + _safe_div(tn, tn + fp)) / 2
    f1_neg = _safe_div(2 * tn, 2 * tn + fn + fp)
    return (f1_pos + f1_neg) / 2  # both classes present in y, so both count in the macro mean
