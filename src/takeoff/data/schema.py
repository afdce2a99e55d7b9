"""Column kinds, the inferred schema of a table, and the task inferred from its target.

The schema is decided once, on the training data, and saved in the bundle; at predict time
the same schema drives how incoming columns are read and coerced.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from takeoff.errors import ColumnNotFoundError, DataError, TargetError, preview


class Kind(str, Enum):
    """What a column holds, which decides how it is turned into features."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"
    IMAGE = "image"  # image paths, bytes or arrays: decoded by the feature pipeline
    IDENTIFIER = "identifier"  # unique per row: carries no signal, dropped
    CONSTANT = "constant"  # one value: carries no signal, dropped
    EMPTY = "empty"  # no values at all, dropped


FEATURE_KINDS = (Kind.NUMERIC, Kind.CATEGORICAL, Kind.BOOLEAN, Kind.DATETIME, Kind.TEXT, Kind.IMAGE)
TASKS = ("binary", "multiclass", "regression")

_TRUE = {"true", "yes", "y", "t", "1"}
_FALSE = {"false", "no", "n", "f", "0"}
_POSITIVE_WORDS = {"1", "true", "yes", "y", "positive", "pos", "bad", "churn", "fraud", "default"}

# A string column whose values parse as numbers this often is numeric with a few bad values.
NUMERIC_PARSE_SHARE = 0.95
MAX_CLASSES = 200  # a target with more distinct values than this (and numbers) is regression


@dataclass
class Column:
    """One input column as the model sees it."""

    name: str
    kind: Kind
    dtype: str  # pandas dtype at read time, for messages and the API's input schema
    n_missing: int = 0
    n_unique: int = 0
    bad_values: int = 0  # values that did not parse as the column's kind (set to missing)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Column:
        return cls(**{**data, "kind": Kind(data["kind"])})

    @property
    def is_feature(self) -> bool:
        return self.kind in FEATURE_KINDS


@dataclass
class Task:
    """The learning task: its kind, the target column and, for classification, the labels.

    ``classes`` is the label mapping: code ``i`` means ``classes[i]``. For binary tasks the
    positive label is ``classes[1]``.
    """

    kind: str
    target: str
    classes: list[Any] = field(default_factory=list)

    @property
    def is_classification(self) -> bool:
        return self.kind in ("binary", "multiclass")

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.is_classification else 1

    @property
    def positive_label(self) -> Any:
        return self.classes[1] if self.kind == "binary" else None

    def encode(self, y: pd.Series) -> np.ndarray:
        """Map target values to class codes (classification) or float values (regression)."""
        if not self.is_classification:
            return pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64)
        lookup = {_label_key(c): i for i, c in enumerate(self.classes)}
        # map each distinct value once: fast on millions of rows
        uniques = pd.unique(y)
        table = {u: lookup.get(_label_key(u), -1) for u in uniques}
        codes = pd.Series(y).map(table).to_numpy(dtype=np.int64)
        if (codes < 0).any():
            unknown = sorted({str(u) for u, c in table.items() if c < 0})
            raise DataError(
                f"target '{self.target}' has label(s) the model does not know: "
                f"{preview(unknown)}; known labels: {preview(self.classes)}",
                column=self.target,
            )
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Map class codes back to the original labels (keeping ints as ints)."""
        labels = np.asarray(self.classes, dtype=object)[np.asarray(codes, dtype=np.int64)]
        if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in self.classes):
            return labels.astype(np.int64)
        return labels

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "classes": self.classes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(kind=data["kind"], target=data["target"], classes=list(data["classes"]))


@dataclass
class Schema:
    """The columns of a table, in order, with their kinds; the target is not among them."""

    columns: list[Column]

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.is_feature]

    @property
    def dropped(self) -> list[Column]:
        return [c for c in self.columns if not c.is_feature]

    def names(self, kind: Kind | None = None) -> list[str]:
        return [c.name for c in self.features if kind is None or c.kind == kind]

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.columns]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> Schema:
        return cls([Column.from_json(c) for c in data])


def _label_key(value: Any) -> str:
    """A key that matches a label whether it arrives as 1, 1.0, '1' or numpy int."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _to_json_scalar(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else float(value)
    return str(value)


def parse_numeric(series: pd.Series) -> tuple[pd.Series, int]:
    """Parse a column as float64; return the values and how many non-missing ones failed.

    Infinite values count as failed too: they become missing.
    """
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float64"), 0
    if pd.api.types.is_numeric_dtype(series):  # fast path: no parsing needed
        array = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        inf = np.isinf(array)
        array[inf] = np.nan
        return pd.Series(array, index=series.index, name=series.name), int(inf.sum())
    values = pd.to_numeric(series, errors="coerce").astype("float64")
    inf = np.isinf(values.to_numpy())
    if inf.any():
        values[inf] = np.nan
    failed = int((values.isna() & series.notna()).sum())
    return values, failed


def infer_kind(series: pd.Series, n_rows: int) -> tuple[Kind, int]:
    """Infer a column's kind from its values; return it and the count of unparseable values."""
    values = series.dropna()
    if len(values) == 0:
        return Kind.EMPTY, 0
    from takeoff.data.images import looks_like_image_column

    if looks_like_image_column(series):
        return Kind.IMAGE, 0
    n_unique = values.nunique()
    if n_unique == 1:
        return Kind.CONSTANT, 0
    if pd.api.types.is_bool_dtype(series):
        return Kind.BOOLEAN, 0
    if pd.api.types.is_datetime64_any_dtype(series):
        return Kind.DATETIME, 0
    if pd.api.types.is_numeric_dtype(series):
        finite = np.isfinite(values.to_numpy(dtype=np.float64))
        is_int = pd.api.types.is_integer_dtype(series)
        if is_int and n_unique == n_rows and n_rows >= 20 and _looks_like_counter(values):
            return Kind.IDENTIFIER, 0
        return Kind.NUMERIC, int((~finite).sum())
    text = values.astype(str).str.strip()
    lowered = set(text.str.lower().unique()[:3])
    if n_unique == 2 and lowered <= (_TRUE | _FALSE) and len(lowered & _TRUE) == 1:
        return Kind.BOOLEAN, 0
    numbers = pd.to_numeric(text, errors="coerce")
    parsed_share = numbers.notna().mean()
    if parsed_share >= NUMERIC_PARSE_SHARE:
        return Kind.NUMERIC, int(numbers.isna().sum() + np.isinf(numbers.fillna(0)).sum())
    if _looks_like_dates(text):
        return Kind.DATETIME, 0
    avg_words = text.head(2000).str.split().str.len().mean()
    if avg_words >= 4 and n_unique > 0.3 * len(values):
        return Kind.TEXT, 0
    if n_unique == len(values) and len(values) >= 20:
        return Kind.IDENTIFIER, 0
    return Kind.CATEGORICAL, 0


def _looks_like_counter(values: pd.Series) -> bool:
    """An integer column unique per row that is a sequence (1, 2, 3, ...) is an identifier."""
    ordered = np.sort(values.to_numpy())
    steps = np.diff(ordered)
    return bool(len(steps) and (steps == 1).mean() > 0.9)


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.head(200)
    if not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).mean() > 0.9:
        return False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.9)


def infer_schema(df: pd.DataFrame, target: str | None = None, drop: list[str] = ()) -> Schema:
    """Infer the kind of every column of ``df`` except the target and the ``drop`` list."""
    n_rows = len(df)
    columns = []
    for name in df.columns:
        if name == target or name in drop:
            continue
        series = df[name]
        kind, bad = infer_kind(series, n_rows)
        columns.append(
            Column(
                name=str(name),
                kind=kind,
                dtype=str(series.dtype),
                n_missing=int(series.isna().sum()),
                n_unique=_n_unique(series),
                bad_values=bad,
            )
        )
    return Schema(columns)


def _n_unique(series: pd.Series) -> int:
    try:
        return int(series.nunique(dropna=True))
    except TypeError:  # unhashable values (images given as arrays)
        return int(series.notna().sum())


def infer_task(
    y: pd.Series, target: str, override: str | None = None, positive_label: Any = None
) -> Task:
    """Decide the task from the target's values, unless ``override`` names it.

    Raises:
        TargetError: the target is constant, empty, or not numeric for a regression.
    """
    values = y.dropna()
    if len(values) == 0:
        raise TargetError(f"target '{target}' has no values. Fix: choose another target column.", target)
    uniques = pd.unique(values)
    if len(uniques) < 2:
        raise TargetError(
            f"target '{target}' is constant (every row is {uniques[0]!r}); there is nothing to "
            "learn. Fix: choose another target column, or add rows with other values.",
            column=target,
        )
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    kind = override
    if kind is None:
        if len(uniques) == 2:
            kind = "binary"
        elif numeric and (
            len(uniques) > MAX_CLASSES
            or not np.all(np.mod(values.to_numpy(dtype=np.float64), 1) == 0)
            or len(uniques) > max(20, math.sqrt(len(values)))
        ):
            kind = "regression"
        else:
            kind = "multiclass"
    if kind not in TASKS:
        from takeoff.errors import UnknownNameError

        raise UnknownNameError("task", kind, TASKS)
    if kind == "regression":
        if not numeric:
            parsed, failed = parse_numeric(values)
            if failed:
                raise TargetError(
                    f"target '{target}' is not numeric ({failed} value(s) like "
                    f"{preview(values[parsed.isna()].astype(str).unique()[:3])} do not parse), "
                    "so it cannot be a regression target. Fix: clean the values or use "
                    "--task multiclass.",
                    column=target,
                )
        return Task("regression", target)
    if kind == "binary" and len(uniques) != 2:
        raise TargetError(
            f"target '{target}' has {len(uniques)} distinct values, a binary task needs 2. "
            "Fix: use --task multiclass, or map the values to two labels.",
            column=target,
        )
    classes = sorted((_to_json_scalar(u) for u in uniques), key=lambda v: (str(type(v)), v))
    if kind == "binary":
        positive = _choose_positive(classes, values, positive_label, target)
        classes = [c for c in classes if c != positive] + [positive]
    return Task(kind, target, classes)


def _choose_positive(classes: list[Any], values: pd.Series, positive_label: Any, target: str) -> Any:
    """The positive class: as configured, else a 'yes'-like label, else the minority class."""
    if positive_label is not None:
        for c in classes:
            if _label_key(c) == _label_key(positive_label):
                return c
        raise TargetError(
            f"positive_label {positive_label!r} is not a value of target '{target}'; "
            f"its values are: {preview(classes)}",
            column=target,
        )
    words = [c for c in classes if str(c).strip().lower() in _POSITIVE_WORDS]
    if len(words) == 1:
        return words[0]
    counts = values.map(_label_key).value_counts()
    return min(classes, key=lambda c: (counts.get(_label_key(c), 0), str(c)))


def require_columns(df: pd.DataFrame, names: list[str], where: str, role: str = "column") -> None:
    """Raise ColumnNotFoundError for the first of ``names`` that ``df`` lacks."""
    for name in names:
        if name not in df.columns:
            raise ColumnNotFoundError(name, [str(c) for c in df.columns], where, role=role)
