"""Data checks on real datasets and on planted problems."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pydantic
import pytest

from takeoff.data.checks import CheckParams, Finding, run_checks
from takeoff.data.schema import infer_schema, infer_task
from takeoff.data.sources import read_table
from takeoff.errors import ColumnNotFoundError



def check(df: pd.DataFrame, target: str | None, **params) -> list[Finding]:
    schema = infer_schema(df, target)
    task = infer_task(df[target], target) if target is not None else None
    return run_checks(df, schema, target, task, CheckParams(**params))


def only(findings: list[Finding], name: str) -> list[Finding]:
    return [f for f in findings if f.check == name]


@pytest.fixture(scope="module")
def credit(datasets) -> pd.DataFrame:
    return read_table(datasets / "credit_risk.csv")


def test_credit_risk_has_no_errors(credit):
    findings = check(credit, "Status")
    assert [f for f in findings if f.severity == "error"] == []
    assert only(findings, "duplicates")[0].count == int(credit.duplicated().sum())


@pytest.mark.parametrize(
    "name, target", [("telco_churn", "churn"), ("diamonds", "price"), ("breast_cancer", "diagnosis")]
)
def test_strong_real_features_are_not_called_leaks(name, target, datasets):
    # breast_cancer's 'worst perimeter' alone reaches ROC-AUC ~0.96; diamonds' carat R² ~0.87
    findings = check(read_table(datasets / f"{name}.csv"), target)
    assert only(findings, "leakage") == []


def test_planted_leak_is_an_error_naming_the_column(credit):
    rng = np.random.default_rng(3)
    df = credit.copy()
    noisy = df["Status"].copy()
    flip = rng.random(len(df)) < 0.01
    noisy[flip] = np.where(noisy[flip] == "good", "bad", "good")
    df["review_outcome"] = noisy
    findings = check(df, "Status")
    leaks = only(findings, "leakage")
    assert [f.column for f in leaks] == ["review_outcome"]
    assert leaks[0].severity == "error" and findings[0] is leaks[0]  # errors sort first
    assert "ROC-AUC" in leaks[0].message and "drop column 'review_outcome'" in leaks[0].fix


def test_planted_regression_leak(credit, datasets):
    rng = np.random.default_rng(4)
    df = read_table(datasets / "diamonds.csv")
    df["price_estimate"] = df["price"] * (1 + 0.01 * rng.standard_normal(len(df)))
    leaks = only(check(df, "price"), "leakage")
    assert [f.column for f in leaks] == ["price_estimate"] and "R²" in leaks[0].message


def test_multiclass_leak_through_a_category():
    rng = np.random.default_rng(5)
    n = 3000
    y = rng.choice(["low", "mid", "high"], n)
    code = pd.Series(y).map({"low": "L-17", "mid": "M-02", "high": "H-99"})
    code[rng.random(n) < 0.01] = "unknown"
    df = pd.DataFrame({"y": y, "grade_code": code, "noise": rng.random(n)})
    leaks = only(check(df, "y"), "leakage")
    assert [f.column for f in leaks] == ["grade_code"]


def test_leakage_check_is_fast_on_30_columns():
    rng = np.random.default_rng(6)
    n = 20_000
    data = {f"num{i}": rng.standard_normal(n) for i in range(20)}
    data |= {f"cat{i}": rng.choice([f"v{j}" for j in range(30)], n) for i in range(10)}
    data["y"] = rng.choice([0, 1], n)
    df = pd.DataFrame(data)
    schema = infer_schema(df, "y")
    task = infer_task(df["y"], "y")
    run_checks(df.head(200), infer_schema(df.head(200), "y"), "y", task)  # warm imports
    start = time.perf_counter()
    findings = run_checks(df, schema, "y", task)
    assert time.perf_counter() - start < 2.0
    assert only(findings, "leakage") == []


def test_duplicates_counted_exactly():
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"a": rng.random(200), "b": rng.choice(["x", "y"], 200), "y": rng.choice([0, 1], 200)})
    df = pd.concat([df, df.iloc[[3, 3, 50, 199]]], ignore_index=True)
    found = only(check(df, "y"), "duplicates")
    assert len(found) == 1 and found[0].count == 4 and found[0].severity == "warning"
    assert "rows 200, 201, 202, 203" in found[0].message


def test_imbalance_95_5():
    df = pd.DataFrame({"x": np.arange(1000) % 7, "y": ["ok"] * 950 + ["fraud"] * 50})
    found = only(check(df, "y"), "imbalance")
    assert len(found) == 1 and found[0].severity == "warning" and found[0].column == "y"
    assert "'fraud' has 50 rows" in found[0].message and "'ok' has 950" in found[0].message
    assert "class weights are applied automatically" in found[0].fix and "'fraud'" in found[0].fix
    balanced = pd.DataFrame({"x": np.arange(1000) % 7, "y": ["ok"] * 800 + ["fraud"] * 200})
    assert only(check(balanced, "y"), "imbalance") == []


def test_one_row_class_is_an_error():
    df = pd.DataFrame({"x": np.arange(61) % 5, "y": ["a"] * 30 + ["b"] * 30 + ["c"]})
    findings = check(df, "y")
    rare = only(findings, "rare_class")
    assert len(rare) == 1 and rare[0].severity == "error" and findings[0] is rare[0]
    assert "'c' (1 row)" in rare[0].message and "remove the rows of 'c'" in rare[0].fix
    assert only(findings, "imbalance") == []  # the 1-row class is reported once, as an error


def test_mixed_types_and_infinite_values():
    n = 100
    amount = [str(i * 1.5) for i in range(n)]
    amount[4], amount[18], amount[90] = "abc", "n.a.", "abc"
    ratio = np.linspace(0, 1, n)
    ratio[[7, 8]] = np.inf
    df = pd.DataFrame({"amount": amount, "ratio": ratio, "y": np.arange(n) % 2})
    findings = check(df, "y")
    mixed = only(findings, "mixed_types")
    assert len(mixed) == 1 and mixed[0].column == "amount" and mixed[0].count == 3
    assert mixed[0].message.startswith("mixed types: 3 value(s) like 'abc', 'n.a.'")
    assert "rows 4, 18, 90" in mixed[0].message and "treated as missing" in mixed[0].message
    infinite = only(findings, "infinite")
    assert len(infinite) == 1 and infinite[0].column == "ratio" and infinite[0].count == 2
    assert "rows 7, 8" in infinite[0].message


def test_high_cardinality_50000_levels_is_fast():
    rng = np.random.default_rng(8)
    n = 100_000
    df = pd.DataFrame(
        {
            "merchant": [f"m{v}" for v in np.arange(n) % 50_000],
            "amount": rng.random(n),
            "y": rng.choice([0, 1], n),
        }
    )
    start = time.perf_counter()
    findings = check(df, "y")
    assert time.perf_counter() - start < 5.0
    found = only(findings, "high_cardinality")
    assert len(found) == 1 and found[0].column == "merchant" and found[0].count == 50_000
    assert "50000 distinct values" in found[0].message


def test_missing_target_mostly_missing_and_dropped_columns():
    n = 100
    y = np.arange(n) % 2
    df = pd.DataFrame(
        {
            "row_id": np.arange(1, n + 1),
            "country": "FR",
            "nothing": [None] * n,
            "sparse": [float(i) if i % 4 == 0 else None for i in range(n)],
            "x": np.arange(n) % 9,
            "y": pd.Series(y, dtype="float64").where(np.arange(n) % 25 != 0),
        }
    )
    findings = check(df, "y")
    missing = only(findings, "missing_target")
    assert missing[0].count == 4 and "rows 0, 25, 50, 75" in missing[0].message
    assert "dropped before training" in missing[0].message
    sparse = only(findings, "mostly_missing")
    assert [f.column for f in sparse] == ["sparse"] and sparse[0].count == 75
    info = {f.check: f.column for f in findings if f.severity == "info"}
    assert info == {"identifier": "row_id", "constant": "country", "empty": "nothing"}
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)


def test_without_target_only_target_free_checks_run(credit):
    df = pd.concat([credit, credit.head(3)], ignore_index=True)
    findings = check(df, None)
    assert {f.check for f in findings} == {"duplicates"}
    assert only(findings, "duplicates")[0].count == int(df.duplicated().sum())


def test_unknown_target_column(credit):
    schema = infer_schema(credit)
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'Status'"):
        run_checks(credit, schema, "status_", None)


def test_finding_text_and_json():
    finding = Finding("leakage", "error", "too good", "drop it", column="x", count=None)
    assert str(finding) == "error [leakage] column 'x': too good. Fix: drop it"
    assert json.loads(json.dumps(finding.to_json())) == {
        "check": "leakage", "severity": "error", "message": "too good", "fix": "drop it",
        "column": "x", "count": None,
    }
    assert str(Finding("duplicates", "warning", "2 copies.", "remove")) == "warning [duplicates]: 2 copies. Fix: remove"


def test_params_are_validated():
    with pytest.raises(pydantic.ValidationError):
        CheckParams(leakage_treshold=0.9)
    with pytest.raises(pydantic.ValidationError):
        CheckParams(imbalance_ratio=1.5)
    assert CheckParams.model_fields["sample_rows"].description
    df = pd.DataFrame({"x": np.arange(100) % 3, "y": ["a"] * 85 + ["b"] * 15})
    assert only(check(df, "y"), "imbalance") == []
    assert len(only(check(df, "y", imbalance_ratio=0.2), "imbalance")) == 1


def test_text_columns_get_their_own_findings():
    import takeoff

    texts = [f"note number {i} about the order and its delivery" for i in range(60)]
    texts[:8] = ["Привет, как дела у тебя сегодня, друг мой"] * 4 + ["Мы идём домой сегодня вечером вместе"] * 4
    texts[10], texts[11], texts[12] = "w" * 20_000, "", 12345
    df = pd.DataFrame({"text": texts, "y": ["a", "b"] * 30})
    found = {f["check"]: f for f in takeoff.inspect(df, target="y")["findings"]}
    assert found["long_text"]["count"] == 1 and "20,000" in found["long_text"]["message"]
    assert found["empty_text"]["count"] == 1 and found["text_not_string"]["count"] == 1
    assert found["duplicate_text"]["count"] == 6
    assert "cyrillic" in found["language_mix"]["message"] and "latin" in found["language_mix"]["message"]
