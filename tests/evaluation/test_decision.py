"""The decision rule tuned for a metric, and metrics scored at their tuned decision."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from takeoff.data.schema import Task
from takeoff.evaluation.decision import decided_score, tune_class_weights, tune_decision
from takeoff.evaluation.metrics import compute_metrics, predicted_codes, score


@pytest.fixture(scope="module")
def imbalanced_digits():
    """Real digits, five classes cut to 20 rows each: out-of-fold probabilities of a weak model."""
    X, y = load_digits(return_X_y=True)
    keep = np.concatenate([np.flatnonzero(y == k)[: (150 if k < 5 else 20)] for k in range(10)])
    X, y = X[keep][:, ::6] / 16, y[keep]  # every 6th pixel: a weak model, so argmax favours the big classes
    proba = cross_val_predict(LogisticRegression(max_iter=1000, C=0.1), X, y, cv=3, method="predict_proba")
    return Task("multiclass", "digit", list(range(10))), y, proba


def test_class_weights_raise_the_metric_they_are_tuned_for(imbalanced_digits):
    task, y, proba = imbalanced_digits
    for metric in ("macro_f1", "balanced_accuracy"):
        weights = tune_class_weights(task, y, proba, metric)
        assert weights is not None and max(weights) == 1.0
        assert np.argmax(weights) >= 5  # a small class weighs most
        assert score(task, y, proba * weights, metric) > score(task, y, proba, metric)
        # the metrics of the tuned decision are those of the weighted argmax
        metrics = compute_metrics(task, y, proba, weights)
        assert metrics[metric] == pytest.approx(score(task, y, proba * weights, metric))
        assert (predicted_codes(task, proba, weights) == np.argmax(proba * weights, axis=1)).all()


def test_nothing_is_tuned_where_argmax_is_best_or_the_metric_is_not_about_labels(imbalanced_digits):
    task, y, proba = imbalanced_digits
    balanced = np.concatenate([np.flatnonzero(y == k)[:20] for k in range(10)])
    assert tune_class_weights(task, y[balanced], np.eye(10)[y[balanced]], "accuracy") is None  # perfect already
    assert tune_decision(task, y, proba, "log_loss") is None
    assert decided_score(task, y, proba, "log_loss") == score(task, y, proba, "log_loss")


def test_binary_candidates_are_compared_at_their_tuned_threshold():
    task = Task("binary", "y", [0, 1])
    y = np.array([0] * 90 + [1] * 10)
    p = np.where(y == 1, 0.30, 0.10) + np.linspace(0, 0.05, 100)  # separable, but all below 0.5
    proba = np.column_stack([1 - p, p])
    assert score(task, y, proba, "f1") == 0.0
    assert decided_score(task, y, proba, "f1") == 1.0
    t = tune_decision(task, y, proba, "f1")
    assert compute_metrics(task, y, proba, t)["f1"] == 1.0


def test_mape_is_a_share_over_the_rows_with_a_nonzero_target():
    task = Task("regression", "v")
    y, pred = np.array([100.0, 200.0, 0.0]), np.array([110.0, 180.0, 5.0])
    assert compute_metrics(task, y, pred)["mape"] == pytest.approx(0.1)
    assert score(task, y, pred, "mape") == pytest.approx(-0.1)
