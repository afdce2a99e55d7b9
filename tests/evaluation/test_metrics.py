"""Metrics against hand-computed values, against scikit-learn, and on degenerate inputs."""

from __future__ import annotations

import json
import math
import re
import time

import numpy as np
import pytest
from sklearn import metrics as skm

from takeoff.data.schema import Task
from takeoff.errors import DataError, UnknownNameError
from takeoff.evaluation.metrics import (
    PRIMARY_METRIC,
    compute_metrics,
    greater_is_better,
    predicted_codes,
    score,
    tune_threshold,
)

BINARY = Task("binary", "churn", ["no", "yes"])
MULTI = Task("multiclass", "species", ["a", "b", "c"])
REGRESSION = Task("regression", "price")


def two_columns(p: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - p, p])


def assert_plain_json(metrics: dict) -> None:
    """Every value is a plain Python number (or a dict of them) and survives JSON."""
    for value in metrics.values():
        if isinstance(value, dict):
            assert_plain_json(value)
        else:
            assert type(value) in (float, int), (value, type(value))
    assert json.loads(json.dumps(metrics, allow_nan=False)) == metrics


# --- hand-computed --------------------------------------------------------------------------


def test_binary_matches_hand_computed_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = compute_metrics(BINARY, y, two_columns(p))
    # At 0.5 the predictions are [0, 1, 0, 1]: one of each kind of error.
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)  # tp=1, fp=1, fn=1 -> 2/(2+1+1)
    assert m["macro_f1"] == pytest.approx(0.5)
    assert m["roc_auc"] == pytest.approx(0.75)  # 3 of 4 (positive, negative) pairs ordered
    assert m["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.4)) / 2)
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert m["threshold"] == 0.5
    assert_plain_json(m)


def test_binary_threshold_moves_accuracy_and_f1_only():
    y = np.array([0, 0, 1, 1])
    pred = two_columns(np.array([0.1, 0.6, 0.4, 0.9]))
    low = compute_metrics(BINARY, y, pred, threshold=0.35)  # predictions [0, 1, 1, 1]
    assert low["accuracy"] == pytest.approx(0.75)
    assert low["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1))
    assert low["threshold"] == 0.35
    base = compute_metrics(BINARY, y, pred)
    for name in ("roc_auc", "pr_auc", "log_loss", "brier"):
        assert low[name] == base[name]


def test_multiclass_matches_hand_computed_values():
    y = np.array([0, 1, 2, 2])
    pred = np.array([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6]])
    m = compute_metrics(MULTI, y, pred)
    # argmax: [0, 0, 2, 2]
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                                   "support": 1}
    assert m["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_class"]["c"]["f1"] == pytest.approx(1.0)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.4, 0.7, 0.6])))
    assert "roc_auc" in m
    assert_plain_json(m)


def test_regression_matches_hand_computed_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 3.0, 6.0])
    m = compute_metrics(REGRESSION, y, pred)
    assert m["rmse"] == pytest.approx(1.0)  # sqrt(4 / 4)
    assert m["mae"] == pytest.approx(0.5)
    assert m["r2"] == pytest.approx(1 - 4 / 5)  # total sum of squares is 5
    assert_plain_json(m)


# --- against scikit-learn on random data ----------------------------------------------------


def test_binary_agrees_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.001, 0.999)
    m = compute_metrics(BINARY, y, two_columns(p), threshold=0.45)
    hard = (p >= 0.45).astype(int)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, hard))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, hard))
    assert m["f1"] == pytest.approx(skm.f1_score(y, hard))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, hard, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))


def test_multiclass_agrees_with_sklearn():
    rng = np.random.default_rng(1)
    task = Task("multiclass", "t", ["w", "x", "y", "z"])
    y = rng.integers(0, 4, 3000)
    proba = rng.dirichlet(np.ones(4), 3000)
    proba[np.arange(3000), y] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    m = compute_metrics(task, y, proba)
    hard = proba.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, hard))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, hard, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, hard)
    for i, label in enumerate(task.classes):
        row = m["per_class"][label]
        assert row["precision"] == pytest.approx(precision[i])
        assert row["recall"] == pytest.approx(recall[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["support"] == support[i]


def test_regression_agrees_with_sklearn():
    rng = np.random.default_rng(2)
    y = rng.normal(50, 10, 1000)
    pred = y + rng.normal(0, 4, 1000)
    m = compute_metrics(REGRESSION, y, pred)
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))


# --- perfect, worst, and degenerate inputs --------------------------------------------------


def test_perfect_and_worst_binary_predictions():
    y = np.array([0, 1, 0, 1, 1])
    perfect = compute_metrics(BINARY, y, two_columns(y.astype(float)))
    assert perfect["roc_auc"] == 1.0 and perfect["accuracy"] == 1.0 and perfect["f1"] == 1.0
    assert perfect["brier"] == 0.0
    assert perfect["log_loss"] == pytest.approx(0.0, abs=1e-12)
    worst = compute_metrics(BINARY, y, two_columns(1.0 - y))
    assert worst["roc_auc"] == 0.0 and worst["accuracy"] == 0.0 and worst["f1"] == 0.0
    assert worst["brier"] == 1.0
    # Exactly-wrong certain probabilities are clipped, not infinite.
    assert math.isfinite(worst["log_loss"]) and worst["log_loss"] > 30


def test_perfect_regression():
    y = np.array([3.0, 1.0, 2.0])
    assert compute_metrics(REGRESSION, y, y.copy()) == {"rmse": 0.0, "mae": 0.0, "mape": 0.0, "r2": 1.0}


def test_single_class_binary_omits_undefined_metrics():
    y = np.zeros(5, dtype=int)
    m = compute_metrics(BINARY, y, two_columns(np.array([0.1, 0.2, 0.7, 0.3, 0.0])))
    assert "roc_auc" not in m and "pr_auc" not in m
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx(
        skm.f1_score(y, [0, 0, 1, 0, 0], average="macro", zero_division=0))
    assert math.isfinite(m["log_loss"])
    assert_plain_json(m)


def test_multiclass_with_class_missing_from_y():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [1.0, 0.0, 0.0]])
    m = compute_metrics(MULTI, y, proba)
    assert "roc_auc" not in m  # class "c" is absent from y
    assert m["per_class"]["c"]["support"] == 0
    assert m["per_class"]["c"]["precision"] == 0.0  # predicted once, wrongly
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2]))
    hard = proba.argmax(axis=1)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, hard, average="macro"))


def test_multiclass_single_class_present():
    m = compute_metrics(MULTI, np.array([2, 2]), np.array([[0.1, 0.1, 0.8], [0.5, 0.2, 0.3]]))
    assert m["accuracy"] == 0.5 and "roc_auc" not in m


def test_constant_regression_target_omits_r2():
    m = compute_metrics(REGRESSION, np.array([5.0, 5.0, 5.0]), np.array([4.0, 5.0, 6.0]))
    assert "r2" not in m
    assert m["mae"] == pytest.approx(2 / 3)


def test_binary_accepts_positive_class_vector():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.2, 0.7, 0.4, 0.1, 0.9])
    assert compute_metrics(BINARY, y, p) == compute_metrics(BINARY, y, two_columns(p))


def test_unnormalised_probabilities_are_renormalised_for_log_loss():
    y = np.array([0, 1])
    scaled = np.array([[0.25, 0.25], [0.125, 0.375]])  # rows sum to 0.5: [.5,.5], [.25,.75]
    two = Task("multiclass", "t", ["a", "b"])
    expected = -(math.log(0.5) + math.log(0.75)) / 2
    assert compute_metrics(two, y, scaled)["log_loss"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("task", "y", "pred", "needle"),
    [
        (BINARY, np.array([0, 1]), two_columns(np.array([0.1, 0.2, 0.3])), "y has 2 rows"),
        (BINARY, np.array([], dtype=int), np.zeros((0, 2)), "no rows"),
        (MULTI, np.array([0, 1]), np.full((2, 2), 0.5), "shape (n_rows, 3)"),
        (MULTI, np.array([0, 3]), np.full((2, 3), 1 / 3), "outside 0..2"),
        (MULTI, np.array([0.5, 1.0]), np.full((2, 3), 1 / 3), "class codes"),
        (BINARY, np.array([0, 1]), np.array([[0.5, 0.5], [np.nan, np.nan]]), "NaN"),
        (REGRESSION, np.array([1.0, np.nan]), np.array([1.0, 2.0]), "target value"),
    ],
)
def test_bad_inputs_raise_clear_errors(task, y, pred, needle):
    with pytest.raises(DataError, match=re.escape(needle)):
        compute_metrics(task, y, pred)


# --- score and metric directions ------------------------------------------------------------


def test_greater_is_better():
    assert greater_is_better("roc_auc") and greater_is_better("r2")
    assert not greater_is_better("log_loss") and not greater_is_better("rmse")
    with pytest.raises(UnknownNameError, match="Did you mean 'rmse'"):
        greater_is_better("rmsee")
    for metric in PRIMARY_METRIC.values():
        greater_is_better(metric)  # every primary metric has a direction


def test_score_is_higher_is_better_and_matches_compute_metrics():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    full = compute_metrics(BINARY, y, two_columns(p))
    assert score(BINARY, y, two_columns(p)) == pytest.approx(full["roc_auc"])
    assert score(BINARY, y, two_columns(p), "log_loss") == pytest.approx(-full["log_loss"])
    assert score(BINARY, y, two_columns(p), "f1") == pytest.approx(full["f1"])

    yr = rng.normal(size=200)
    good, bad = yr + 0.1, yr + 1.0
    assert score(REGRESSION, yr, good) > score(REGRESSION, yr, bad)
    assert score(REGRESSION, yr, bad) == pytest.approx(-1.0)  # -rmse

    proba = rng.dirichlet(np.ones(3), 200)
    ym = rng.integers(0, 3, 200)
    assert score(MULTI, ym, proba) == pytest.approx(-compute_metrics(MULTI, ym, proba)["log_loss"])


def test_score_falls_back_when_metric_is_undefined():
    y = np.ones(4, dtype=int)
    pred = two_columns(np.array([0.9, 0.8, 0.6, 0.7]))
    assert score(BINARY, y, pred) == pytest.approx(-compute_metrics(BINARY, y, pred)["log_loss"])
    constant = np.full(3, 2.0)
    assert score(REGRESSION, constant, constant + 1, "r2") == pytest.approx(-1.0)


def test_score_rejects_metric_of_another_task():
    with pytest.raises(UnknownNameError, match="valid: rmse, mae, mape, r2"):
        score(REGRESSION, np.zeros(2), np.zeros(2), "roc_auc")
    with pytest.raises(KeyError):  # also a KeyError, as the hierarchy promises
        score(BINARY, np.array([0, 1]), np.array([0.2, 0.8]), "auc")


# --- threshold tuning -----------------------------------------------------------------------


def test_tune_threshold_finds_the_gap_on_separable_data():
    rng = np.random.default_rng(4)
    y = np.r_[np.zeros(3000, int), np.ones(300, int)]
    p = np.r_[rng.uniform(0.0, 0.7, 3000), rng.uniform(0.8, 1.0, 300)]
    for metric in ("macro_f1", "f1", "accuracy", "balanced_accuracy"):
        t = tune_threshold(y, p, metric)
        assert 0.7 < t <= 0.8, (metric, t)
        m = compute_metrics(BINARY, y, p, threshold=t)
        assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0
    assert compute_metrics(BINARY, y, p)["accuracy"] < 1.0  # 0.5 was not the optimum


def test_tune_threshold_small_example_and_ties():
    assert tune_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.4, 0.9])) == 0.35
    # A wide gap: every threshold in (0.2, 0.8] is perfect; the tie goes to 0.5.
    assert tune_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.5


def test_tuned_threshold_is_at_least_as_good_as_default():
    rng = np.random.default_rng(5)
    y = (rng.random(5000) < 0.1).astype(int)
    p = 1 / (1 + np.exp(-rng.normal(-2.5 + 2 * y, 1.0)))
    for metric in ("macro_f1", "f1", "balanced_accuracy"):
        t = tune_threshold(y, p, metric)
        tuned = compute_metrics(BINARY, y, p, threshold=t)[metric]
        default = compute_metrics(BINARY, y, p)[metric]
        assert tuned >= default - 1e-12
    # With 10% positives and weak signal, F1 wants a threshold well below 0.5.
    assert tune_threshold(y, p, "f1") < 0.5


def test_tune_threshold_is_fast_on_100k_rows():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 100_000)
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    tune_threshold(y[:100], p[:100])  # warm-up
    start = time.perf_counter()
    t = tune_threshold(y, p)
    assert time.perf_counter() - start < 0.5
    assert 0.3 < t < 0.7


def test_tune_threshold_single_class_returns_default():
    assert tune_threshold(np.ones(10, int), np.linspace(0, 1, 10)) == 0.5
    assert tune_threshold(np.zeros(3, int), np.array([0.2, 0.9, 0.4]), "f1") == 0.5


def test_tune_threshold_rejects_unknown_metric_and_bad_input():
    with pytest.raises(UnknownNameError, match="balanced_accuracy"):
        tune_threshold(np.array([0, 1]), np.array([0.2, 0.8]), "auc")
    with pytest.raises(DataError):
        tune_threshold(np.array([0, 1, 2]), np.array([0.2, 0.8, 0.5]))
    with pytest.raises(DataError):
        tune_threshold(np.array([0, 1]), np.array([0.2, np.inf]))


# --- predicted codes ------------------------------------------------------------------------


def test_predicted_codes():
    pred = two_columns(np.array([0.2, 0.5, 0.7]))
    assert predicted_codes(BINARY, pred).tolist() == [0, 1, 1]  # >= threshold is positive
    assert predicted_codes(BINARY, pred, threshold=0.6).tolist() == [0, 0, 1]
    assert predicted_codes(BINARY, np.array([0.2, 0.9])).tolist() == [0, 1]
    proba = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    codes = predicted_codes(MULTI, proba)
    assert codes.tolist() == [1, 0] and codes.dtype == np.int64
    with pytest.raises(DataError, match="regression"):
        predicted_codes(REGRESSION, np.zeros(3))
