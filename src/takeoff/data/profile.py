"""A table's profile at training time, and how far new data has drifted from it.

The profile keeps, per feature column, what is needed to compare new rows without the training
data: numbers (and datetimes, and the length of texts) as decile bins with their shares and 21
quantiles with the training CDF there; categories (and booleans) as their most frequent values
with shares; and every column's missing rate. The same is kept of the model's predictions.

Drift per column is the population stability index (PSI) over those bins, the
Kolmogorov–Smirnov distance at the stored quantiles (numbers), the share of new categories,
and the change in the missing rate. A column is flagged when its PSI reaches ``psi`` (0.2 is
the usual "significant shift"), its missing rate moves by ``missing`` or more, or new
categories make up ``new_categories`` of its rows.

A few lines of numpy were chosen over Evidently: these statistics are what Evidently computes
for tabular drift, and Evidently pulls in dozens of packages (plotly, nltk, ...) for them.

Example:
    >>> profile = profile_frame(train_frame, schema)
    >>> report = compare(profile, new_frame)
    >>> [c["column"] for c in report["columns"] if c["drifted"]]
    ['income']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from takeoff.data.schema import Kind, Schema

VERSION = 1
TOP = 30  # categories kept per column
QUANTILES = np.linspace(0, 1, 21)
EPS = 1e-4  # share given to an empty bin, so that PSI stays finite
THRESHOLDS = {"psi": 0.2, "missing": 0.1, "new_categories": 0.1}


# ---------------------------------------------------------------------- profile
def numeric_values(series: pd.Series | np.ndarray, kind: str) -> np.ndarray:
    """The numbers a column is profiled by: its values, datetimes as seconds, texts as lengths
    (missing as NaN)."""
    if kind == Kind.TEXT.value:
        return np.array([len(v) if isinstance(v, str) else np.nan for v in series], dtype=np.float64)
    if kind == Kind.DATETIME.value:
        values = pd.to_datetime(pd.Series(series), errors="coerce")
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert(None)
        # seconds since 1970, whatever the resolution (ns, us) pandas parsed to
        return (values - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(series, np.ndarray) and series.dtype.kind in "fiub":  # the server's few records: no pandas
        return series.astype(np.float64, copy=False)
    if isinstance(series, pd.Series) and pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(pd.to_numeric(pd.Series(series), errors="coerce"), dtype=np.float64)


NUMERIC_KINDS = frozenset({Kind.NUMERIC.value, Kind.DATETIME.value, Kind.TEXT.value})  # profiled as numbers


def is_numeric_kind(kind: str) -> bool:
    return kind in NUMERIC_KINDS


def profile_series(values, kind: str) -> dict[str, Any]:
    """The profile of one column's values (``kind`` as in the schema)."""
    n = len(values)
    if is_numeric_kind(kind):
        x = numeric_values(values, kind)
        present = x[~np.isnan(x)]
        out: dict[str, Any] = {"kind": kind, "missing": float(1 - len(present) / n) if n else 0.0}
        if not len(present):
            return {**out, "edges": [], "shares": [], "quantiles": [], "cdf": []}
        edges = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9)))
        shares = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1) / len(present)
        quantiles = np.quantile(present, QUANTILES)
        cdf = np.searchsorted(np.sort(present), quantiles, side="right") / len(present)
        return {**out, "edges": edges.tolist(), "shares": shares.tolist(), "quantiles": quantiles.tolist(),
                "cdf": cdf.tolist(), "min": float(present.min()), "max": float(present.max())}
    present = pd.Series(values, dtype=object).dropna()
    counts = present.astype(str).value_counts()
    top = counts.head(TOP)
    total = max(len(present), 1)
    return {"kind": kind, "missing": float(1 - len(present) / n) if n else 0.0,
            "top": {str(k): float(v / total) for k, v in top.items()},
            "other": float(1 - top.sum() / total) if len(present) else 0.0,
            "complete": bool(len(counts) <= TOP)}


def profile_frame(frame: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """The profile of the feature columns of a conformed frame (images are left out)."""
    columns = {}
    for column in schema.features:
        if column.kind != Kind.IMAGE and column.name in frame.columns:
            columns[column.name] = profile_series(frame[column.name], column.kind.value)
    return {"version": VERSION, "rows": int(len(frame)), "columns": columns}


def prediction_profile(predictions: np.ndarray, task) -> dict[str, Any]:
    """The profile of a model's predictions: labels as categories, regression values as numbers."""
    if task.is_classification or task.is_multilabel:
        return profile_series(np.asarray(predictions, dtype=object), Kind.CATEGORICAL.value)
    return profile_series(np.asarray(predictions, dtype=np.float64), Kind.NUMERIC.value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


# ---------------------------------------------------------------------- drift
def bin_codes(stats: dict[str, Any], values) -> np.ndarray:
    """Each value's bin in the profile ``stats``: 0.. for bins (the last category bin is
    "other"), -1 for missing."""
    if is_numeric_kind(stats["kind"]):
        x = numeric_values(values, stats["kind"])
        codes = np.searchsorted(np.asarray(stats["edges"]), x, side="right")
        return np.where(np.isnan(x), -1, codes)
    index = {k: i for i, k in enumerate(stats["top"])}
    other = len(index)
    return np.array([-1 if _missing(v) else index.get(str(v), other) for v in values], dtype=np.int64)


def expected_shares(stats: dict[str, Any]) -> np.ndarray:
    if is_numeric_kind(stats["kind"]):
        return np.asarray(stats["shares"], dtype=np.float64)
    return np.asarray([*stats["top"].values(), stats["other"]], dtype=np.float64)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two share vectors over the same bins."""
    e, a = np.maximum(expected, EPS), np.maximum(actual, EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def compare_counts(stats: dict[str, Any], counts: np.ndarray, missing: int) -> dict[str, Any]:
    """Drift of one column from its bin counts (the last category bin is "other") and its
    number of missing values."""
    present = int(counts.sum())
    total = present + missing
    expected = expected_shares(stats)
    out: dict[str, Any] = {"kind": stats["kind"], "rows": total,
                           "missing_train": round(stats["missing"], 4),
                           "missing_new": round(missing / total, 4) if total else None}
    if present and len(expected):
        out["psi"] = round(psi(expected, counts / present), 4)
    else:
        out["psi"] = None
    if not is_numeric_kind(stats["kind"]) and stats.get("complete") and present:
        out["new_category_share"] = round(float(counts[-1] / present), 4)
    return out


def compare_column(stats: dict[str, Any], values) -> dict[str, Any]:
    """Drift of one column of new values from its profile ``stats``."""
    codes = bin_codes(stats, values)
    width = len(expected_shares(stats))
    out = compare_counts(stats, np.bincount(codes[codes >= 0], minlength=width)[:width].astype(np.float64),
                         int((codes < 0).sum()))
    if is_numeric_kind(stats["kind"]) and stats["quantiles"]:
        x = numeric_values(values, stats["kind"])
        x = np.sort(x[~np.isnan(x)])
        if len(x):
            new_cdf = np.searchsorted(x, np.asarray(stats["quantiles"]), side="right") / len(x)
            out["ks"] = round(float(np.max(np.abs(new_cdf - np.asarray(stats["cdf"])))), 4)
            out["out_of_range"] = round(float(np.mean((x < stats["min"]) | (x > stats["max"]))), 4)
    elif not is_numeric_kind(stats["kind"]) and stats.get("complete"):
        seen = set(stats["top"])
        new = pd.Series([str(v) for v in values if not _missing(v) and str(v) not in seen]).value_counts()
        out["new_categories"] = [str(k) for k in new.index[:5]]
    return out


def flag(result: dict[str, Any], thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Add ``drifted`` and ``reasons`` to a column's drift result."""
    t = {**THRESHOLDS, **(thresholds or {})}
    reasons = []
    if result.get("psi") is not None and result["psi"] >= t["psi"]:
        reasons.append(f"PSI {result['psi']:.3f} ≥ {t['psi']}")
    if result.get("missing_new") is not None and abs(result["missing_new"] - result["missing_train"]) >= t["missing"]:
        reasons.append(f"missing {result['missing_train']:.1%} → {result['missing_new']:.1%}")
    if result.get("new_category_share", 0) >= t["new_categories"]:
        reasons.append(f"{result['new_category_share']:.1%} of rows in new categories")
    return {**result, "drifted": bool(reasons), "reasons": reasons}


def compare(profile: dict[str, Any], frame: pd.DataFrame | dict[str, Any], predictions=None,
            thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """How far ``frame`` (conformed new rows) and its ``predictions`` drifted from ``profile``.

    Returns:
        ``{"rows", "columns": [{"column", "kind", "psi", "ks", "missing_train", "missing_new",
        "new_categories", "drifted", "reasons", ...}], "prediction": {...} or None,
        "drifted": [names], "thresholds"}``.
    """
    t = {**THRESHOLDS, **(thresholds or {})}
    columns = []
    for name, stats in profile["columns"].items():
        if name in frame:
            columns.append({"column": name, **flag(compare_column(stats, frame[name]), t)})
    prediction = None
    if predictions is not None and profile.get("prediction"):
        prediction = flag(compare_column(profile["prediction"], predictions), t)
    rows = len(frame) if isinstance(frame, pd.DataFrame) else len(next(iter(frame.values()), []))
    return {"rows": rows, "columns": columns, "prediction": prediction,
            "drifted": [c["column"] for c in columns if c["drifted"]], "thresholds": t}
