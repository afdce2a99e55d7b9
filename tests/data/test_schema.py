"""Column kinds and task inference on real and planted columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from takeoff.data.schema import Kind, Task, infer_kind, infer_schema, infer_task
from takeoff.errors import TargetError, UnknownNameError


def kind(values) -> Kind:
    s = pd.Series(values)
    return infer_kind(s, len(s))[0]


def test_kinds():
    n = 100
    assert kind(np.random.default_rng(0).normal(size=n)) == Kind.NUMERIC
    assert kind(["a", "b", "c", "a"] * 25) == Kind.CATEGORICAL
    assert kind(["yes", "no"] * 50) == Kind.BOOLEAN
    assert kind([True, False] * 50) == Kind.BOOLEAN
    assert kind(pd.date_range("2024-01-01", periods=n).astype(str)) == Kind.DATETIME
    assert kind(pd.date_range("2024-01-01", periods=n)) == Kind.DATETIME
    assert kind([f"user-{i:05d}" for i in range(n)]) == Kind.IDENTIFIER
    assert kind(np.arange(1, n + 1)) == Kind.IDENTIFIER
    assert kind(["same"] * n) == Kind.CONSTANT
    assert kind([None] * n) == Kind.EMPTY
    words = ["the parcel arrived late and damaged", "great service quick reply", "refund never came back to me"]
    assert kind([f"{words[i % 3]} order {i}" for i in range(n)]) == Kind.TEXT


def test_mostly_numeric_text_is_numeric_with_bad_values_counted():
    values = [str(v) for v in range(98)] + ["n/a", "oops"]
    k, bad = infer_kind(pd.Series(values), 100)
    assert k == Kind.NUMERIC and bad == 2


def test_real_credit_schema(credit):
    schema = infer_schema(credit, "Status")
    kinds = {c.name: c.kind for c in schema.columns}
    assert "Status" not in kinds
    assert kinds["Home"] == Kind.CATEGORICAL and kinds["Income"] == Kind.NUMERIC and kinds["Records"] == Kind.BOOLEAN


@pytest.mark.parametrize(
    "values, expected",
    [
        (["good", "bad"] * 10, "binary"),
        ([0, 1, 2, 3, 4] * 10, "multiclass"),
        (list(np.linspace(0, 1, 50)), "regression"),
        (list(range(300)), "regression"),
        ([str(i % 10) for i in range(100)], "multiclass"),
    ],
)
def test_task_inference(values, expected):
    assert infer_task(pd.Series(values), "y").kind == expected


def test_ten_classes_never_binary():
    task = infer_task(pd.Series(list(range(10)) * 5), "digit")
    assert task.kind == "multiclass" and task.n_outputs == 10


def test_positive_label_choice():
    assert infer_task(pd.Series(["No", "Yes", "No"]), "churn").positive_label == "Yes"
    assert infer_task(pd.Series([0, 1, 0]), "y").positive_label == 1
    assert infer_task(pd.Series(["benign"] * 5 + ["malignant"] * 2), "d").positive_label == "malignant"
    assert infer_task(pd.Series(["a", "b", "b"]), "y", positive_label="b").positive_label == "b"
    with pytest.raises(TargetError, match="not a value"):
        infer_task(pd.Series(["a", "b"]), "y", positive_label="c")


def test_task_errors():
    with pytest.raises(TargetError, match="constant"):
        infer_task(pd.Series([1, 1, 1]), "y")
    with pytest.raises(TargetError, match="not numeric"):
        infer_task(pd.Series(["a", "b", "c"]), "y", override="regression")
    with pytest.raises(UnknownNameError, match="binary"):
        infer_task(pd.Series([1, 2]), "y", override="ranking")


def test_encode_decode_round_trip_keeps_types():
    task = Task("multiclass", "y", [3, 5, 7])
    codes = task.encode(pd.Series([7.0, 3, "5"]))
    assert codes.tolist() == [2, 0, 1]
    assert task.decode(codes).tolist() == [7, 3, 5] and task.decode(codes).dtype == np.int64
    with pytest.raises(Exception, match="does not know"):
        task.encode(pd.Series([9]))
