"""Bring a table into the shape a schema expects: the one validation path shared by training,
``takeoff predict`` and the server.

Each feature column is parsed to its kind's type (numbers to float64, booleans to 0/1,
datetimes to datetime64, categories and text to strings). What cannot be parsed becomes
missing and is counted; in strict mode it is an error naming the rows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from takeoff.data.schema import _FALSE, _TRUE, Kind, Schema, parse_numeric
from takeoff.errors import DataError, SchemaMismatchError, preview


# Up to this many rows, plain Python beats pandas' per-call overhead; past it, vectorised
# pandas wins. Both give the same values (tests/data/test_conform.py checks it).
SMALL_FRAME = 1000
_WORDS = {**dict.fromkeys(_TRUE, 1.0), **dict.fromkeys(_FALSE, 0.0)}  # boolean words


@dataclass
class ConformNotes:
    """What conforming changed, for the user: coerced values, ignored columns."""

    extra_columns: list[str] = field(default_factory=list)
    coerced: dict[str, int] = field(default_factory=dict)  # column -> values set to missing
    # values unlike the training rows: column -> {value: rows} (a few kept) / rows far out of range
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)
    far: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # column -> (rows, min, max)

    def messages(self) -> list[str]:
        out = []
        if self.extra_columns:
            out.append(f"ignored column(s) the model does not use: {preview(self.extra_columns)}")
        for column, count in self.coerced.items():
            out.append(f"column '{column}': {count} value(s) could not be parsed and were treated as missing")
        for column, values in self.unseen.items():
            shown = preview([repr(v) for v in values], 3)
            out.append(f"column '{column}': {sum(values.values())} value(s) not seen in training (or too rare in it: "
                       f"{shown}); predicted as an unknown category")
        for column, (count, low, high) in self.far.items():
            out.append(f"column '{column}': {count} value(s) far outside the training range {low:.4g} to {high:.4g} "
                       "(beyond it by more than its width); the prediction extrapolates there")
        return out

    def add_unseen(self, column: str, values: np.ndarray) -> None:
        """Count the rows of ``values`` (categories the model does not know); a few kept by name."""
        seen = self.unseen.setdefault(column, {})
        names, counts = np.unique(values.astype(str), return_counts=True)
        for name, count in zip(names.tolist(), counts.tolist()):
            if name in seen or len(seen) < 20:
                seen[name] = seen.get(name, 0) + int(count)

    def add_far(self, column: str, rows: int, low: float, high: float) -> None:
        before = self.far.get(column, (0, low, high))[0]
        self.far[column] = (before + rows, low, high)


def conform(
    df: pd.DataFrame,
    schema: Schema,
    where: str = "the data",
    strict: bool = False,
    notes: ConformNotes | None = None,
    row_offset: int = 0,
    target: str | Sequence[str] | None = None,
) -> tuple[pd.DataFrame, ConformNotes]:
    """Select and parse the schema's feature columns of ``df``.

    Args:
        df: the incoming rows.
        schema: the schema decided at training time.
        where: how to name the data in messages (a file name, "the request").
        strict: raise on values that do not parse instead of treating them as missing.
        notes: notes to add to (when conforming a stream of chunks).
        row_offset: index of ``df``'s first row in the whole input, for messages.
        target: the target column (or columns), if present (not reported as ignored).

    Returns:
        The parsed feature columns, in schema order, and the notes.

    Raises:
        SchemaMismatchError: a feature column is missing.
        DataError: strict mode and a value does not parse (names the rows).
    """
    notes = notes or ConformNotes()
    expected = schema.names()
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise SchemaMismatchError(missing, expected, where, available=[str(c) for c in df.columns])
    known = {c.name for c in schema.columns} | _names(target)
    for extra in df.columns:
        if str(extra) not in known and str(extra) not in notes.extra_columns:
            notes.extra_columns.append(str(extra))
    out = {}
    for column in schema.features:
        series = df[column.name]
        parsed, failed = parse_column(series, column.kind)
        if failed.any():
            rows = (np.flatnonzero(failed) + row_offset).tolist()
            if strict:
                bad = series[failed].astype(str).head(5).tolist()
                raise DataError(
                    f"column '{column.name}' expects {column.kind.value} values; {len(rows)} "
                    f"row(s) do not parse, e.g. rows {preview(rows, 5)} with values "
                    f"{preview([repr(b) for b in bad], 5)}. Fix: correct or blank those values.",
                    column=column.name,
                    rows=rows,
                )
            notes.coerced[column.name] = notes.coerced.get(column.name, 0) + len(rows)
        out[column.name] = parsed
    return pd.DataFrame(out, index=df.index), notes


def parse_column(series: pd.Series, kind: Kind) -> tuple[pd.Series, np.ndarray]:
    """Parse one column to its kind's type; return it and a mask of values that failed."""
    present = series.notna().to_numpy()
    if kind == Kind.NUMERIC:
        values, _ = parse_numeric(series)
        return values, present & values.isna().to_numpy()
    if kind == Kind.BOOLEAN:
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            values[(values != 0.0) & (values != 1.0)] = np.nan
        elif len(series) > SMALL_FRAME:
            lowered = series.astype("string").str.strip().str.lower()
            values = np.full(len(series), np.nan)
            values[lowered.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = 1.0
            values[lowered.isin(_FALSE).fillna(False).to_numpy(dtype=bool)] = 0.0
        else:
            # plain Python over a few values: pandas string methods cost ~100 us per call
            raw = series.to_numpy(dtype=object)
            values = np.array(
                [_WORDS.get(str(v).strip().lower(), np.nan) if p else np.nan for v, p in zip(raw, present)],
                dtype=np.float64,
            )
        return pd.Series(values, index=series.index, name=series.name), present & np.isnan(values)
    if kind == Kind.DATETIME:
        if pd.api.types.is_datetime64_any_dtype(series):
            values = series
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert(None)
        return values, present & values.isna().to_numpy()
    if kind == Kind.IMAGE:  # paths, bytes or arrays: the feature pipeline decodes them
        return series.astype(object), np.zeros(len(series), dtype=bool)
    # categorical and text: strings, with integral floats shown as ints ("3", not "3.0")
    return as_strings(series), np.zeros(len(series), dtype=bool)


def as_strings(series: pd.Series) -> pd.Series:
    """Values as stripped strings, missing as None (object dtype); 3.0 becomes "3" so that a
    column read as floats at predict time matches the same column read as integers at
    training time."""
    if pd.api.types.is_float_dtype(series):
        finite = series.dropna()
        if len(finite) and np.all(np.mod(finite.to_numpy(), 1) == 0):
            series = series.astype("Int64")
    if len(series) > SMALL_FRAME:  # vectorised string methods win on big chunks
        values = series.astype("string").str.strip().to_numpy(dtype=object, na_value=None)
    else:  # ... and plain Python on the few rows of a request
        raw = series.to_numpy(dtype=object)
        missing = pd.isna(raw)
        values = np.array([None if m else str(v).strip() for v, m in zip(raw, missing)], dtype=object)
    return pd.Series(values, index=series.index, name=series.name, dtype=object)


# ------------------------------------------------------------------ records (a few dicts)
def conform_records(records: Sequence[dict[str, Any]], schema: Schema,
                    target: str | Sequence[str] | None = None) -> dict[str, np.ndarray] | None:
    """The schema's feature columns of a few already-typed records, without building a
    DataFrame (the server's single-record path: pandas costs milliseconds per call).

    Only values whose parse is trivial are taken: numbers (finite floats and ints) for numeric
    columns, bools or 0/1 for boolean ones, strings for categories and text, and None for
    missing. Anything else (a number given as a string, a datetime column, a value that would
    not parse, a field the schema does not know) returns None, and the caller goes through
    :func:`conform`, which gives every message and note. So both paths give the same values
    (tests/data/test_conform.py checks it).
    """
    known = {c.name for c in schema.columns} | _names(target)
    if not all(isinstance(r, dict) and r.keys() <= known for r in records):
        return None
    out: dict[str, np.ndarray] = {}
    for column in schema.features:
        name, kind = column.name, column.kind
        try:
            raw = [r[name] for r in records]
        except KeyError:
            return None  # conform names the missing column
        if kind == Kind.NUMERIC:
            values = []
            for v in raw:
                if v is None:
                    values.append(math.nan)
                elif type(v) in (float, int) and math.isfinite(v):
                    values.append(float(v))
                else:
                    return None
            out[name] = np.array(values, dtype=np.float64)
        elif kind == Kind.BOOLEAN:
            values = []
            for v in raw:
                if v is None:
                    values.append(math.nan)
                elif type(v) in (bool, int, float) and v in (0, 1):
                    values.append(float(v))
                elif type(v) is str and v.strip().lower() in _WORDS:
                    values.append(_WORDS[v.strip().lower()])
                else:
                    return None
            out[name] = np.array(values, dtype=np.float64)
        elif kind in (Kind.CATEGORICAL, Kind.TEXT):
            if not all(v is None or type(v) is str for v in raw):
                return None
            array = np.empty(len(raw), dtype=object)
            array[:] = [None if v is None else v.strip() for v in raw]
            out[name] = array
        else:  # datetimes: pandas parses them
            return None
    return out


def _names(target: str | Sequence[str] | None) -> set[str]:
    if target is None:
        return set()
    return {target} if isinstance(target, str) else set(target)
