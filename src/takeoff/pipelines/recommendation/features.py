"""Item and user features of a recommender: read from their own tables, or found among the
interaction table's columns whose value is fixed per item (a title, a genre list) or per user."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from takeoff.data.interactions import Interactions, id_keys
from takeoff.errors import DataError, preview
from takeoff.models.recommender import ItemFeatures, Recommender, UserFeatures, tokens_of

MAX_NUMERIC_CATEGORIES = 50  # a numeric feature column with at most this many values is read as categories


def item_features(df: pd.DataFrame, log_: Interactions, rc) -> tuple[ItemFeatures | None, list[str]]:
    """Item features from ``rc.items`` (a table) or, failing that, from the interaction table's
    columns whose value is fixed per item (a title, a genre list)."""
    notes: list[str] = []
    used = {rc.user, rc.item, rc.rating, rc.time}
    if rc.items is not None:
        table, columns = _feature_table(rc.items, rc.item, "item", used)
        unknown = int((~table["_key"].isin(log_.item_index)).sum())
        if unknown:
            notes.append(f"{unknown} item(s) of {rc.items} have no interactions and are not recommended")
    else:
        columns = _fixed_columns(df, rc.item, [c for c in df.columns if c not in used and is_text(df[c])])
        if not columns:
            return None, notes
        table = df[[rc.item, *columns]].assign(_key=id_keys(df[rc.item])).drop_duplicates("_key")
        notes.append(f"item features taken from the interaction table: {', '.join(map(str, columns))}")
    features = ItemFeatures(item_column=rc.item)
    _fill(features, table.set_index("_key").reindex(log_.items), columns)
    return (None if features.empty else features), notes


def user_features(df: pd.DataFrame, log_: Interactions, rc) -> tuple[UserFeatures | None, list[str]]:
    """User features from ``rc.users`` (a table) or, failing that, from the interaction table's
    text columns whose value is fixed per user but not per item (those fixed per item are item
    features)."""
    notes: list[str] = []
    used = {rc.user, rc.item, rc.rating, rc.time}
    if rc.users is not None:
        table, columns = _feature_table(rc.users, rc.user, "user", used)
        unknown = int((~table["_key"].isin(log_.user_index)).sum())
        if unknown:
            notes.append(f"{unknown} user(s) of {rc.users} have no interactions; give their features to "
                         "recommend() to answer them")
    else:
        candidates = _fixed_columns(df, rc.user, [c for c in df.columns if c not in used and is_text(df[c])])
        per_item = set(_fixed_columns(df, rc.item, candidates)) if candidates else set()
        columns = [c for c in candidates if c not in per_item]
        if not columns:
            return None, notes
        table = df[[rc.user, *columns]].assign(_key=id_keys(df[rc.user])).drop_duplicates("_key")
        notes.append(f"user features taken from the interaction table: {', '.join(map(str, columns))}")
    features = UserFeatures(user_column=rc.user)
    _fill(features, table.set_index("_key").reindex(log_.users), columns)
    if features.empty:
        return None, notes
    return features, notes


def _feature_table(path: str, key: str, role: str, used: set) -> tuple[pd.DataFrame, list[str]]:
    """A feature table read from ``path``, keyed (``_key``) by the text of its ``key`` column
    (first row per ID), and its candidate feature columns."""
    from takeoff.data.sources import read_table

    table = read_table(path)
    if key not in table.columns:
        raise DataError(f"{role} table {path} has no column '{key}' to join on; its columns are: "
                        f"{preview(list(map(str, table.columns)), 20)}. Fix: name the {role} column the same in "
                        "both files.", column=key)
    if table[key].isna().any():
        rows = np.flatnonzero(table[key].isna().to_numpy()).tolist()
        raise DataError(f"{role} column '{key}' is empty in {len(rows)} row(s) of {path}, e.g. rows "
                        f"{preview(rows, 5)}. Fix: fill or drop those rows.", column=key, rows=rows)
    table = table.assign(_key=id_keys(table[key])).drop_duplicates("_key")
    return table, [c for c in table.columns if c not in used and c != "_key"]


def _fixed_columns(df: pd.DataFrame, key: str, candidates: list) -> list:
    """The ``candidates`` whose value is the same in every row of each ``key``."""
    if not candidates:
        return []
    keyed = df[candidates].assign(_key=id_keys(df[key]))
    fixed = keyed.groupby("_key")[candidates].nunique(dropna=False).le(1).all()
    return [c for c in candidates if fixed[c]]


def _fill(features: ItemFeatures | UserFeatures, table: pd.DataFrame, columns: list) -> None:
    """Add the usable ``columns`` of ``table`` (one row per code) to ``features``: lists
    ("Action|Comedy"), repeated labels and numbers with few values are categories;
    mostly-unique strings are text; other columns are left out."""
    for column in columns:
        values = table[column]
        if is_text(values):
            text = values.fillna("").astype(str)
            present = text[text.str.strip() != ""]
            if present.empty:
                continue
            if present.str.contains("|", regex=False).mean() > 0.2 or present.nunique() < 0.5 * len(present):
                features.categorical[str(column)] = [tokens_of(v) for v in text]
            else:
                features.text[str(column)] = text.tolist()
        elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            present = values.dropna()
            distinct = present.nunique()
            if 0 < distinct <= MAX_NUMERIC_CATEGORIES and distinct < 0.5 * len(present):
                features.categorical[str(column)] = [tokens_of(v) for v in values.tolist()]


def feature_args(family: Recommender | type[Recommender], items: ItemFeatures | None,
                  users: UserFeatures | None) -> dict[str, Any]:
    """The feature keywords of ``fit`` / ``load``: items for a family that uses them, and
    ``users`` only for a family that declares ``uses_user_features`` (the others' signatures
    have no such argument)."""
    args: dict[str, Any] = {"items": items if family.uses_item_features else None}
    if family.uses_user_features:
        args["users"] = users
    return args



def is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series)

