"""Threshold mitigation: fairlearn's ``ThresholdOptimizer`` fitted on validation predictions,
stored as JSON and re-applied at predict time without fairlearn or pickle.

fairlearn learns, per group, a randomised threshold rule: with probability ``p0`` apply
``score > t0`` (or ``<``), with ``p1`` apply ``score > t1``; for equalised odds, with
probability ``p_ignore`` predict a constant instead. The object itself cannot be stored
without pickle, so :func:`fit_thresholds` extracts those numbers and :func:`apply_thresholds`
re-applies them exactly as fairlearn's ``InterpolatedThresholder.predict`` does, drawing the
random numbers from ``numpy.random.RandomState(seed)`` over the rows of each call (the same
rows in the same order give the same labels). A group not seen when fitting keeps the model's
own decision.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _given_scores():
    """A prefit sklearn 'estimator' whose prediction is its input's one column: fairlearn's
    ThresholdOptimizer then thresholds the scores the run already has."""
    from sklearn.base import BaseEstimator

    class GivenScores(BaseEstimator):
        def fit(self, X, y=None):  # sklearn's protocol; never called (prefit)
            return self

        def predict(self, X):
            return np.asarray(X, dtype=np.float64)[:, 0]

    given = GivenScores()
    given.fitted_ = True  # what sklearn's check_is_fitted looks for
    return given


def fit_thresholds(y: np.ndarray, scores: np.ndarray, groups: np.ndarray, *, constraint: str, objective: str,
                   seed: int) -> tuple[dict[str, Any], Any]:
    """Fit fairlearn's ThresholdOptimizer (prefit) on ``scores`` (positive-class
    probabilities) and return ``(rule, optimizer)``: the JSON-ready rule and fairlearn's
    fitted object (for checks; not stored)."""
    import warnings

    from fairlearn.postprocessing import ThresholdOptimizer

    optimizer = ThresholdOptimizer(estimator=_given_scores(), constraints=constraint, objective=objective,
                                   prefit=True, predict_method="predict")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer.fit(np.asarray(scores, dtype=np.float64).reshape(-1, 1), np.asarray(y, dtype=np.int64),
                      sensitive_features=np.asarray(groups, dtype=object))
    per_group = {}
    for group, rule in optimizer.interpolated_thresholder_.interpolation_dict.items():
        entry = {
            "p0": float(rule.p0), "operation0": [rule.operation0.operator, _number(rule.operation0.threshold)],
            "p1": float(rule.p1), "operation1": [rule.operation1.operator, _number(rule.operation1.threshold)],
        }
        if "p_ignore" in rule:
            entry["p_ignore"] = float(rule.p_ignore)
            entry["prediction_constant"] = float(rule.prediction_constant)
        per_group[str(group)] = entry
    return {"method": "threshold", "constraint": constraint, "objective": objective, "seed": int(seed),
            "groups": per_group}, optimizer


def positive_probability(rule: dict[str, Any], scores: np.ndarray, groups: np.ndarray,
                         fallback: np.ndarray) -> np.ndarray:
    """Each row's probability of a positive label under ``rule`` (``fallback``, the model's
    own 0/1 decision, for a group the rule does not know)."""
    scores = np.asarray(scores, dtype=np.float64)
    groups = np.asarray(groups, dtype=object)
    out = np.asarray(fallback, dtype=np.float64).copy()
    for group, g in rule["groups"].items():
        rows = groups == group
        if not rows.any():
            continue
        s = scores[rows]
        p = g["p0"] * _apply(g["operation0"], s) + g["p1"] * _apply(g["operation1"], s)
        if "p_ignore" in g:
            p = g["p_ignore"] * g["prediction_constant"] + (1 - g["p_ignore"]) * p
        out[rows] = p
    return out


def apply_thresholds(rule: dict[str, Any], scores: np.ndarray, groups: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """0/1 codes: fairlearn's randomised decision, ``positive_probability >= U`` with U drawn
    from ``RandomState(rule['seed'])``, one number per row in order."""
    p = positive_probability(rule, scores, groups, fallback)
    return (p >= np.random.RandomState(rule["seed"]).rand(len(p))).astype(np.int64)


def _apply(operation: list, s: np.ndarray) -> np.ndarray:
    operator, threshold = operation[0], float(operation[1])
    return (s > threshold) if operator == ">" else (s < threshold)


def _number(value: float) -> float | str:
    """A threshold as JSON takes it (fairlearn uses ±inf for 'always' and 'never')."""
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value
