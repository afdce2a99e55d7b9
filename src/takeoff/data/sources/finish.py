"""Checking what was read: unique column names and at least one row."""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from takeoff.data.sources.files import csv_options
from takeoff.data.sources.source import Source
from takeoff.errors import DataError, DataSourceError, preview


def finish(df: pd.DataFrame, src: Source, header_only: bool) -> pd.DataFrame:
    """Check what was read: unique column names and at least one row."""
    df.columns = [str(c) for c in df.columns]
    _check_duplicate_columns(df, src)
    if len(df) == 0:
        if src.engine is not None:
            problem = "returned no rows" if src.sql is not None else "has no rows"
            raise DataSourceError(src.name, problem, fix="check the query's filter, or the table name")
        if header_only and src.fmt in ("csv", "tsv", "excel"):
            raise DataSourceError(
                src.name,
                f"has a header but no rows (columns: {preview(list(df.columns))})",
                fix="export the data again, including its rows",
            )
        raise DataSourceError(src.name, "has no rows", fix="check that the data was fully written")
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0):
        df = df.reset_index(drop=True)
    return df


def _check_duplicate_columns(df: pd.DataFrame, src: Source) -> None:
    names = list(df.columns)
    duplicates = [n for n, k in Counter(names).items() if k > 1]
    if not duplicates and src.fmt in ("csv", "tsv", "excel"):
        # pandas renames a repeated header 'a' to 'a.1'; read the raw header to tell those
        # apart from a real column named 'a.1'
        present = set(names)
        suspects = [n for n in names if (m := re.fullmatch(r"(.+)\.(\d+)", n)) and m.group(1) in present]
        if suspects:
            duplicates = [n for n, k in Counter(_raw_header(src)).items() if k > 1]
    if duplicates:
        shown = preview([repr(d) for d in duplicates])
        raise DataError(
            f"{src.name}: column name(s) {shown} appear more than once in the header; each "
            "column needs its own name. Fix: rename the repeated columns (e.g. 'x' and 'x_2').",
            column=str(duplicates[0]),
        )


def _raw_header(src: Source) -> list[str]:
    if src.fmt == "excel":
        raw = pd.read_excel(src.path, sheet_name=0, header=None, nrows=1)
    else:
        options = {**csv_options(src), "low_memory": True}
        raw = pd.read_csv(src.path, header=None, nrows=1, dtype=str, keep_default_na=False, **options)
    return [str(v) for v in raw.iloc[0].tolist()] if len(raw) else []
