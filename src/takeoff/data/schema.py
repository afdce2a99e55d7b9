"""Column kinds, the inferred schema of a table, and the task inferred from its target.

The schema is decided once, on the training data, and saved in the bundle; at predict time
the same schema drives how incoming columns are read and coerced.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from collections.abc import Sequence
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
TASKS = ("binary", "multiclass", "multilabel", "regression")
LABEL_SEP = "|"  # a multilabel target cell holds its labels joined by this: "billing|refund"
MAX_LABELS = 1000  # more distinct labels than this in a "|"-joined column: not a label set

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
    positive label is ``classes[1]``. For a multilabel task ``classes`` are the labels (strings)
    and a row's target is a set of them: one column of ``"a|b"`` cells, or several 0/1 columns
    (``columns``, combined into ``target``'s label sets by :meth:`target_values`).
    """

    kind: str
    target: str
    classes: list[Any] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # multilabel from several 0/1 columns

    @property
    def is_classification(self) -> bool:
        """Single-label classification (one class per row: softmax, argmax)."""
        return self.kind in ("binary", "multiclass")

    @property
    def is_multilabel(self) -> bool:
        return self.kind == "multilabel"

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.is_classification or self.is_multilabel else 1

    @property
    def positive_label(self) -> Any:
        return self.classes[1] if self.kind == "binary" else None

    @property
    def target_columns(self) -> list[str]:
        """The columns of a table that hold the target (several for 0/1 label columns)."""
        return list(self.columns) or [self.target]

    def target_values(self, df: pd.DataFrame) -> pd.Series:
        """The target of ``df``: its target column, or the label sets of its 0/1 label columns."""
        if not self.columns:
            return df[self.target]
        return combine_label_columns(df, self.columns, self.target)

    def encode(self, y: pd.Series) -> np.ndarray:
        """Map target values to class codes (classification), float values (regression), or a
        0/1 indicator matrix (n_rows, n_labels) (multilabel)."""
        if self.is_multilabel:
            return self._encode_sets(y)
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

    def _encode_sets(self, y: pd.Series) -> np.ndarray:
        lookup = {label: i for i, label in enumerate(self.classes)}
        out = np.zeros((len(y), len(self.classes)), dtype=np.int64)
        unknown: set[str] = set()
        for row, labels in enumerate(label_sets(y)):
            for label in labels:
                code = lookup.get(label)
                if code is None:
                    unknown.add(label)
                else:
                    out[row, code] = 1
        if unknown:
            raise DataError(
                f"target '{self.target}' has label(s) the model does not know: {preview(sorted(unknown))}; "
                f"known labels: {preview(self.classes)}. Fix: drop those labels, or retrain with them.",
                column=self.target,
            )
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Map class codes back to the original labels (keeping ints as ints); for multilabel,
        an indicator matrix to ``"a|b"`` strings (``""`` for a row with no label)."""
        if self.is_multilabel:
            names = np.asarray(self.classes, dtype=object)
            indicator = np.asarray(codes).astype(bool)
            return np.array([LABEL_SEP.join(names[row]) for row in indicator], dtype=object)
        labels = np.asarray(self.classes, dtype=object)[np.asarray(codes, dtype=np.int64)]
        if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in self.classes):
            return labels.astype(np.int64)
        return labels

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "target": self.target, "classes": self.classes}
        if self.columns:
            out["columns"] = list(self.columns)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(kind=data["kind"], target=data["target"], classes=list(data["classes"]),
                   columns=list(data.get("columns", [])))


def label_sets(y: pd.Series | Sequence[Any]) -> list[tuple[str, ...]]:
    """Each cell of a multilabel target as a tuple of labels, in order, without repeats.

    A cell is a string of labels joined by ``|`` (``"billing| refund"``; spaces around a label
    are dropped), a list/tuple/set of labels (JSON lines, DataFrames), or missing / ``""`` (no
    label). Numbers become their text (``3`` and ``"3"`` are one label).
    """
    out = []
    for value in (y.tolist() if isinstance(y, pd.Series) else list(y)):
        if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
            items = [str(_to_json_scalar(v)).strip() for v in value if not _is_missing(v)]
        elif _is_missing(value):
            items = []
        else:
            items = [part.strip() for part in str(_to_json_scalar(value)).split(LABEL_SEP)]
        out.append(tuple(dict.fromkeys(i for i in items if i)))
    return out


def _is_missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def combine_label_columns(df: pd.DataFrame, columns: Sequence[str], name: str) -> pd.Series:
    """Label sets (``"a|b"`` strings) from 0/1 label columns: a row has label ``c`` where column
    ``c`` is 1 / true / yes.

    Raises:
        ColumnNotFoundError: a label column is missing.
        TargetError: a label column holds something else than 0/1 values (names the column,
            a bad value and its row).
    """
    require_columns(df, list(columns), "the data", role="label column")
    flags = []
    for column in columns:
        parsed, bad = _label_flags(df[column])
        if bad is not None:
            raise TargetError(
                f"label column '{column}' must hold 0/1 (or true/false, yes/no) values; row {bad[0]!r} holds "
                f"{bad[1]!r}. Fix: clean that column, or leave it out of the target columns.",
                column=column,
            )
        flags.append(parsed)
    matrix = np.column_stack(flags) if flags else np.zeros((len(df), 0), dtype=bool)
    names = np.asarray(list(columns), dtype=object)
    return pd.Series([LABEL_SEP.join(names[row]) for row in matrix], index=df.index, name=name, dtype=object)


def _label_flags(series: pd.Series) -> tuple[np.ndarray, tuple[Any, Any] | None]:
    """A 0/1 column as booleans (missing = 0), or the first value that is not 0/1."""
    out = np.zeros(len(series), dtype=bool)
    for i, (index, value) in enumerate(series.items()):
        if _is_missing(value):
            continue
        key = str(value).strip().lower()
        if isinstance(value, (bool, np.bool_)) or key in _TRUE | _FALSE or key in ("1.0", "0.0"):
            out[i] = bool(value) if isinstance(value, (bool, np.bool_)) else key in _TRUE | {"1.0"}
        else:
            return out, (index, value)
    return out, None


def split_target(target: str | Sequence[str] | None, columns: Sequence[str]) -> tuple[str | None, list[str]]:
    """The target name and, for several 0/1 label columns, the columns.

    ``target`` is one column, a list of columns, or columns joined by commas
    (``"toxic,insult,threat"``, when no single column has that name). Several columns make a
    multilabel target named by the columns joined with ``|``.
    """
    if target is None:
        return None, []
    if isinstance(target, str):
        if target in columns or "," not in target:
            return target, []
        target = [t.strip() for t in target.split(",") if t.strip()]
    names = list(dict.fromkeys(target))
    if len(names) == 1:
        return names[0], []
    return LABEL_SEP.join(names), names


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


MAX_NON_NUMBERS = 10  # distinct non-numeric values a numeric target may hold (?, n/a, -, unknown, ...)


def numbers_with_placeholders(y: pd.Series) -> tuple[pd.Series, dict[str, int]] | None:
    """A text target that is numbers but for a few placeholder cells (``?``, ``-``,
    ``unknown``): (the numbers, with those cells missing; each placeholder and its count), or
    None when ``y`` is not such a column (already numeric, mostly text, or no placeholder).

    Example:
        >>> numbers_with_placeholders(pd.Series(["1.5", "?", "2.25", "3"] * 10))[1]
        {'?': 10}
    """
    if pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return None
    values = y.dropna()
    if len(values) == 0:
        return None
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = numbers.isna() | np.isinf(numbers.fillna(0))
    if not bad.any() or bad.mean() > 1 - NUMERIC_PARSE_SHARE:
        return None
    seen = text[bad].value_counts()
    if len(seen) > MAX_NON_NUMBERS:
        return None
    out = pd.Series(np.nan, index=y.index, dtype="float64")
    out[values.index] = numbers.where(~bad).astype("float64")
    return out, {str(k): int(v) for k, v in seen.items()}


def looks_like_id(y: pd.Series) -> bool:
    """A column whose value differs on every row (at least 20) and that is not a measurement:
    text labels, or whole numbers counting up (1, 2, 3, ...)."""
    return infer_kind(y, len(y))[0] is Kind.IDENTIFIER


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
    if override == "multilabel" or (override is None and _looks_like_label_sets(values)):
        return _multilabel_task(y, target)
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


def _looks_like_label_sets(values: pd.Series) -> bool:
    """Cells that are lists, or text where at least 1% of the cells join labels with ``|`` and
    the labels repeat across cells (a set column, not free text with a stray bar)."""
    sample = values.iloc[:10_000]
    if sample.map(lambda v: isinstance(v, (list, tuple, set, frozenset, np.ndarray))).any():
        return True
    if not (pd.api.types.is_object_dtype(sample) or pd.api.types.is_string_dtype(sample)):
        return False
    text = sample.astype(str)
    joined = text.str.contains(LABEL_SEP, regex=False)
    if joined.mean() < 0.01:
        return False
    labels = pd.Series([label for cell in label_sets(text) for label in cell])
    return 2 <= labels.nunique() <= MAX_LABELS and labels.nunique() < 0.5 * len(labels)


def _multilabel_task(y: pd.Series, target: str) -> Task:
    sets = label_sets(y)
    classes = sorted({label for cell in sets for label in cell})
    if len(classes) < 2:
        raise TargetError(
            f"target '{target}' holds {len(classes)} distinct label(s) ({preview(classes)}); a multilabel task "
            "needs at least 2. Fix: use a binary task for one label, or check the separator (labels are joined by '|').",
            column=target,
        )
    return Task("multilabel", target, classes)


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
