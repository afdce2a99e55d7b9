"""Recommendation: train a recommender on an interaction log, and the model that answers
"what should this user see next" and "what is like this item".

This module sequences the layers for task "recommend" as :mod:`takeoff.api` does for tables:
data (an :class:`~takeoff.data.interactions.Interactions` log) → families (``models/`` via
the registry) → ranking evaluation → bundle.

Example:
    >>> import takeoff
    >>> model = takeoff.train("ratings.csv", task="recommend", user="userId", item="movieId", out="runs/recs")
    >>> model.recommend(42, k=10)
    >>> model.similar_items(1, k=5)

User features (``users=PATH``: a table with the user column) let ``two-tower`` answer users the
log has never seen from their features, and item features let it rank items the catalogue does
not hold:

    >>> model.recommend("new-user", k=10, features={"country": "FR", "favourite": "Horror"})
    >>> model.rank_new_items(42, pd.DataFrame({"movieId": [90001], "genres": ["Horror"]}))
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff import bundle, registry
from takeoff._version import __version__
from takeoff.data.interactions import (
    Interactions, id_key, id_keys, interactions_from_frame, leave_last_out, native_id,
)
from takeoff.errors import BudgetError, BundleError, ConfigError, DataError, closest, preview
from takeoff.evaluation.ranking import by_activity, ranking_metrics, top_k
from takeoff.models.popular import popularity
from takeoff.models.recommender import ItemFeatures, Recommender, UserFeatures, tokens_of
from takeoff.training.context import FitContext

log = logging.getLogger("takeoff")

LOG_JSON, LOG_ARRAYS, ITEMS_JSON, FALLBACK = "log.json", "log.safetensors", "items.json", "popular.safetensors"
USERS_JSON = "users.json"
MAX_NUMERIC_CATEGORIES = 50  # a numeric feature column with at most this many values is read as categories
MODEL_DIR = "model"
REFIT_SHARE = 0.35  # budget kept back for refitting the chosen family on every interaction
MIN_FAMILY_SECONDS = 2.0


@dataclass
class Recommendations:
    """Ranked items for one user (or like one item), with notes on how they were chosen."""

    items: list[Any]
    scores: list[float]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"items": [{"item": i, "score": s} for i, s in zip(self.items, self.scores)], "notes": self.notes}

    def __len__(self) -> int:
        return len(self.items)


# ---------------------------------------------------------------------------------- training
def train_recommender(df: pd.DataFrame, cfg, source: str, out: Path | None, deadline: float) -> RecommenderModel:
    """Fit the configured recommender(s) on an interaction table; write a bundle to ``out``.

    ``auto`` fits every family of ``registry.auto_recommenders()`` on all but each user's last
    interaction, keeps the best NDCG@k on those held-out interactions, and refits it on every
    interaction when the budget allows.
    """
    rc = cfg.recommend
    if rc.user is None or rc.item is None:
        raise ConfigError("task 'recommend' needs the user and item columns. Fix: pass --user COLUMN --item COLUMN.")
    started = time.monotonic()
    full, notes = interactions_from_frame(df, rc.user, rc.item, rc.rating, rc.time, where=source)
    for note in notes:
        log.info("%s", note)
    items, item_notes = _item_features(df, full, rc)
    users_, user_notes = _user_features(df, full, rc)
    notes += item_notes + user_notes
    if full.n_items < 2:
        raise DataError(f"{source} has {full.n_items} distinct item(s); a recommender needs at least 2")
    train, valid = leave_last_out(full, seed=cfg.seed)
    if len(valid) == 0:
        raise DataError(f"no user in {source} has more than one interaction, so nothing can be held out to choose "
                        "and evaluate a model. Fix: provide more interactions per user.")
    names = registry.auto_recommenders() if cfg.family == "auto" else [cfg.family]
    for name in names:
        registry.get_recommender(name)  # unknown names fail before any work
    k = rc.k
    relevant = _relevant(valid)
    users = np.array(sorted(relevant), dtype=np.int64)
    truth = [relevant[u] for u in users]
    activity = np.bincount(train.user_codes, minlength=full.n_users)[users]

    leaderboard: dict[str, dict[str, Any]] = {}
    fitted: dict[str, tuple[Recommender, np.ndarray]] = {}
    search_until = started + (deadline - started) * (1 - REFIT_SHARE)
    for i, name in enumerate(names):
        remaining = search_until - time.monotonic()
        if remaining < MIN_FAMILY_SECONDS and fitted:
            log.warning("time budget spent: %s not tried", ", ".join(names[i:]))
            break
        share = max(remaining / (len(names) - i), MIN_FAMILY_SECONDS)
        ctx = FitContext(deadline=time.monotonic() + share, seed=cfg.seed, progress=False, device=cfg.device,
                         warn=lambda m, n=name: log.warning("%s: %s", n, m))
        family = _make(name, cfg)
        began = time.monotonic()
        family.fit(train, ctx, **_feature_args(family, items, users_))
        top = recommend_top(family, train, users, k, exclude_seen=True)
        metrics = ranking_metrics(top, truth, full.n_items, k)
        metrics["fit_seconds"] = round(time.monotonic() - began, 2)
        leaderboard[name] = metrics
        fitted[name] = (family, top)
        log.info("%s: NDCG@%d %.4f, HR@%d %.4f (%.1fs)", name, k, metrics[f"ndcg@{k}"], k, metrics[f"hr@{k}"],
                 metrics["fit_seconds"])
    if not fitted:
        raise BudgetError("the time budget ran out before any recommender was fitted. Fix: raise --time-budget.")
    best = max(fitted, key=lambda n: (leaderboard[n][f"ndcg@{k}"], leaderboard[n][f"hr@{k}"]))
    family, top = fitted[best]
    metrics = {key: v for key, v in leaderboard[best].items() if key != "fit_seconds"}
    buckets = by_activity(top, truth, activity, full.n_items, k)

    # refit on every interaction (the held-out ones are each user's most recent: the most telling).
    # A family bound by the budget (two-tower) refits in what is left; a quick one needs its time.
    fit_seconds = leaderboard[best]["fit_seconds"]
    need = 0.5 * fit_seconds if family.report.stopped_by == "time_budget" else 1.2 * fit_seconds
    refitted = False
    if cfg.refit and deadline - time.monotonic() >= max(need, 0.5):
        ctx = FitContext(deadline=deadline, seed=cfg.seed, progress=False, device=cfg.device,
                         warn=lambda m: log.warning("%s: %s", best, m))
        family = _make(best, cfg)
        family.fit(full, ctx, **_feature_args(family, items, users_))
        refitted = True
    else:
        if cfg.refit:
            log.info("no time left to refit %s on every interaction; it answers from the full history", best)
        family = _with_log(family, full, items, users_)
    manifest = {
        "takeoff_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": {"kind": "recommend", "target": None, "classes": []},
        "recommend": {"user": rc.user, "item": rc.item, "rating": rc.rating, "time": rc.time, "k": k},
        "family": best,
        "params": family.params.model_dump(mode="json"),
        "metrics": metrics,
        "leaderboard": leaderboard,
        "by_activity": buckets,
        "training": {
            "source": source, "interactions": len(full), "users": full.n_users, "items": full.n_items,
            "held_out": len(valid), "refit": refitted, "seconds": round(time.monotonic() - started, 2),
            "notes": notes,
        },
    }
    model = RecommenderModel(manifest, full, family, popularity(full), items, users_)
    if out is not None:
        import tempfile

        from takeoff.evaluation.report import write_recommend_report

        with tempfile.TemporaryDirectory(prefix="takeoff-report-") as tmp:
            report = Path(tmp) / "report.html"
            write_recommend_report(
                report, title=f"{rc.item} recommendations — validation report", metrics=metrics,
                leaderboard=leaderboard, buckets=buckets, data_name=f"{source} (each user's last interaction held out)",
                info={"family": best, "params": manifest["params"], "training": manifest["training"]},
            )
            model._attachments["report.html"] = report
            model.save(out)
    return model


def _with_log(family: Recommender, full: Interactions, items: ItemFeatures | None,
              users: UserFeatures | None) -> Recommender:
    """The family fitted on the training part, set up to answer from every interaction (each
    user's latest included): saved and loaded with the full log, as a bundle would be."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="takeoff-recommender-") as tmp:
        family.save(Path(tmp))
        return type(family).load(Path(tmp), family.params.model_dump(mode="json"), full,
                                 **_feature_args(family, items, users))


def _feature_args(family: Recommender | type[Recommender], items: ItemFeatures | None,
                  users: UserFeatures | None) -> dict[str, Any]:
    """The feature keywords of ``fit`` / ``load``: items for a family that uses them, and
    ``users`` only for a family that declares ``uses_user_features`` (the others' signatures
    have no such argument)."""
    args: dict[str, Any] = {"items": items if family.uses_item_features else None}
    if family.uses_user_features:
        args["users"] = users
    return args


def _make(name: str, cfg) -> Recommender:
    cls = registry.get_recommender(name)
    params = getattr(cfg.recommenders, name, None)
    return cls(params.model_dump() if params is not None else None)


def _relevant(held: Interactions) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for u, i in zip(held.user_codes.tolist(), held.item_codes.tolist()):
        out.setdefault(u, set()).add(i)
    return out


def recommend_top(family: Recommender, log_: Interactions, users: np.ndarray, k: int, exclude_seen: bool,
                  batch: int = 1024) -> np.ndarray:
    """Top-``k`` item codes per user code (-1 pads when fewer items are left)."""
    seen = log_.matrix().tocsr() if exclude_seen else None
    out = np.full((len(users), min(k, log_.n_items)), -1, dtype=np.int64)
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        scores = family.score(log_, chunk).astype(np.float64, copy=True)
        if seen is not None:
            rows = seen[chunk]
            scores[np.repeat(np.arange(len(chunk)), np.diff(rows.indptr)), rows.indices] = -np.inf
        top = top_k(scores, k)
        top[~np.isfinite(np.take_along_axis(scores, top, axis=1))] = -1
        out[start:start + len(chunk), : top.shape[1]] = top
    return out


def _item_features(df: pd.DataFrame, log_: Interactions, rc) -> tuple[ItemFeatures | None, list[str]]:
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
        columns = _fixed_columns(df, rc.item, [c for c in df.columns if c not in used and _is_text(df[c])])
        if not columns:
            return None, notes
        table = df[[rc.item, *columns]].assign(_key=id_keys(df[rc.item])).drop_duplicates("_key")
        notes.append(f"item features taken from the interaction table: {', '.join(map(str, columns))}")
    features = ItemFeatures(item_column=rc.item)
    _fill(features, table.set_index("_key").reindex(log_.items), columns)
    return (None if features.empty else features), notes


def _user_features(df: pd.DataFrame, log_: Interactions, rc) -> tuple[UserFeatures | None, list[str]]:
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
        candidates = _fixed_columns(df, rc.user, [c for c in df.columns if c not in used and _is_text(df[c])])
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
        if _is_text(values):
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


# ---------------------------------------------------------------------------------- the model
class RecommenderModel:
    """A trained recommender: the interaction log it knows, the fitted family, and popularity
    (or, with user features, the family's new-user vectors) for users it has never seen. Use
    :func:`takeoff.train` (``task="recommend"``) or :func:`takeoff.load` to get one."""

    def __init__(self, manifest: dict[str, Any], log_: Interactions, family: Recommender, fallback: np.ndarray,
                 items: ItemFeatures | None, users: UserFeatures | None = None):
        self.manifest, self.log, self.family, self.fallback, self.items = manifest, log_, family, fallback, items
        self.users = users
        self.path: Path | None = None
        self._attachments: dict[str, Path] = {}
        self._seen = log_.matrix().tocsr()
        self._similar_cache: np.ndarray | None = None

    # ------------------------------------------------------------------ facts
    @property
    def task(self):
        from takeoff.data.schema import Task

        return Task.from_json(self.manifest["task"])

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest["metrics"]

    @functools.cached_property
    def version(self) -> str:
        import hashlib

        text = json.dumps(self.manifest, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def n_users(self) -> int:
        return self.log.n_users

    @property
    def n_items(self) -> int:
        return self.log.n_items

    @functools.cached_property
    def _labels(self) -> tuple[str | None, list[str] | None]:
        items = self.items
        if items is None:
            return None, None
        for column, texts in items.text.items():  # a text column (a title) first
            return column, [str(t) for t in texts]
        best: tuple[int, str, list[str]] | None = None
        for column, tokens in items.categorical.items():  # else the most varied category
            labels = [", ".join(map(str, t)) for t in tokens]
            if best is None or len(set(labels)) > best[0]:
                best = (len(set(labels)), column, labels)
        return (best[1], best[2]) if best else (None, None)

    def item_labels(self) -> tuple[str | None, list[str] | None]:
        """``(column, labels)``: a readable label per item code (its title), from the item
        features; ``(None, None)`` when the bundle has none."""
        return self._labels

    def label_of(self, item: Any) -> str | None:
        """The label of one item ID, or None."""
        column, labels = self._labels
        code = self.log.item_index.get(id_key(item))
        return labels[code] or None if labels is not None and code is not None else None

    def knows_user(self, user: Any) -> bool:
        return id_key(user) in self.log.user_index

    def knows_item(self, item: Any) -> bool:
        return id_key(item) in self.log.item_index

    def __repr__(self) -> str:
        return (f"<takeoff.RecommenderModel {self.manifest['family']} users={self.n_users:,} "
                f"items={self.n_items:,}>")

    # ------------------------------------------------------------------ answers
    def recommend(self, user: Any, k: int = 10, exclude_seen: bool = True,
                  features: dict[str, Any] | None = None) -> Recommendations:
        """The ``k`` best items for ``user`` (an ID as in the training data).

        A user the model has never seen gets the most popular items, or, when ``features`` are
        given and the model was trained with user features by a family that can embed new
        users (``two-tower``), items chosen from those features (said in ``notes``).

        Args:
            user: the user ID.
            k: how many items (default 10).
            exclude_seen: leave out the items the user interacted with (default True).
            features: for a new user, feature column → value (a "a|b" string or a list for
                categories, a string for text); ignored for a known user. Default None.

        Raises:
            DataError: ``k`` below 1, or a feature column the model does not know.

        Example:
            >>> model.recommend("new-user", k=5, features={"favourite": "Horror"}).notes
            ["user 'new-user' is new: recommended from their features (favourite)"]
        """
        return self.recommend_batch([user], k, exclude_seen, None if features is None else [features])[0]

    def recommend_batch(self, users: list[Any], k: int = 10, exclude_seen: bool = True,
                        features: list[dict[str, Any] | None] | None = None) -> list[Recommendations]:
        """:meth:`recommend` for several users at once (one scoring call for the known ones, one
        for the new ones with features); ``features``: None or one dict (or None) per user."""
        k = _check_k(k)
        if features is not None and len(features) != len(users):
            raise DataError(f"features must hold one entry (a dict or None) per user: {len(users)} user(s), "
                            f"{len(features)} feature entries")
        codes = self.log.codes_of_users(users)
        known = np.flatnonzero(codes >= 0)
        results: list[Recommendations | None] = [None] * len(users)
        if len(known):
            scores = self.family.score(self.log, codes[known]).astype(np.float64, copy=True)
            for row, index in enumerate(known):
                results[index] = self._rank(scores[row], int(codes[index]), k, exclude_seen)
        new = np.flatnonzero(codes < 0)
        described: list[int] = []
        reasons: dict[int, str] = {}
        if features is not None:
            for index in new:
                if features[index] is None:
                    continue
                why = self._why_not_from_features(features[index])
                if why is None:
                    described.append(int(index))
                else:
                    reasons[int(index)] = why
        if described:
            columns = self._user_columns([features[i] for i in described])  # type: ignore[index]
            vectors = self.family.embed_users(self.users.like(columns), None)  # type: ignore[attr-defined, union-attr]
            scores = (vectors @ self.family.item_vectors().T).astype(np.float64)  # the scale of score()
            for row, index in enumerate(described):
                result = self._rank(scores[row], None, k, exclude_seen=False)
                given = [c for c, v in features[index].items() if tokens_of(v)]  # type: ignore[index, union-attr]
                result.notes.insert(0, f"user {users[index]!r} is new: recommended from their features "
                                       f"({', '.join(map(str, given))})")
                results[index] = result
        for index in new:
            if results[index] is not None:
                continue
            result = self._rank(self.fallback.astype(np.float64), None, k, exclude_seen=False)
            why = reasons.get(int(index))
            result.notes.insert(0, f"user {users[index]!r} is not in the training data: most popular items"
                                   + (f" ({why})" if why else ""))
            results[index] = result
        return results  # type: ignore[return-value]

    def _why_not_from_features(self, features: Any) -> str | None:
        """None when a new user's ``features`` can choose their items, else why not (the user
        then gets popular items). Malformed features are errors."""
        if not isinstance(features, dict):
            raise DataError(f"a new user's features must be a dict of column → value, got {type(features).__name__}")
        if self.users is None:
            return "the model was trained without user features"
        unknown = [c for c in features if c not in self.users.columns]
        if unknown:
            guess = closest(str(unknown[0]), self.users.columns)
            hint = f" Did you mean '{guess}'?" if guess else ""
            raise DataError(f"user feature column(s) {preview(list(map(repr, unknown)), 5)} are not known to the "
                            f"model; its user feature columns are: {preview(self.users.columns, 20)}.{hint}",
                            column=str(unknown[0]))
        family = self.family
        if not callable(getattr(family, "embed_users", None)) or not getattr(family, "has_user_features", True):
            return f"family '{self.manifest['family']}' cannot use user features"
        vocabulary = self.users.vocabulary()
        for column, value in features.items():
            if column in self.users.text and str(value or "").strip():
                return None
            if column in vocabulary and set(tokens_of(value)) & vocabulary[column]:
                return None
        return "none of the given feature values was seen in training"

    def _user_columns(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """Column → value per row, from one feature dict per new user."""
        return {column: [row.get(column) for row in rows] for column in self.users.columns}  # type: ignore[union-attr]

    def rank_new_items(self, user: Any, items: pd.DataFrame, k: int = 10,
                       features: dict[str, Any] | None = None) -> Recommendations:
        """Rank items the catalogue does not hold (a new release, say) for ``user``, from the
        items' features; the scores are on the scale of :meth:`recommend`'s.

        Needs a family that embeds items from their features (``two-tower``) and a model
        trained with item features. Rows whose item is already in the catalogue are scored with
        its learned vector (said in ``notes``).

        Args:
            user: a known user ID, or a new one with ``features`` (as for :meth:`recommend`).
            items: a table with the item column and the item feature columns the model was
                trained with (one row per item; repeated IDs keep their first row).
            k: how many items (default 10).
            features: a new user's features (default None).

        Returns:
            The ``k`` best of ``items``, best first.

        Raises:
            DataError: the family cannot embed items, the model has no item features, a
                column is missing, an item ID is empty, or the user is unknown.

        Example:
            >>> new = pd.DataFrame({"movieId": [90001, 90002], "title": ["Night II", "Toy Tale"],
            ...                     "genres": ["Horror|Thriller", "Animation|Children"]})
            >>> model.rank_new_items(42, new, k=2).items
            [90002, 90001]
        """
        k = _check_k(k)
        family, name = self.family, self.manifest["family"]
        if not (callable(getattr(family, "embed_items", None)) and callable(getattr(family, "user_vectors", None))):
            able = [n for n in registry.recommender_names()
                    if callable(getattr(registry.get_recommender(n), "embed_items", None))]
            raise DataError(f"family '{name}' cannot score items it has not seen; the families that can are: "
                            f"{', '.join(able)}. Fix: train with --family {able[0] if able else 'two-tower'} "
                            "and an item feature table (--items).")
        item_column = self.manifest["recommend"]["item"]
        if self.items is None:  # (a family fitted without them says so in embed_items)
            raise DataError(f"this model was trained without item features, so new items cannot be described to it. "
                            f"Fix: train it with an item feature table (--items) whose columns describe the "
                            f"{item_column}s.")
        if not isinstance(items, pd.DataFrame):
            raise DataError(f"items must be a DataFrame with the columns {item_column}, "
                            f"{', '.join(self.items.columns)}; got {type(items).__name__}")
        missing = [c for c in (item_column, *self.items.columns) if c not in items.columns]
        if missing:
            raise DataError(f"the new items' table lacks column(s) {preview(missing, 10)}; it needs {item_column} and "
                            f"the item feature columns the model was trained with: {', '.join(self.items.columns)}. "
                            f"Its columns are: {preview(list(map(str, items.columns)), 20)}.", column=missing[0])
        empty = np.flatnonzero(items[item_column].isna().to_numpy()).tolist()
        if empty:
            raise DataError(f"item column '{item_column}' is empty in {len(empty)} row(s) of the new items' table, "
                            f"e.g. rows {preview(empty, 5)}. Fix: give every item an ID.", column=item_column,
                            rows=empty)
        if len(items) == 0:
            return Recommendations([], [], ["no items to rank"])
        table = items.assign(_key=id_keys(items[item_column])).drop_duplicates("_key")
        keys = table["_key"].tolist()
        known = self.log.codes_of_items(keys)
        vectors = family.embed_items(self.items.like({c: table[c].tolist() for c in self.items.columns}))
        if (known >= 0).any():
            vectors[known >= 0] = family.item_vectors()[known[known >= 0]]
        user_vector, notes = self._user_vector(user, features)
        scores = (vectors @ user_vector).astype(np.float64)
        top = top_k(scores[None, :], k)[0]
        n_known = int((known >= 0).sum())
        if n_known:
            notes.append(f"{n_known} of these items are in the catalogue: scored with their learned vectors")
        if len(keys) < k:
            notes.append(f"only {len(keys)} item(s) to rank (k={k})")
        return Recommendations([native_id(keys[i]) for i in top], [float(scores[i]) for i in top], notes)

    def _user_vector(self, user: Any, features: dict[str, Any] | None) -> tuple[np.ndarray, list[str]]:
        """The family's vector of a known user, or of a new one from ``features``."""
        code = self.log.user_index.get(id_key(user))
        if code is not None:
            return self.family.user_vectors(self.log, np.array([code]))[0], []  # type: ignore[attr-defined]
        why = "no features were given" if features is None else self._why_not_from_features(features)
        if why is not None:
            raise DataError(f"user {user!r} is not in the training data and cannot be described by features "
                            f"({why}). Known users look like: {preview(self.log.users[:5], 5)}")
        vector = self.family.embed_users(self.users.like(self._user_columns([features])), None)[0]  # type: ignore
        return vector, [f"user {user!r} is new: ranked from their features"]

    def similar_items(self, item: Any, k: int = 10) -> Recommendations:
        """The ``k`` items most like ``item`` (the family's item vectors or similarities; for
        families without them, items often interacted with by the same users)."""
        k = _check_k(k)
        code = self.log.item_index.get(id_key(item))
        if code is None:
            raise DataError(f"item {item!r} is not in the training data, so nothing is known about it. "
                            f"Known items look like: {preview(self.log.items[:5], 5)}")
        scores = self.family.similar(np.array([code]))
        if scores is None:
            scores = self._cooccurrence(code)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1).copy()
        scores[code] = -np.inf
        return self._rank(scores, None, k, exclude_seen=False)

    @functools.cached_property
    def _binary(self):
        """Who interacted with what (1/0, CSC: one column per item) and each item's user count."""
        binary = self._seen.tocsc(copy=True)
        binary.data[:] = 1.0
        return binary, np.asarray(binary.sum(axis=0)).ravel()

    def _cooccurrence(self, code: int) -> np.ndarray:
        """Cosine of users in common, for families without item vectors (built once, not per call)."""
        binary, counts_per_item = self._binary
        counts = np.asarray((binary.T @ binary[:, code]).todense()).ravel()
        norms = np.sqrt(counts_per_item) * max(np.sqrt(counts[code]), 1e-12)
        return counts / np.maximum(norms, 1e-12)

    def _rank(self, scores: np.ndarray, user: int | None, k: int, exclude_seen: bool) -> Recommendations:
        notes = []
        if exclude_seen and user is not None:
            start, end = self._seen.indptr[user], self._seen.indptr[user + 1]
            scores[self._seen.indices[start:end]] = -np.inf
        available = int(np.isfinite(scores).sum())
        if available < k:
            notes.append(f"only {available} item(s) can be recommended (k={k})" if available else
                         "every item has been seen already; pass exclude_seen=false to rank them anyway")
        top = top_k(scores[None, :], k)[0]
        top = top[np.isfinite(scores[top])]
        return Recommendations([native_id(self.log.items[i]) for i in top], [float(scores[i]) for i in top], notes)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data, *, k: int | None = None, report: str | Path | None = None) -> dict[str, Any]:
        """Ranking metrics on held-out interactions (a table with the user and item columns):
        for every user in it, the items they had not seen in training are ranked."""
        from takeoff.data.sources import read_table, source_name

        rc = self.manifest["recommend"]
        k = _check_k(k or rc["k"])
        df = data if isinstance(data, pd.DataFrame) else read_table(data)
        name = "the data" if isinstance(data, pd.DataFrame) else source_name(data)
        held, _ = interactions_from_frame(df, rc["user"], rc["item"], None, None, where=name)
        users = self.log.codes_of_users(held.users)
        items = self.log.codes_of_items(held.items)
        pairs = [(users[u], items[i]) for u, i in zip(held.user_codes, held.item_codes)]
        unknown_users = int(sum(1 for u, _ in pairs if u < 0))
        relevant: dict[int, set[int]] = {}
        for u, i in pairs:
            if u >= 0:
                relevant.setdefault(int(u), set()).add(int(i))  # an unknown item (-1) counts as a miss
        if not relevant:
            raise DataError(f"none of the users in {name} is known to the model; nothing to evaluate")
        codes = np.array(sorted(relevant), dtype=np.int64)
        truth = [relevant[u] for u in codes]
        top = recommend_top(self.family, self.log, codes, k, exclude_seen=True)
        metrics = ranking_metrics(top, truth, self.n_items, k)
        metrics["unknown_users"] = unknown_users
        if report is not None:
            from takeoff.evaluation.report import write_recommend_report

            activity = np.bincount(self.log.user_codes, minlength=self.n_users)[codes]
            write_recommend_report(report, title=f"{rc['item']} recommendations — evaluation on {name}", metrics=metrics,
                                   leaderboard={self.manifest["family"]: metrics},
                                   buckets=by_activity(top, truth, activity, self.n_items, k), data_name=name,
                                   info={"family": self.manifest["family"], "training": self.manifest["training"]})
        return metrics

    # ------------------------------------------------------------------ bundle
    def save(self, path: str | Path) -> Path:
        """Write the model as a bundle directory (atomically)."""
        import shutil

        from safetensors.numpy import save_file

        def fill(tmp: Path) -> None:
            bundle.write_json(tmp / LOG_JSON, {"users": self.log.users, "items": self.log.items, "columns": self.log.columns})
            save_file(self.log.arrays(), str(tmp / LOG_ARRAYS))
            save_file({"scores": self.fallback.astype(np.float32)}, str(tmp / FALLBACK))
            if self.items is not None:
                bundle.write_json(tmp / ITEMS_JSON, self.items.to_json())
            if self.users is not None:
                bundle.write_json(tmp / USERS_JSON, self.users.to_json())
            (tmp / MODEL_DIR).mkdir()
            self.family.save(tmp / MODEL_DIR)
            for name, source in self._attachments.items():
                shutil.copyfile(source, tmp / name)
            bundle.write_json(tmp / "metrics.json", {"task": "recommend", "metrics": self.metrics})

        manifest = {k: v for k, v in self.manifest.items() if k not in ("format", "format_version", "files")}
        self.path = bundle.write(path, manifest, fill)
        self.manifest = bundle.read_manifest(self.path, verify=False)  # as a load would see it
        self.__dict__.pop("version", None)
        self._attachments = {n: self.path / n for n in self._attachments}
        return self.path

    @classmethod
    def _load(cls, path: Path, manifest: dict[str, Any]) -> RecommenderModel:
        from safetensors.numpy import load_file

        name = manifest.get("family")
        if name not in registry.recommender_names():
            raise BundleError(str(path), f"uses recommender '{name}', unknown to this takeoff {__version__}", "upgrade takeoff")
        meta = json.loads((path / LOG_JSON).read_text())
        log_ = Interactions.from_arrays(meta["users"], meta["items"], load_file(str(path / LOG_ARRAYS)), meta["columns"])
        items = ItemFeatures.from_json(json.loads((path / ITEMS_JSON).read_text())) if (path / ITEMS_JSON).exists() else None
        users = None
        if (path / USERS_JSON).exists():
            users = UserFeatures.from_json(json.loads((path / USERS_JSON).read_text()))
        kind = registry.get_recommender(name)
        family = kind.load(path / MODEL_DIR, manifest["params"], log_, **_feature_args(kind, items, users))
        fallback = load_file(str(path / FALLBACK))["scores"]
        model = cls(manifest, log_, family, fallback, items, users)
        model.path = path
        model._attachments = {n: path / n for n in ("report.html",) if (path / n).exists()}
        return model


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be a whole number of at least 1, got {k!r}")
    return int(k)


