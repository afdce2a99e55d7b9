"""Checks of a numeric column's values: text that does not parse as a number, infinities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from takeoff.data.checks.finding import Finding, rows_preview
from takeoff.errors import preview


def bad_numbers(series: pd.Series, name: str) -> list[Finding]:
    present = series.notna().to_numpy()
    if pd.api.types.is_bool_dtype(series):
        return []
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(numbers)
    unparsed = present & np.isnan(numbers)
    out = []
    if unparsed.any():
        n = int(unparsed.sum())
        examples = pd.unique(series[unparsed].astype(str))[:3]
        out.append(
            Finding(
                "mixed_types",
                "warning",
                f"mixed types: {n} value(s) like {preview([repr(e) for e in examples], 3)} do not "
                f"parse as numbers and are treated as missing (rows {rows_preview(unparsed, series.index)})",
                "correct those values at the source, or blank them; if the column is really a "
                "category, make all its values non-numeric",
                column=name,
                count=n,
            )
        )
    if infinite.any():
        n = int(infinite.sum())
        out.append(
            Finding(
                "infinite",
                "warning",
                f"{n} infinite value(s) (rows {rows_preview(infinite, series.index)}); they are treated "
                "as missing",
                "replace them at the source (often a division by zero) with a blank or a large "
                "finite value",
                column=name,
                count=n,
            )
        )
    return out
