"""The training profile and drift statistics (takeoff.data.profile) on a real table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from takeoff.data.conform import conform
from takeoff.data.profile import compare, profile_frame, psi
from takeoff.data.schema import Column, Kind, Schema, infer_schema


def test_shifted_copy_is_flagged_on_the_shifted_columns_only(credit):
    schema = infer_schema(credit, "Status")
    train = credit.sample(2500, random_state=1)
    new = credit.drop(index=train.index).copy()
    profile = profile_frame(conform(train, schema, target="Status")[0], schema)

    same = compare(profile, conform(new, schema, target="Status")[0])
    assert same["drifted"] == []

    rng = np.random.default_rng(0)
    new["Income"] = new["Income"] * 1.6 + 40  # a number shifted
    new["Job"] = np.where(rng.random(len(new)) < 0.6, "freelance", new["Job"])  # a category grows
    new.loc[rng.random(len(new)) < 0.3, "Assets"] = np.nan  # a number goes missing
    new["Home"] = new["Home"].replace({"owner": "co-owner"})  # a category never seen
    shifted = compare(profile, conform(new, schema, target="Status")[0])
    assert sorted(shifted["drifted"]) == ["Assets", "Home", "Income", "Job"]
    by = {c["column"]: c for c in shifted["columns"]}
    assert by["Income"]["ks"] > 0.3 and by["Income"]["psi"] >= 0.2
    assert by["Assets"]["missing_new"] - by["Assets"]["missing_train"] > 0.2
    assert by["Home"]["new_categories"] == ["co-owner"] and by["Home"]["new_category_share"] > 0.3


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    e = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(e, e) == 0.0
    assert 0 < psi(e, np.array([0.3, 0.2, 0.25, 0.25])) < psi(e, np.array([0.7, 0.1, 0.1, 0.1]))


def test_profile_keeps_missing_rates_and_ranges():
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "c": ["a", "b", None, "a"]})
    schema = infer_schema(frame.assign(y=[0, 1, 0, 1]), "y")
    profile = profile_frame(frame, schema)
    assert profile["columns"]["x"]["missing"] == 0.25 and profile["columns"]["x"]["max"] == 4.0
    assert profile["columns"]["c"]["top"] == {"a": 2 / 3, "b": 1 / 3}


def test_dates_and_texts_are_profiled_as_numbers():
    """Dates as seconds (whatever resolution pandas parses to), texts by their length."""
    dates = pd.Series(pd.to_datetime(["2024-01-01", "2024-06-01", None, "2024-03-01"]))
    frame = pd.DataFrame({"d": dates, "t": ["short", "a much longer text", None, "mid text"]})
    schema = Schema([Column("d", Kind.DATETIME, "datetime64[ns]"), Column("t", Kind.TEXT, "object")])
    profile = profile_frame(frame, schema)
    assert profile["columns"]["t"]["max"] == len("a much longer text")
    later = frame.assign(d=frame["d"].astype("datetime64[us]") + pd.Timedelta(days=400))
    result = compare(profile, later)
    assert result["drifted"] == ["d"]
