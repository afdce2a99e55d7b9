"""Interaction logs for recommendation: who interacted with what, how strongly, and when.

An :class:`Interactions` holds integer codes for users and items (``0..n-1``), the mapping back
to the original IDs, and per interaction a weight and an optional timestamp. IDs are keyed by
their text form (``1``, ``1.0`` and ``"1"`` are the same ID), so a user written as a number in
one file and as a string in another is one user.

Example:
    >>> log = interactions_from_frame(df, user="userId", item="movieId", rating="rating", time="timestamp")
    >>> train, test = leave_last_out(log)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from takeoff.errors import DataError, preview

# An item feature table joins on the item column; these kinds of its columns are used.
ITEM_FEATURE_KINDS = ("categorical", "text", "numeric")


def id_key(value: Any) -> str:
    """The text form of an ID: ``1``, ``1.0``, ``"1"`` and ``" 1 "`` all give ``"1"``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).strip()


def native_id(key: str) -> Any:
    """An ID key as given back to users: an int when it looks like one (as most ID columns
    are), else the text."""
    return int(key) if key.lstrip("-").isdigit() and len(key) < 19 else key


def id_keys(values: pd.Series) -> np.ndarray:
    """:func:`id_key` of every value (object array), mapping each distinct value once."""
    uniques = pd.unique(values)
    table = {u: id_key(u) for u in uniques}
    return values.map(table).to_numpy(dtype=object)


@dataclass
class Interactions:
    """An interaction log with users and items as integer codes.

    Attributes:
        users, items: the ID (text key, see :func:`id_key`) of each user / item code.
        user_codes, item_codes: int32 (n,), one pair per interaction.
        weights: float32 (n,), the interaction strength (1.0 when there is no rating).
        times: float64 (n,) seconds (or any increasing number), or None when there is no time.
        columns: the source's column names: {"user", "item", "rating", "time"} (None when absent).
    """

    users: list[str]
    items: list[str]
    user_codes: np.ndarray
    item_codes: np.ndarray
    weights: np.ndarray
    times: np.ndarray | None
    columns: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.users)}
        self.item_index = {m: i for i, m in enumerate(self.items)}

    def __len__(self) -> int:
        return int(len(self.user_codes))

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def matrix(self, weights: np.ndarray | None = None):
        """The user × item CSR matrix (float32) of the interactions (``weights`` per
        interaction; default the stored weights)."""
        import scipy.sparse as sp

        data = self.weights if weights is None else weights
        return sp.csr_matrix(
            (np.asarray(data, dtype=np.float32), (self.user_codes, self.item_codes)),
            shape=(self.n_users, self.n_items),
        )

    def recency_ranks(self) -> np.ndarray:
        """Per interaction, how many of the same user's interactions came after it (0 = the
        latest). Without times, the order of the log stands in for time."""
        order = self.order()
        users = pd.Series(self.user_codes[order])
        ranks = np.empty(len(self), dtype=np.int64)
        ranks[order] = users.groupby(users.to_numpy()).cumcount(ascending=False).to_numpy()
        return ranks

    def order(self) -> np.ndarray:
        """Interaction indices in time order (stable; log order without times)."""
        if self.times is None:
            return np.arange(len(self))
        return np.argsort(self.times, kind="stable")

    def take(self, index: np.ndarray) -> Interactions:
        """The interactions at ``index``, with the same user and item codes."""
        return Interactions(
            self.users, self.items, self.user_codes[index], self.item_codes[index], self.weights[index],
            None if self.times is None else self.times[index], dict(self.columns),
        )

    def codes_of_users(self, ids) -> np.ndarray:
        """Codes of user IDs (-1 for users not in the log)."""
        return np.array([self.user_index.get(id_key(u), -1) for u in ids], dtype=np.int64)

    def codes_of_items(self, ids) -> np.ndarray:
        """Codes of item IDs (-1 for items not in the log)."""
        return np.array([self.item_index.get(id_key(m), -1) for m in ids], dtype=np.int64)

    # ---------------------------------------------------------------- arrays (bundle)
    def arrays(self) -> dict[str, np.ndarray]:
        """Numeric state for safetensors (the ID lists go to JSON)."""
        out = {"user_codes": self.user_codes, "item_codes": self.item_codes, "weights": self.weights}
        if self.times is not None:
            out["times"] = self.times
        return out

    @classmethod
    def from_arrays(cls, users: list[str], items: list[str], arrays: dict[str, np.ndarray],
                    columns: dict[str, str | None]) -> Interactions:
        return cls(users, items, arrays["user_codes"].astype(np.int32), arrays["item_codes"].astype(np.int32),
                   arrays["weights"].astype(np.float32), arrays.get("times"), columns)


def interactions_from_frame(df: pd.DataFrame, user: str, item: str, rating: str | None = None,
                            time: str | None = None, where: str = "the data") -> tuple[Interactions, list[str]]:
    """Validate an interaction table and encode it.

    Rows with a missing user or item are errors (named, with the fix). Ratings must be
    non-negative numbers; missing ratings count as 1. Duplicate (user, item) pairs are merged
    into one interaction: the largest weight and the latest time.

    Returns:
        The interactions and notes for the user (duplicates merged, ...).

    Raises:
        ColumnNotFoundError: a named column is absent; DataError: a bad value (names the rows).
    """
    from takeoff.data.schema import require_columns

    named = {"user": user, "item": item, "rating": rating, "time": time}
    require_columns(df, [c for c in named.values() if c is not None], where)
    notes: list[str] = []
    for role in ("user", "item"):
        missing = df[named[role]].isna().to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing).tolist()
            raise DataError(
                f"{role} column '{named[role]}' is empty in {len(rows)} row(s) of {where}, e.g. rows {preview(rows, 5)}. "
                "Fix: fill or drop those rows.", column=named[role], rows=rows)
    if len(df) == 0:
        raise DataError(f"{where} has no interactions")
    weights = np.ones(len(df), dtype=np.float64)
    if rating is not None:
        values = pd.to_numeric(df[rating], errors="coerce").to_numpy(dtype=np.float64)
        bad = (~np.isfinite(values) & df[rating].notna().to_numpy()) | (values < 0)
        if bad.any():
            rows = np.flatnonzero(bad).tolist()
            shown = preview([repr(v) for v in df[rating].iloc[rows[:5]].tolist()], 5)
            raise DataError(
                f"rating column '{rating}' must hold non-negative numbers; {len(rows)} row(s) do not, e.g. rows "
                f"{preview(rows, 5)} with values {shown}. Fix: correct them, or drop the rating column to count "
                "every interaction as 1.", column=rating, rows=rows)
        n_missing = int(np.isnan(values).sum())
        if n_missing:
            notes.append(f"{n_missing} interaction(s) without a rating count as 1")
        weights = np.where(np.isnan(values), 1.0, values)
    times = None
    if time is not None:
        times = _times(df[time], time, where)
    user_keys, item_keys = id_keys(df[user]), id_keys(df[item])
    frame = pd.DataFrame({"u": user_keys, "i": item_keys, "w": weights,
                          "t": times if times is not None else np.arange(len(df), dtype=np.float64)})
    before = len(frame)
    frame = frame.groupby(["u", "i"], sort=False, as_index=False).agg(w=("w", "max"), t=("t", "max"))
    if len(frame) < before:
        notes.append(f"{before - len(frame)} duplicate (user, item) interaction(s) merged (largest rating, latest time)")
    users = sorted(frame["u"].unique(), key=_natural)
    items = sorted(frame["i"].unique(), key=_natural)
    user_index = {u: k for k, u in enumerate(users)}
    item_index = {m: k for k, m in enumerate(items)}
    log = Interactions(
        users=list(users), items=list(items),
        user_codes=frame["u"].map(user_index).to_numpy(dtype=np.int32),
        item_codes=frame["i"].map(item_index).to_numpy(dtype=np.int32),
        weights=frame["w"].to_numpy(dtype=np.float32),
        times=frame["t"].to_numpy(dtype=np.float64) if times is not None else None,
        columns=named,
    )
    return log, notes


def _times(series: pd.Series, column: str, where: str) -> np.ndarray:
    """Timestamps as float seconds: numbers as given, date strings parsed."""
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
        values = (parsed - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad).tolist()
        raise DataError(
            f"time column '{column}' has {len(rows)} missing or unreadable value(s) in {where}, e.g. rows "
            f"{preview(rows, 5)}. Fix: fill them, or leave out the time column (the split is then random).",
            column=column, rows=rows)
    return values


def _natural(key: str):
    """Numbers in numeric order, then text: user "2" before "10"."""
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)


def leave_last_out(log: Interactions, seed: int = 0, min_history: int = 1) -> tuple[Interactions, Interactions]:
    """Hold out each user's last interaction (by time; a random one without times).

    Users with ``min_history`` interactions or fewer keep them all in the training part, so every
    held-out user has some history to recommend from.
    """
    rng = np.random.default_rng(seed)
    if log.times is None:
        order = rng.permutation(len(log))  # a random interaction per user is "last"
    else:
        order = log.order()
    users = log.user_codes[order]
    counts = np.bincount(log.user_codes, minlength=log.n_users)
    last = {}
    for position, user in zip(order, users):
        last[int(user)] = position  # the final write per user is its last interaction
    held = np.array(sorted(p for u, p in last.items() if counts[u] > min_history), dtype=np.int64)
    mask = np.zeros(len(log), dtype=bool)
    mask[held] = True
    return log.take(np.flatnonzero(~mask)), log.take(held)
