"""Every bad-input case from the foundation issue, through the public API: a clear error (or a
clear, counted handling), and nothing half-written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.errors import (
    ColumnNotFoundError,
    DataError,
    DataSourceError,
    SourceNotFoundError,
    TargetError,
)

FAST = {"time_budget": 15, "family": "lightgbm"}


@pytest.fixture
def out(tmp_path):
    return tmp_path / "bundle"


def assert_nothing_written(out):
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_missing_file(tmp_path, out):
    (tmp_path / "credit.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SourceNotFoundError, match="credit.csv") as info:
        takeoff.train(tmp_path / "credt.csv", target="b", out=out)
    assert isinstance(info.value, FileNotFoundError)
    assert_nothing_written(out)


def test_empty_file(tmp_path, out):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataSourceError, match="empty"):
        takeoff.train(tmp_path / "empty.csv", target="y", out=out)
    assert_nothing_written(out)


def test_header_only(tmp_path, out):
    (tmp_path / "h.csv").write_text("x,y\n")
    with pytest.raises(DataSourceError, match="header but no rows"):
        takeoff.train(tmp_path / "h.csv", target="y", out=out)
    assert_nothing_written(out)


def test_target_missing_lists_columns_and_suggests(credit_small, out):
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'Status'") as info:
        takeoff.train(credit_small, target="status", out=out)
    assert "Seniority" in str(info.value) and isinstance(info.value, KeyError)
    assert_nothing_written(out)


def test_target_constant(credit_small, out):
    with pytest.raises(TargetError, match="constant"):
        takeoff.train(credit_small.assign(Status="good"), target="Status", out=out)
    assert_nothing_written(out)


def test_one_row_for_a_class(credit_small, out):
    df = credit_small.copy()
    df.loc[0, "Status"] = "unknown"
    with pytest.raises(TargetError, match=r"'unknown' \(1 row\)") as info:
        takeoff.train(df, target="Status", out=out, **FAST)
    assert "drop_rare_classes" in str(info.value)
    assert_nothing_written(out)
    # the fix the message names works: the class is dropped, with a warning
    model = takeoff.train(df, target="Status", config={"drop_rare_classes": True}, **FAST)
    assert model.classes == ["good", "bad"]


def test_non_utf8_file(credit_small, tmp_path, out):
    df = credit_small.copy()
    df["Home"] = df["Home"].replace({"rent": "lóyer"})
    path = tmp_path / "latin.csv"
    df.to_csv(path, index=False, encoding="latin-1")
    with pytest.raises(DataSourceError, match="UTF-8") as info:
        takeoff.train(path, target="Status", out=out)
    assert "latin-1" in str(info.value)
    assert_nothing_written(out)
    model = takeoff.train(path, target="Status", encoding="latin-1", **FAST)
    assert "lóyer" in model.pipeline.categories["Home"]


def test_mixed_type_column_is_parsed_and_counted(credit_small, caplog):
    df = credit_small.astype({"Income": object})
    df.loc[df.index[:5], "Income"] = "n/a?"
    model = takeoff.train(df, target="Status", **FAST)
    income = next(c for c in model.schema.columns if c.name == "Income")
    assert income.kind.value == "numeric" and income.bad_values == 5
    assert any(f["check"] == "mixed_types" and f["column"] == "Income" for f in model.manifest["findings"])


def test_nan_and_inf_are_treated_as_missing(credit_small):
    df = credit_small.copy()
    df.loc[df.index[:20], "Assets"] = np.inf
    df.loc[df.index[20:40], "Assets"] = -np.inf
    df.loc[df.index[40:60], "Debt"] = np.nan
    model = takeoff.train(df, target="Status", **FAST)
    stats = model.pipeline.numeric["Assets"]
    assert np.isfinite([stats["mean"], stats["std"], stats["median"]]).all() and stats["indicator"]
    pred = model.predict_proba(df.head(60))
    assert np.isfinite(pred.to_numpy()).all()
    assert any(f["check"] == "infinite" for f in model.manifest["findings"])


def test_50000_level_categorical(tmp_path):
    rng = np.random.default_rng(0)
    n = 55_000
    city = np.concatenate([np.arange(50_000), rng.integers(0, 50_000, n - 50_000)])
    df = pd.DataFrame({
        "city": [f"c{c}" for c in city],
        "x": rng.normal(size=n),
    })
    df["y"] = ((df["x"] + (city % 2) * 0.5 + rng.normal(scale=0.5, size=n)) > 0.3).map({True: "yes", False: "no"})
    model = takeoff.train(df, target="y", time_budget=30, family="lightgbm")
    assert len(model.pipeline.categories["city"]) <= 1000
    assert any(f["check"] == "high_cardinality" and f["column"] == "city" for f in model.manifest["findings"])
    assert model.metrics["roc_auc"] > 0.75


def test_strict_mode_fails_on_leakage(credit_small, out):
    leaky = credit_small.assign(leak=(credit_small["Status"] == "bad").astype(int))
    with pytest.raises(DataError, match="leak"):
        takeoff.train(leaky, target="Status", out=out, config={"strict": True}, **FAST)
    assert_nothing_written(out)


def test_too_few_rows(credit_small, out):
    with pytest.raises(TargetError, match="at least 10"):
        tiny = pd.concat([credit_small[credit_small.Status == s].head(3) for s in ("good", "bad")])
        takeoff.train(tiny, target="Status", out=out)
    assert_nothing_written(out)


def test_existing_output_directory_is_not_touched(credit_small, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="already exists"):
        takeoff.train(credit_small, target="Status", out=out, **FAST)
    assert (out / "notes.txt").read_text() == "mine"
