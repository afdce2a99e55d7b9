"""The fairness audit and the threshold mitigation, checked against fairlearn itself on a real
table (telco churn, audited by senior_citizen and female)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.data.split import train_valid_split
from takeoff.errors import ColumnNotFoundError, ConfigError, DataError
from takeoff.evaluation.fairness import FairnessParams, audit, group_keys
from takeoff.evaluation.metrics import predicted_codes
from takeoff.evaluation.mitigation import apply_thresholds, fit_thresholds

fm = pytest.importorskip("fairlearn.metrics")
SENSITIVE = ["senior_citizen", "female"]


@pytest.fixture(scope="module")
def telco(datasets) -> pd.DataFrame:
    return pd.read_csv(datasets / "telco_churn.csv").sample(1500, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def fair_model(telco, tmp_path_factory):
    """One holdout split, no refit: the bundle predicts the validation rows as they were scored."""
    out = tmp_path_factory.mktemp("fair") / "bundle"
    config = {"family": "linear", "folds": 1, "refit": False, "seed": 3}
    model = takeoff.train(telco, "churn", config=config, time_budget=30, out=out, sensitive=",".join(SENSITIVE),
                          mitigate="threshold")
    return takeoff.load(out)


def _validation_rows(model, telco):
    y = model.task.encode(telco["churn"])
    _, valid = train_valid_split(y, model.task, 0.2, 3)
    return telco.iloc[valid].reset_index(drop=True), y[valid]


def test_audit_equals_fairlearn_metricframe(fair_model, telco):
    audit_ = fair_model.manifest["fairness"]
    assert audit_["sensitive"] == SENSITIVE and audit_["used_as_features"] is False
    # audit only: the sensitive columns are not model features
    assert not {c.name for c in fair_model.schema.features} & set(SENSITIVE)
    rows, y = _validation_rows(fair_model, telco)
    assert audit_["rows"] == len(rows)
    outputs = fair_model.predict_proba(rows).to_numpy()
    codes = predicted_codes(fair_model.task, outputs, fair_model.threshold)
    for column in SENSITIVE:
        keys = rows[column].astype(str).to_numpy()
        frame = fm.MetricFrame(metrics={"selection_rate": fm.selection_rate, "true_positive_rate": fm.true_positive_rate,
                                        "false_positive_rate": fm.false_positive_rate, "count": fm.count},
                               y_true=y, y_pred=codes, sensitive_features=keys)
        ours = {r["group"]: r for r in audit_["groups"][column]}
        assert set(ours) == {str(g) for g in frame.by_group.index}
        for group, row in frame.by_group.iterrows():
            for metric, value in row.items():
                assert ours[str(group)][metric] == pytest.approx(float(value), abs=1e-12), (column, group, metric)
        assert audit_["differences"][column]["demographic_parity"] == pytest.approx(
            fm.demographic_parity_difference(y, codes, sensitive_features=keys), abs=1e-12)
        assert audit_["ratios"][column]["demographic_parity"] == pytest.approx(
            fm.demographic_parity_ratio(y, codes, sensitive_features=keys), abs=1e-12)
        assert audit_["ratios"][column]["equalized_odds"] == pytest.approx(
            fm.equalized_odds_ratio(y, codes, sensitive_features=keys), abs=1e-12)
        low = audit_["ratios"][column]["demographic_parity"] < 0.8
        assert low == any(f"'{column}': demographic parity ratio" in w for w in audit_["warnings"])
    report = (fair_model.path / "report.html").read_text()
    assert 'id="fairness"' in report and "Metrics per group of senior_citizen" in report


def test_stored_thresholds_predict_as_fairlearn_does(fair_model, telco):
    from fairlearn.postprocessing import ThresholdOptimizer  # noqa: F401 - the reference below

    rule = fair_model.mitigation
    rows, y = _validation_rows(fair_model, telco)
    scores = fair_model.predict_proba(rows).to_numpy()[:, 1]
    groups = group_keys(rows, SENSITIVE)
    # fairlearn fitted again on the same validation predictions learns the same rule...
    again, optimizer = fit_thresholds(y, scores, groups, constraint=rule["constraint"], objective=rule["objective"],
                                      seed=rule["seed"])
    assert again["groups"] == rule["groups"]
    # ...and its own randomised predictions equal the bundle's, row for row
    expected = optimizer.predict(scores.reshape(-1, 1), sensitive_features=groups, random_state=rule["seed"])
    got = fair_model.predict(rows)
    assert (fair_model.task.encode(pd.Series(got)) == expected).all()
    fallback = predicted_codes(fair_model.task, np.c_[1 - scores, scores], fair_model.threshold)
    assert (apply_thresholds(rule, scores, groups, fallback) == expected).all()
    # the cost is reported, and the mitigation moves the parity ratio towards 1
    cost = rule["cost"]
    assert cost["after"]["demographic_parity_ratio"] > cost["before"]["demographic_parity_ratio"]
    with pytest.raises(DataError, match="lack female"):
        fair_model.predict(rows.drop(columns=["female"]))


def test_audit_of_regression_compares_errors(credit_small):
    y = credit_small["Amount"].to_numpy(dtype=float)
    pred = y * 0.9 + 50
    frame = credit_small[["Home"]].reset_index(drop=True)
    found = audit(_task("regression", "Amount"), y, pred, None, frame, FairnessParams(sensitive=["Home"]))
    reference = fm.MetricFrame(metrics={"mae": lambda a, b: float(np.mean(np.abs(a - b)))}, y_true=y, y_pred=pred,
                               sensitive_features=frame["Home"].astype(str).to_numpy())
    ours = {r["group"]: r["mae"] for r in found["groups"]["Home"]}
    for group, value in reference.by_group["mae"].items():
        assert ours[str(group)] == pytest.approx(value)
    assert found["differences"]["Home"]["mae"] == pytest.approx(reference.difference()["mae"])
    assert found["ratios"] == {}


def _task(kind, target):
    from takeoff.data.schema import Task

    return Task(kind, target)


@pytest.mark.parametrize(("options", "error", "match"), [
    ({"sensitive": "gender"}, ColumnNotFoundError, "gender"),
    ({"sensitive": "tenure"}, DataError, "distinct values; the audit allows at most 20"),
    ({"sensitive": "churn"}, DataError, "is the target"),
    ({"mitigate": "threshold"}, ConfigError, "needs the groups"),
])
def test_bad_sensitive_columns_are_refused_before_training(telco, tmp_path, options, error, match):
    with pytest.raises(error, match=match):
        takeoff.train(telco, "churn", time_budget=10, out=tmp_path / "run", **options)
    assert not (tmp_path / "run").exists()


def test_one_group_and_mitigation_on_regression_are_refused(telco, tmp_path):
    one = telco.assign(country="FR")
    with pytest.raises(DataError, match="single group"):
        takeoff.train(one, "churn", time_budget=10, sensitive="country")
    with pytest.raises(ConfigError, match="binary tasks"):
        takeoff.train(telco, "monthly_charges", time_budget=10, sensitive="female", mitigate="threshold")
