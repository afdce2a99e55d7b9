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
