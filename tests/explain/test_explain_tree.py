"""TreeSHAP: LightGBM's contributions plus the expected value add up to the raw prediction,
for binary, multiclass and regression trees; rescaled, they add up to the output's change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.explain import explain
from takeoff.explain.tree import tree_shap


def _table(kind: str, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x0": rng.normal(size=n), "n1": rng.normal(size=n), "c": rng.choice(list("pqrs"), size=n),
                       "when": pd.date_range("2024-01-01", periods=n, freq="7h")})
    signal = df["x0"] + 0.3 * rng.normal(size=n)
    if kind == "multiclass":
        df["y"] = np.select([signal < -0.5, signal < 0.5], ["low", "mid"], "high")
    else:
        df["y"] = 3.0 * signal + 10.0
    df.loc[::17, "n1"] = np.nan  # a missing indicator: one more feature column from n1
    return df


@pytest.fixture(scope="module", params=["binary", "multiclass", "regression"])
def case(request, lgb_one, one_column):
    if request.param == "binary":
        return lgb_one, one_column
    df = _table(request.param)
    model = takeoff.train(df, target="y", family="lightgbm", time_budget=30, seed=0, config={"refit": False})
    assert model.task.kind == request.param
    return model, df


def test_contributions_sum_to_the_raw_prediction(case):
    model, df = case
    member = model.blend.members[0]
    X, _ = model.features(df.head(200))
    contrib = member.tree_contributions(X)  # (n, k, d + 1)
    raw = member.booster.predict(X.dense(), raw_score=True, num_iteration=member._best_rounds())
    raw = np.asarray(raw).reshape(len(X), -1)
    assert contrib.shape == (len(X), raw.shape[1], len(X.names) + 1)
    np.testing.assert_allclose(contrib.sum(axis=2), raw, rtol=1e-9, atol=1e-9)


def test_rescaled_attributions_sum_to_output_minus_base(case):
    model, df = case
    member = model.blend.members[0]
    X, _ = model.features(df.head(100))
    output = member.predict(X)
    classes = np.argmax(output, axis=1) if model.task.kind == "multiclass" else (
        np.ones(len(X), dtype=np.int64) if model.task.kind == "binary" else None)
    shap = tree_shap(member, X, output, classes, model.schema.names())
    np.testing.assert_allclose(shap.values.sum(axis=1), shap.output - shap.base, atol=1e-9)
    np.testing.assert_allclose(shap.raw.sum(axis=1) + shap.raw_base, shap.raw_score, atol=1e-9)
    assert np.all((shap.output >= 0) & (shap.output <= 1)) or model.task.kind == "regression"


def test_the_one_column_ranks_first_for_every_task(case):
    model, df = case
    explanation = explain(model, df, rows=10, max_rows=400)
    assert explanation.top("permutation", 1) == ["x0"] and explanation.top("treeshap", 1) == ["x0"]
    assert sum(entry["attributions"][0]["column"] == "x0" for entry in explanation.local) >= 8
    if model.task.kind == "multiclass":  # each row explains its predicted class
        predicted = model.predict(df.head(10))
        assert [entry["explained"] for entry in explanation.local] == list(predicted)


def test_column_occlusion_blanks_one_column_at_a_time(case):
    """The fallback of the text families, checked on any model: numbers, categories, dates."""
    from takeoff.data.conform import conform
    from takeoff.explain.occlusion import column_occlusion
    from takeoff.explain.rows import make_rows, pick

    model, df = case
    given = df.head(4).drop(columns="y")
    frame, _ = conform(given, model.schema)
    rows = make_rows(model, frame, np.arange(4))
    columns = model.schema.names()
    occluded = column_occlusion(model, rows, columns)[0]
    assert occluded.shape == (4, len(columns))
    for j, column in enumerate(columns):
        blank = given.copy()
        blank[column] = None
        expected = pick(rows.output, rows.classes) - pick(model.predict_features(model.features(blank)[0]), rows.classes)
        np.testing.assert_allclose(occluded[:, j], expected, atol=1e-9)
