"""The fitted feature pipeline: train-only statistics, unseen values, JSON state round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from takeoff.data.conform import conform
from takeoff.data.schema import infer_schema
from takeoff.features.pipeline import FeatureParams, FeaturePipeline


def frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "plan": rng.choice(["basic", "pro", "team"], n),
        "joined": pd.date_range("2023-01-01", periods=n, freq="37h").astype(str),
        "vip": rng.choice(["yes", "no"], n),
        "y": rng.integers(0, 2, n),
    })


def fitted(df, **params):
    schema = infer_schema(df, "y")
    conformed, _ = conform(df, schema)
    return schema, FeaturePipeline(schema, FeatureParams(**params)).fit(conformed)


def test_shapes_names_and_sources():
    df = frame()
    schema, pipe = fitted(df)
    X = pipe.transform(conform(df, schema)[0])
    assert X.categorical_names == ["plan"] and X.cardinalities == [5]
    assert "age" in X.numeric_names and any(n.startswith("joined__") for n in X.numeric_names)
    assert len(X.sources) == X.numeric.shape[1] + X.categorical.shape[1]
    assert X.numeric.dtype == np.float32 and X.categorical.dtype == np.int64
    assert abs(X.numeric[:, X.numeric_names.index("age")].mean()) < 1e-5


def test_missing_unseen_and_rare_categories():
    df = frame()
    df.loc[:9, "age"] = np.nan
    schema, pipe = fitted(df)
    assert "age__missing" in pipe.transform(conform(df, schema)[0]).numeric_names
    new = df.head(3).copy()
    new["plan"] = ["basic", "enterprise", None]
    X = pipe.transform(conform(new, schema)[0])
    basic = pipe.categories["plan"].index("basic") + 2
    assert X.categorical[:, 0].tolist() == [basic, 1, 0]


def test_vocabulary_is_capped():
    df = pd.DataFrame({"c": [f"v{i % 3000}" for i in range(9000)], "y": [0, 1] * 4500})
    _, pipe = fitted(df, max_categories=100)
    assert len(pipe.categories["c"]) == 100


def test_state_round_trip_is_exact():
    df = frame()
    schema, pipe = fitted(df)
    state = json.loads(json.dumps(pipe.state()))
    again = FeaturePipeline.from_state(schema, state)
    a = pipe.transform(conform(df, schema)[0])
    b = again.transform(conform(df, schema)[0])
    np.testing.assert_array_equal(a.numeric, b.numeric)
    np.testing.assert_array_equal(a.categorical, b.categorical)


def test_integers_read_as_floats_match_their_category():
    df = pd.DataFrame({"zone": [1, 2, 3, 1, 2, 3] * 20, "y": [0, 1] * 60})
    schema = infer_schema(df, "y")
    schema.columns[0].kind = schema.columns[0].kind.__class__("categorical")
    pipe = FeaturePipeline(schema).fit(conform(df, schema)[0])
    as_float = pd.DataFrame({"zone": [1.0, 2.0, np.nan]})
    codes = pipe.transform(conform(as_float, schema)[0]).categorical[:, 0]
    assert codes[0] >= 2 and codes[1] >= 2 and codes[2] == 0


def test_absurd_numbers_stay_finite():
    df = frame()
    schema, pipe = fitted(df)
    new = df.head(2).copy()
    new["age"] = [1e300, -1e300]
    X = pipe.transform(conform(new, schema)[0])
    assert np.isfinite(X.numeric).all()
