"""The model of the recommendation pipeline: the interaction log it knows, the fitted family,
and popularity (or, with user features, the family's new-user vectors) for users it has never
seen; and its bundle files.

Example:
    >>> model = takeoff.load("runs/recs")
    >>> model.recommend(42, k=10)
    >>> model.similar_items(1, k=5)
    >>> model.recommend("new-user", k=10, features={"country": "FR", "favourite": "Horror"})
    >>> model.rank_new_items(42, pd.DataFrame({"movieId": [90001], "genres": ["Horror"]}))
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff import bundle, registry
from takeoff._version import __version__
from takeoff.data.interactions import Interactions, id_key, id_keys, interactions_from_frame, native_id
from takeoff.errors import BundleError, DataError, closest, preview
from takeoff.evaluation.ranking import by_activity, ranking_metrics, top_k
from takeoff.models.recommender import ItemFeatures, Recommender, UserFeatures, tokens_of
from takeoff.pipelines.base import Predictor, check_k
from takeoff.pipelines.recommendation.features import feature_args
from takeoff.pipelines.recommendation.ranking import Recommendations, recommend_top

LOG_JSON, LOG_ARRAYS, ITEMS_JSON, FALLBACK = "log.json", "log.safetensors", "items.json", "popular.safetensors"
USERS_JSON = "users.json"
MODEL_DIR = "model"


class RecommenderModel(Predictor):
    """A trained recommender: the interaction log it knows, the fitted family, and popularity
    (or, with user features, the family's new-user vectors) for users it has never seen. Use
    :func:`takeoff.train` (``task="recommend"``) or :func:`takeoff.load` to get one."""

    kind = "recommend"

    def __init__(self, manifest: dict[str, Any], log_: Interactions, family: Recommender, fallback: np.ndarray,
                 items: ItemFeatures | None, users: UserFeatures | None = None):
        super().__init__(manifest)
        self.log, self.family, self.fallback, self.items = log_, family, fallback, items
        self.users = users
        self._seen = log_.matrix().tocsr()
        self._similar_cache: np.ndarray | None = None

    # ------------------------------------------------------------------ facts
    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest["metrics"]

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
        k = check_k(k)
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
        k = check_k(k)
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
        k = check_k(k)
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
        k = check_k(k or rc["k"])
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
    def write_files(self, directory: Path, manifest: dict[str, Any]) -> None:
        from safetensors.numpy import save_file

        bundle.write_json(directory / LOG_JSON, {"users": self.log.users, "items": self.log.items, "columns": self.log.columns})
        save_file(self.log.arrays(), str(directory / LOG_ARRAYS))
        save_file({"scores": self.fallback.astype(np.float32)}, str(directory / FALLBACK))
        if self.items is not None:
            bundle.write_json(directory / ITEMS_JSON, self.items.to_json())
        if self.users is not None:
            bundle.write_json(directory / USERS_JSON, self.users.to_json())
        (directory / MODEL_DIR).mkdir()
        self.family.save(directory / MODEL_DIR)
        bundle.write_json(directory / "metrics.json", {"task": "recommend", "metrics": self.metrics})

    @classmethod
    def from_bundle(cls, path: Path, manifest: dict[str, Any]) -> RecommenderModel:
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
        family_class = registry.get_recommender(name)
        family = family_class.load(path / MODEL_DIR, manifest["params"], log_, **feature_args(family_class, items, users))
        fallback = load_file(str(path / FALLBACK))["scores"]
        return cls(manifest, log_, family, fallback, items, users)
