"""conform's small-frame (plain Python) and large-frame (vectorised) paths agree."""

from __future__ import annotations

import numpy as np
import pandas as pd

from takeoff.data import conform as conform_module
from takeoff.data.conform import parse_column
from takeoff.data.schema import Kind


def test_small_and_large_paths_give_the_same_values(monkeypatch):
    values = [" rent", "owner ", None, "Yes", "no", "3", 3.0, np.nan, "TRUE", "x"] * 30
    series = pd.Series(values, dtype=object)
    results = {}
    for small in (10_000, 0):  # everything small, then everything large
        monkeypatch.setattr(conform_module, "SMALL_FRAME", small)
        results[small] = {kind: parse_column(series, kind) for kind in (Kind.CATEGORICAL, Kind.BOOLEAN)}
    for kind in (Kind.CATEGORICAL, Kind.BOOLEAN):
        (a, fa), (b, fb) = results[10_000][kind], results[0][kind]
        pd.testing.assert_series_equal(a, b)
        np.testing.assert_array_equal(fa, fb)
    cats = results[0][Kind.CATEGORICAL][0]
    assert cats.iloc[0] == "rent" and cats.iloc[2] is None and cats.iloc[6] == "3.0"
    bools, failed = results[0][Kind.BOOLEAN]
    assert bools.iloc[3] == 1.0 and bools.iloc[4] == 0.0 and failed[0] and not failed[2]


def _schema():
    from takeoff.data.schema import Column, Schema

    return Schema(columns=[Column("n", Kind.NUMERIC, "float64"), Column("b", Kind.BOOLEAN, "bool"),
                           Column("c", Kind.CATEGORICAL, "object"), Column("t", Kind.TEXT, "object")])


def test_records_path_gives_the_frame_paths_values():
    from takeoff.data.conform import conform, conform_records

    records = [
        {"n": 1.5, "b": True, "c": " rent ", "t": "a few words here"},
        {"n": None, "b": None, "c": None, "t": None},
        {"n": 3, "b": 0, "c": "", "t": ""},
        {"n": -2e300, "b": 1.0, "c": "owner", "t": "x"},
        {"n": 0, "b": " Yes", "c": "x", "t": "y"},
        {"n": 0, "b": "f", "c": "x", "t": "y"},
    ]
    schema = _schema()
    for rows in ([r] for r in records):  # one record at a time, as the server sees them
        fast = conform_records(rows, schema)
        frame, notes = conform(pd.DataFrame.from_records(rows), schema)
        assert fast is not None and not notes.messages()
        for name in ("n", "b", "c", "t"):
            assert list(fast[name]) == list(frame[name]) or (
                np.isnan(fast[name]).all() and frame[name].isna().all()), name
    both = conform_records(records, schema)
    assert np.isnan(both["n"][1]) and both["n"][2] == 3.0 and both["c"].tolist()[:4] == ["rent", None, "", "owner"]
    assert both["b"].tolist()[4:] == [1.0, 0.0]


def test_records_path_hands_anything_unusual_to_conform():
    from takeoff.data.conform import conform_records

    schema = _schema()
    clean = {"n": 1.0, "b": True, "c": "a", "t": "b"}
    for bad in ({"n": "12"}, {"n": float("inf")}, {"n": float("nan")}, {"n": True}, {"b": 2},
                {"b": "maybe"}, {"c": 3}, {"t": 1.0}):
        assert conform_records([{**clean, **bad}], schema) is None, bad
    assert conform_records([{"n": 1.0}], schema) is None  # a missing column: conform names it
    assert conform_records([{**clean, "extra": 1}], schema) is None  # conform reports it
    assert conform_records([{**clean, "y": 1}], schema, target="y") is not None
