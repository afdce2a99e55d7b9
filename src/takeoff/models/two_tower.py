"""``two-tower``: a user tower and an item tower whose vectors meet in a cosine (or dot) score.

* Item tower: an item ID embedding (row ``n_items`` is a shared "unknown item" row) plus,
  when item features are given, the mean embedding of each categorical column's tokens
  (vocabulary built at fit; unknown tokens ignored) and of each text column's words (hashed
  with ``zlib.crc32`` into a fixed number of buckets), then a residual MLP.
* User tower: the user ID embedding (row ``n_users`` is a shared "unknown user" row) plus, when
  user features are given, the mean embeddings of their categorical tokens and text words (as
  for items, in tables of their own), next to a recency-weighted mean of the item ID embeddings
  of the user's last ``history_length`` interactions (one learned weight per position), through
  a residual MLP on top of that mean.

Training: each interaction is a positive for its user, with the history made of the
interactions *before* it (so training matches scoring, where the history is the user's last
interactions). The loss is a sampled softmax over the batch's items plus ``negatives``
uniformly drawn items, with the logQ correction (the full softmax when the catalogue is no
larger than ``negatives``); AdamW; early stopping on NDCG@10 of each user's last interaction
(held out of the training log), keeping the best epoch's weights; the time budget. Item and user
IDs are randomly replaced by their unknown row (``id_dropout``) so that features alone give
useful vectors; with user features, an example whose user ID is dropped also loses its history,
so that it is trained as a new user described by features alone would be seen (without user
features the history is kept: the unknown row then stands for a new user with a history).
:meth:`TwoTowerRecommender.embed_items` embeds items the log has never seen,
:meth:`TwoTowerRecommender.embed_users` users it has never seen.
"""

from __future__ import annotations

import re
import time
import zlib
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from takeoff.bundle import read_spec, write_atomic, write_json
from takeoff.data.interactions import Interactions, leave_last_out
from takeoff.errors import BudgetError, BundleError, DataError
from takeoff.models.base import FitReport, Params
from takeoff.models.recommender import ItemFeatures, Recommender, UserFeatures
from takeoff.training.context import FitContext

WEIGHTS_FILE = "two_tower.safetensors"
SPEC_FILE = "two_tower.json"
FORMAT = "takeoff-two-tower"
FORMAT_VERSION = 2  # 2: the unknown user row and user features; version 1 files still load
MAX_TOKENS = 32  # tokens kept per item and column (the first ones)
MAX_VOCABULARY = 100_000  # most frequent categorical tokens kept
VALID_USERS = 2000  # users scored for early stopping (a seeded sample beyond this)
SCORE_BATCH = 512
_WORD = re.compile(r"\w+")


class TwoTowerParams(Params):
    """Hyperparameters of the two-tower recommender."""

    embedding_dim: int = Field(64, ge=2, description="Size of the ID, token and output vectors.")
    hidden_dim: int = Field(128, ge=1, description="Width of the hidden layer of each tower's MLP.")
    history_length: int = Field(50, ge=1, description="Most recent interactions that make up a user's history.")
    similarity: Literal["cosine", "dot"] = Field("cosine", description="Score: cosine / temperature, or dot product.")
    temperature: float = Field(0.1, gt=0.0, description="Softmax temperature of the cosine score.")
    max_epochs: int = Field(40, ge=1, description="Most passes over the log; early stopping usually ends sooner.")
    patience: int = Field(3, ge=1, description="Epochs without a better validation NDCG@10 before stopping.")
    batch_size: int = Field(1024, ge=2, description="Interactions per optimizer step.")
    learning_rate: float = Field(1e-2, gt=0.0, le=1.0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-5, ge=0.0, description="AdamW weight decay.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout inside both towers' MLPs.")
    id_dropout: float = Field(
        0.1, ge=0.0, le=1.0,
        description="Share of items, and of users, trained with the unknown ID row (teaches cold start)."
    )
    negatives: int = Field(
        1024, ge=1, description="Uniformly sampled negatives per step, besides the batch's own items; "
        "a catalogue no larger than this gets the full softmax."
    )
    logq_correction: bool = Field(
        True, description="Subtract the log of each candidate's sampling rate from its logit (sampled softmax)."
    )
    hash_buckets: int = Field(2**15, ge=16, description="Hash space for the words of text columns.")


def _words(text: str) -> list[str]:
    return _WORD.findall(str(text).lower())


def _bucket(column: str, word: str, buckets: int) -> int:
    """A stable hash bucket (1..buckets; 0 pads) of a word of a text column."""
    return 1 + zlib.crc32(f"{column}\x1f{word}".encode("utf-8")) % buckets


def _vocabulary(features: ItemFeatures | UserFeatures) -> dict[str, list[str]]:
    """Per categorical column, its tokens by descending frequency (capped at MAX_VOCABULARY in all)."""
    counts: dict[tuple[str, str], int] = {}
    for column, lists in features.categorical.items():
        for tokens in lists:
            for token in tokens[:MAX_TOKENS]:
                counts[(column, str(token))] = counts.get((column, str(token)), 0) + 1
    kept = sorted(counts, key=lambda key: (-counts[key], key))[:MAX_VOCABULARY]
    vocabulary: dict[str, list[str]] = {column: [] for column in features.categorical}
    for column, token in sorted(kept):
        vocabulary[column].append(token)
    return vocabulary


def _token_matrix(rows: list[list[list[int]]], n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad per-item, per-column token ids into (n_items, width) ids and weights; each column
    of an item gets total weight 1 (a mean per column), padding id 0 gets weight 0."""
    width = max([sum(len(c) for c in item) for item in rows] + [1])
    ids = np.zeros((n_items, width), dtype=np.int64)
    weights = np.zeros((n_items, width), dtype=np.float32)
    for i, item in enumerate(rows):
        k = 0
        for column in item:
            for token in column:
                ids[i, k], weights[i, k] = token, 1.0 / len(column)
                k += 1
    return ids, weights


def _encode(features: ItemFeatures | UserFeatures | None, n: int, vocabulary: dict[str, list[str]],
            text_columns: list[str], buckets: int) -> dict[str, np.ndarray]:
    """Padded token ids and weights (n, width) of the categorical columns and of the hashed
    text words of ``n`` rows (unknown tokens and columns are ignored)."""
    categorical: list[list[list[int]]] = [[] for _ in range(n)]
    words: list[list[list[int]]] = [[] for _ in range(n)]
    if features is not None:
        offset = 1
        for column, tokens in vocabulary.items():
            index = {token: offset + k for k, token in enumerate(tokens)}
            offset += len(tokens)
            for i, values in enumerate(features.categorical.get(column, [[]] * n)[:n]):
                ids = [index[t] for t in dict.fromkeys(str(v) for v in values[:MAX_TOKENS]) if t in index]
                if ids:
                    categorical[i].append(ids)
        for column in text_columns:
            for i, text in enumerate(features.text.get(column, [""] * n)[:n]):
                ids = [_bucket(column, w, buckets) for w in _words(text or "")[:MAX_TOKENS]]
                if ids:
                    words[i].append(ids)
    cat_ids, cat_weights = _token_matrix(categorical, n)
    word_ids, word_weights = _token_matrix(words, n)
    return {"cat_ids": cat_ids, "cat_weights": cat_weights, "word_ids": word_ids, "word_weights": word_weights}


def encode_items(features: ItemFeatures | None, n_items: int, spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The item tower's feature inputs for ``n_items`` items: padded token ids and weights of the
    categorical columns and of the hashed text words (unknown tokens and columns are ignored)."""
    return _encode(features, n_items, spec["vocabulary"], spec["text_columns"], spec["hash_buckets"])


def encode_users(features: UserFeatures | None, n_users: int, spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The user tower's feature inputs for ``n_users`` users, as :func:`encode_items`."""
    return _encode(features, n_users, spec.get("user_vocabulary", {}), spec.get("user_text_columns", []),
                   spec["hash_buckets"])


def _has_user_features(spec: dict[str, Any]) -> bool:
    return bool(spec.get("n_user_tokens") or spec.get("user_text_columns"))


def _network(spec: dict[str, Any]):
    """The torch module described by ``spec`` (the architecture part of two_tower.json)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    d, h = spec["embedding_dim"], spec["hidden_dim"]

    def mlp(width: int) -> nn.Sequential:
        return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, h), nn.GELU(), nn.Dropout(spec["dropout"]),
                             nn.Linear(h, d))

    class TwoTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item_id = nn.Embedding(spec["n_items"] + 1, d)  # row n_items: the unknown item
            self.tokens = nn.EmbeddingBag(spec["n_tokens"] + 1, d, mode="sum", padding_idx=0)
            self.words = nn.EmbeddingBag(spec["hash_buckets"] + 1, d, mode="sum", padding_idx=0)
            self.item_mlp = mlp(d)
            # row n_users: the unknown user (format 1 files have none)
            self.user_id = nn.Embedding(spec["n_users"] + int(spec.get("unknown_user", False)), d)
            self.recency = nn.Parameter(torch.zeros(spec["history_length"]))
            self.user_mlp = mlp(2 * d)
            bags = [self.tokens, self.words]
            self.user_tokens = self.user_words = None
            if spec.get("n_user_tokens"):
                self.user_tokens = nn.EmbeddingBag(spec["n_user_tokens"] + 1, d, mode="sum", padding_idx=0)
                bags.append(self.user_tokens)
            if spec.get("user_text_columns"):
                self.user_words = nn.EmbeddingBag(spec["hash_buckets"] + 1, d, mode="sum", padding_idx=0)
                bags.append(self.user_words)
            for table in (self.item_id, self.user_id, *bags):
                nn.init.normal_(table.weight, std=0.1)
            with torch.no_grad():
                for bag in bags:
                    bag.weight[0].zero_()

        def items(self, ids, cat_ids, cat_weights, word_ids, word_weights):
            """(n, d) item vectors from ID codes (n,) and padded token ids / weights (n, width)."""
            x = self.item_id(ids)
            x = x + self.tokens(cat_ids, per_sample_weights=cat_weights)
            x = x + self.words(word_ids, per_sample_weights=word_weights)
            return self.output(x + self.item_mlp(x))

        def users(self, users, history, valid, features=None):
            """(B, d) user vectors from user ID rows (B,), the item codes of their histories
            (B, N), most recent first, the histories' validity mask (B, N), and the users'
            padded feature token ids / weights (dict of (B, width), when the tower has them)."""
            weight = torch.exp(self.recency - self.recency.max()) * valid  # (B, N)
            weight = weight / weight.sum(1, keepdim=True).clamp_min(1e-6)
            # the weighted mean of the history's ID embeddings, without a (B, N, d) tensor
            mean = F.embedding_bag(history, self.item_id.weight, per_sample_weights=weight, mode="sum")
            u = self.user_id(users)
            if self.user_tokens is not None:
                u = u + self.user_tokens(features["cat_ids"], per_sample_weights=features["cat_weights"])
            if self.user_words is not None:
                u = u + self.user_words(features["word_ids"], per_sample_weights=features["word_weights"])
            x = torch.cat([u, mean], dim=1)  # (B, 2d)
            return self.output(mean + self.user_mlp(x))

        def output(self, x):
            return F.normalize(x, dim=-1) if spec["similarity"] == "cosine" else x

    return TwoTower()


class _Sequences:
    """Each user's interactions in time order, for building histories."""

    def __init__(self, log: Interactions):
        rank = np.empty(len(log), dtype=np.int64)
        rank[log.order()] = np.arange(len(log))
        self.order = np.lexsort((rank, log.user_codes))  # interaction indices, by user then time
        self.items = log.item_codes[self.order].astype(np.int64)
        counts = np.bincount(log.user_codes, minlength=log.n_users)
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        self.users = log.user_codes[self.order].astype(np.int64)

    def history(self, positions: np.ndarray, users: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Items (B, length) before each position in the sequence array (most recent first) and
        their validity mask (only the same user's earlier interactions are valid)."""
        index = positions[:, None] - 1 - np.arange(length)[None, :]  # (B, length)
        valid = index >= self.starts[users][:, None]
        return np.where(valid, self.items[np.maximum(index, 0)], 0), valid


class TwoTowerRecommender(Recommender):
    """Two towers trained with a softmax over items; item features make cold items scorable.

    Example:
        >>> model = TwoTowerRecommender({"embedding_dim": 32, "max_epochs": 5})
        >>> model.fit(log, FitContext(seed=0), items)  # doctest: +SKIP
        >>> scores = model.score(log, np.array([0, 1]))  # (2, log.n_items)  # doctest: +SKIP
    """

    name: ClassVar[str] = "two-tower"
    auto_order: ClassVar[int | None] = 40
    Params: ClassVar[type[Params]] = TwoTowerParams
    uses_item_features: ClassVar[bool] = True
    uses_user_features: ClassVar[bool] = True

    def __init__(self, params: Params | dict[str, Any] | None = None):
        super().__init__(params)
        self.spec: dict[str, Any] | None = None
        self.best_epoch: int | None = None
        self._net: Any = None
        self._device: Any = None
        self._inputs: dict[str, Any] = {}  # item feature tensors on the device
        self._user_inputs: dict[str, Any] = {}  # user feature tensors on the device (when it has them)
        self._vectors: Any = None  # (n_items, d) item tower output, cached after fit/load

    # ------------------------------------------------------------------ fit
    def fit(self, log: Interactions, ctx: FitContext, items: ItemFeatures | None = None, *,
            users: UserFeatures | None = None) -> FitReport:
        """Train on ``log`` (see the module docstring); return by ``ctx.deadline``.

        Args:
            log: the interactions.
            ctx: deadline, seed, device.
            items: item features aligned with the log's item codes (default None).
            users: user features aligned with the log's user codes (default None).

        Raises:
            BudgetError: the deadline passed before a single batch was trained.
        """
        import torch
        import torch.nn.functional as F

        from takeoff.training.device import resolve_device, seed_everything

        start = time.monotonic()
        p: TwoTowerParams = self.params  # type: ignore[assignment]
        device = resolve_device(ctx.device)
        features = None if items is None or items.empty else items
        user_features = None if users is None or users.empty else users
        self.spec = {
            "n_users": log.n_users, "n_items": log.n_items, "embedding_dim": p.embedding_dim,
            "hidden_dim": p.hidden_dim, "history_length": p.history_length, "similarity": p.similarity,
            "dropout": p.dropout, "hash_buckets": p.hash_buckets,
            "vocabulary": _vocabulary(features) if features is not None else {},
            "text_columns": sorted(features.text) if features is not None else [],
            "unknown_user": True,
            "user_vocabulary": _vocabulary(user_features) if user_features is not None else {},
            "user_text_columns": sorted(user_features.text) if user_features is not None else [],
        }
        self.spec["n_tokens"] = sum(len(v) for v in self.spec["vocabulary"].values())
        self.spec["n_user_tokens"] = sum(len(v) for v in self.spec["user_vocabulary"].values())
        seed_everything(ctx.seed, deterministic=False)
        rng = np.random.default_rng(ctx.seed)
        net = _network(self.spec).to(device)
        self._net, self._device = net, device
        encoded = encode_items(features, log.n_items, self.spec)
        self._inputs = {k: torch.from_numpy(v).to(device) for k, v in encoded.items()}
        self._user_inputs = {}
        if _has_user_features(self.spec):
            encoded = encode_users(user_features, log.n_users, self.spec)
            self._user_inputs = {k: torch.from_numpy(v).to(device) for k, v in encoded.items()}
        # with user features, an example whose user ID is dropped also loses its history: it is
        # trained as a new user described by features alone. Measured on MovieLens (150 held-out
        # users described by their two favourite genres, hits in their top 20, 4 seeds): 240 on
        # average, against 202 when half of those examples keep their history (popularity: 222)
        cold = bool(self._user_inputs)

        train, valid = leave_last_out(log, seed=ctx.seed)
        sequences = _Sequences(train)
        valid_users = valid.user_codes.astype(np.int64)
        valid_items = valid.item_codes.astype(np.int64)
        if len(valid_users) > VALID_USERS:
            keep = np.sort(rng.choice(len(valid_users), VALID_USERS, replace=False))
            valid_users, valid_items = valid_users[keep], valid_items[keep]
        seen = train.matrix().tocsr()

        n_items = log.n_items
        full = p.negatives >= n_items
        # expected times an item is a candidate in a step (in-batch targets + uniform sample):
        # subtracting its log makes the sampled softmax estimate the full one
        share = np.bincount(train.item_codes, minlength=n_items) / max(len(train), 1)
        log_q = torch.from_numpy(np.log(np.clip(p.batch_size * share + p.negatives / n_items, 1e-6, 1.0)))
        log_q = log_q.float().to(device) if p.logq_correction and not full else None
        temperature = p.temperature if p.similarity == "cosine" else 1.0
        optimizer = torch.optim.AdamW(net.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay,
                                      fused=True)
        unknown = torch.tensor(n_items, device=device)
        all_items = torch.arange(n_items, device=device)

        def evaluate() -> float:
            if len(valid_users) == 0:
                return 0.0
            scores = self._scores(sequences, valid_users)
            scores[seen[valid_users].nonzero()] = -np.inf
            target = scores[np.arange(len(valid_users)), valid_items][:, None]
            rank = (scores > target).sum(1)
            return float(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).mean())

        def step(batch: np.ndarray) -> float:
            users = sequences.users[batch]
            hist, mask = sequences.history(batch, users, p.history_length)
            rows = users
            if p.id_dropout > 0:
                dropped = rng.random(len(users)) < p.id_dropout
                rows = np.where(dropped, log.n_users, users)  # the unknown user row
                if cold:
                    mask = mask & ~dropped[:, None]
            targets = torch.from_numpy(sequences.items[batch]).to(device)
            if full:
                candidates = all_items
            else:
                sample = torch.from_numpy(rng.choice(n_items, p.negatives, replace=False)).to(device)
                candidates = torch.unique(torch.cat([targets, sample]))  # sorted
            vectors = self._item_tower(candidates, drop=p.id_dropout, unknown=unknown)  # (C, d)
            user_vectors = self._user_tower(rows, hist, mask, self._user_features_of(users))  # (B, d)
            logits = user_vectors @ vectors.T / temperature  # (B, C)
            if log_q is not None:
                logits = logits - log_q[candidates]
            loss = F.cross_entropy(logits, torch.searchsorted(candidates, targets))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        t0 = time.monotonic()
        best_score, best_state, best_epoch = evaluate(), None, 0
        eval_seconds = time.monotonic() - t0
        history: dict[str, list[float]] = {"train_loss": [], "valid_ndcg_at_10": []}
        stopped_by, steps, bad_epochs, step_seconds = "max", 0, 0, 0.0
        for epoch in range(1, p.max_epochs + 1):
            net.train()
            order = rng.permutation(len(train))  # examples: positions in the sequence array
            total, count, cut = 0.0, 0, False
            for a in range(0, len(order), p.batch_size):
                # another step must leave time to evaluate this epoch
                if ctx.remaining() < step_seconds * 1.5 + eval_seconds * 1.2 + 0.05:
                    cut = True
                    break
                batch = order[a : a + p.batch_size]
                t0 = time.monotonic()
                total += step(batch) * len(batch)
                step_seconds = time.monotonic() - t0
                count += len(batch)
                steps += 1
            if count:
                history["train_loss"].append(total / count)
            if cut and ctx.remaining() < eval_seconds + 0.02:
                stopped_by = "time_budget"
                break
            t0 = time.monotonic()
            score = evaluate()
            eval_seconds = time.monotonic() - t0
            history["valid_ndcg_at_10"].append(score)
            if score > best_score or best_state is None:
                best_score, best_epoch, bad_epochs = score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad_epochs += 1
            if cut:
                stopped_by = "time_budget"
                break
            if bad_epochs >= p.patience and len(valid_users):
                stopped_by = "early_stopping"
                break
        if steps == 0:
            raise BudgetError(
                "recommender 'two-tower': the time budget ran out before the first batch was trained. "
                "Fix: give a larger time budget."
            )
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.best_epoch = best_epoch or None
        self._vectors = self._all_item_vectors()
        self.report = FitReport(best_iteration=self.best_epoch, history=history, stopped_by=stopped_by,
                                seconds=time.monotonic() - start)
        return self.report

    def _item_tower(self, ids, drop: float = 0.0, unknown=None):
        """Item tower vectors of item codes ``ids`` (a tensor); in training a share ``drop`` of
        them use the unknown ID row."""
        import torch

        inputs = self._inputs
        id_rows = ids
        if drop > 0:
            id_rows = torch.where(torch.rand(ids.shape, device=ids.device) < drop, unknown, ids)
        return self._net.items(id_rows, inputs["cat_ids"][ids], inputs["cat_weights"][ids],
                               inputs["word_ids"][ids], inputs["word_weights"][ids])

    def _user_tower(self, rows: np.ndarray, history: np.ndarray, valid: np.ndarray, features: dict | None):
        """User tower vectors (B, d) of ID rows ``rows`` (B,) (``n_users``: the unknown user),
        histories (B, N), validity masks (B, N) and feature inputs (dict of (B, width) tensors)."""
        import torch

        device = self._device
        return self._net.users(torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(device),
                               torch.from_numpy(history).to(device), torch.from_numpy(valid).to(device).float(),
                               features)

    def _user_features_of(self, users: np.ndarray) -> dict | None:
        """The stored feature inputs (dict of (B, width) tensors) of user codes; None without features."""
        import torch

        if not self._user_inputs:
            return None
        index = torch.from_numpy(np.asarray(users, dtype=np.int64)).to(self._device)
        return {k: v[index] for k, v in self._user_inputs.items()}

    def _known_users(self, sequences: _Sequences, users: np.ndarray):
        """User tower vectors (B, d) of user codes, each history being the user's last interactions."""
        batch = np.asarray(users, dtype=np.int64)
        hist, mask = sequences.history(sequences.ends[batch], batch, self.spec["history_length"])
        return self._user_tower(batch, hist, mask, self._user_features_of(batch))

    def _all_item_vectors(self):
        import torch

        self._net.eval()
        with torch.no_grad():
            ids = torch.arange(self.spec["n_items"], device=self._device)
            return torch.cat([self._item_tower(ids[a : a + 65536]) for a in range(0, len(ids), 65536)])

    def _scores(self, sequences: _Sequences, users: np.ndarray, vectors=None) -> np.ndarray:
        """float32 (len(users), n_items) scores, each user's history being its last interactions."""
        import torch

        self._net.eval()
        out = []
        with torch.no_grad():
            if vectors is None:
                vectors = self._all_item_vectors()
            for a in range(0, len(users), SCORE_BATCH):
                u = self._known_users(sequences, users[a : a + SCORE_BATCH])
                out.append((u @ vectors.T).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.spec["n_items"]), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    # -------------------------------------------------------------- predict
    def score(self, log: Interactions, users: np.ndarray) -> np.ndarray:
        """float32 (len(users), n_items): each user's vector (from its last ``history_length``
        interactions in ``log``) against every item vector."""
        self._check_fitted()
        return self._scores(_Sequences(log), np.asarray(users, dtype=np.int64), self._vectors)

    def item_vectors(self) -> np.ndarray | None:
        """(n_items, embedding_dim) float32 item tower vectors of the log's items."""
        self._check_fitted()
        return self._vectors.cpu().numpy().astype(np.float32, copy=False)

    def user_vectors(self, log: Interactions, users: np.ndarray) -> np.ndarray:
        """(len(users), embedding_dim) float32 user tower vectors of user codes, from their last
        ``history_length`` interactions in ``log``; ``user_vectors @ item_vectors().T`` is ``score``."""
        import torch

        self._check_fitted()
        sequences, users = _Sequences(log), np.asarray(users, dtype=np.int64)
        self._net.eval()
        with torch.no_grad():
            parts = [self._known_users(sequences, users[a : a + SCORE_BATCH])
                     for a in range(0, len(users), SCORE_BATCH)]
        if not parts:
            return np.zeros((0, self.spec["embedding_dim"]), dtype=np.float32)
        return torch.cat(parts).float().cpu().numpy()

    @property
    def has_user_features(self) -> bool:
        """Whether the model was fitted with user features (so :meth:`embed_users` can use them)."""
        return self.spec is not None and _has_user_features(self.spec)

    def embed_users(self, features: UserFeatures | None, history: list[list[int]] | None = None) -> np.ndarray:
        """User tower vectors of users the log does not hold, from their features and, optionally,
        the items they interacted with.

        Every user gets the shared "unknown user" ID row (trained through ``id_dropout``) plus
        its categorical tokens and hashed text words (tokens the model never saw are ignored)
        and the recency-weighted mean of its history. ``vectors @ item_vectors().T`` is on the
        scale of :meth:`score`. A model fitted with user features trained the unknown row
        without history (a new user as first seen); one fitted without them, with history.

        Args:
            features: the new users' features (the columns used at fit; others are ignored), or
                None.
            history: per user, item codes of the log in time order (oldest first); codes outside
                the catalogue (-1) are ignored. Default None: no history.

        Returns:
            float32 (n_new_users, embedding_dim), in the order of ``features`` / ``history``.

        Raises:
            DataError: the model has no unknown user row (a format 1 file), or it was fitted
                without user features and no history is given.

        Example:
            >>> new = UserFeatures({"favourite": [["Horror"]]})
            >>> model.embed_users(new)  # (1, embedding_dim)  # doctest: +SKIP
        """
        import torch

        self._check_fitted()
        spec = self.spec
        if not spec.get("unknown_user"):
            raise DataError("recommender 'two-tower' was saved by an older takeoff without a row for new users, "
                            "so it cannot embed them. Fix: retrain the model.")
        if history is None and not self.has_user_features:
            raise DataError("recommender 'two-tower' was fitted without user features, so it cannot embed a new "
                            "user from features alone. Fix: fit it with a user feature table, or give the user's "
                            "history.")
        n = max(len(features) if features is not None else 0, len(history) if history is not None else 0)
        length = spec["history_length"]
        hist = np.zeros((n, length), dtype=np.int64)
        valid = np.zeros((n, length), dtype=bool)
        for i, items in enumerate(history or []):
            codes = [int(c) for c in items if 0 <= int(c) < spec["n_items"]][-length:][::-1]  # most recent first
            hist[i, : len(codes)], valid[i, : len(codes)] = codes, True
        self._net.eval()
        inputs = None
        if self._user_inputs:
            inputs = {k: torch.from_numpy(v).to(self._device) for k, v in encode_users(features, n, spec).items()}
        with torch.no_grad():
            vectors = self._user_tower(np.full(n, spec["n_users"]), hist, valid, inputs)
        return vectors.float().cpu().numpy()

    def embed_items(self, features: ItemFeatures) -> np.ndarray:
        """Item tower vectors of items the log does not hold, from their features alone.

        Every item gets the shared "unknown item" ID row (trained through ``id_dropout``) plus
        its categorical tokens and hashed text words; tokens the model never saw are ignored.
        Compare the vectors with :meth:`item_vectors` or user vectors to score cold items.

        Args:
            features: the new items' features (the columns used at fit; others are ignored).

        Returns:
            float32 (n_new_items, embedding_dim), in the order of ``features``.

        Raises:
            DataError: the model was fitted without item features.

        Example:
            >>> new = ItemFeatures({"genres": [["Animation", "Children"]]}, {"title": ["Toy Tale"]})
            >>> model.embed_items(new)  # (1, embedding_dim)  # doctest: +SKIP
        """
        import torch

        self._check_fitted()
        if not self.spec["vocabulary"] and not self.spec["text_columns"]:
            raise DataError("recommender 'two-tower' was fitted without item features, so it cannot embed "
                            "new items. Fix: fit it with an item feature table.")
        lengths = [len(v) for v in (*features.categorical.values(), *features.text.values())]
        n = max(lengths, default=0)
        inputs = {k: torch.from_numpy(v).to(self._device) for k, v in encode_items(features, n, self.spec).items()}
        self._net.eval()
        with torch.no_grad():
            ids = torch.full((n,), self.spec["n_items"], dtype=torch.long, device=self._device)
            vectors = self._net.items(ids, inputs["cat_ids"], inputs["cat_weights"], inputs["word_ids"],
                                      inputs["word_weights"])
        return vectors.cpu().numpy().astype(np.float32, copy=False)

    def _check_fitted(self) -> None:
        if self._net is None or self.spec is None:
            raise DataError("recommender 'two-tower' has not been fitted or loaded; call fit() or load() first")

    # ------------------------------------------------------------ save/load
    def save(self, directory: Path) -> None:
        """Write ``two_tower.safetensors`` (weights and the items' and users' feature inputs) and
        ``two_tower.json`` (architecture, vocabularies, params) into ``directory``."""
        from safetensors.torch import save_file

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self._net.state_dict().items()}
        tensors.update({f"items.{k}": v.detach().cpu().contiguous() for k, v in self._inputs.items()})
        tensors.update({f"users.{k}": v.detach().cpu().contiguous() for k, v in self._user_inputs.items()})
        write_atomic(directory / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
        write_json(directory / SPEC_FILE, {
            "format": FORMAT, "version": FORMAT_VERSION, "architecture": self.spec,
            "best_epoch": self.best_epoch, "params": self.params.model_dump(mode="json"),
        })

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], log: Interactions,
             items: ItemFeatures | None = None, *, users: UserFeatures | None = None) -> TwoTowerRecommender:
        """Rebuild the towers from ``two_tower.json`` and load ``two_tower.safetensors`` (on the CPU).

        Raises:
            BundleError: a file is missing, unreadable, of another format, or does not fit ``log``.
        """
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        spec_path, weights_path = directory / SPEC_FILE, directory / WEIGHTS_FILE
        document = read_spec(directory, SPEC_FILE, (WEIGHTS_FILE,), FORMAT, (1, FORMAT_VERSION), "two-tower")
        spec = document["architecture"]
        if (spec["n_users"], spec["n_items"]) != (log.n_users, log.n_items):
            raise BundleError(str(spec_path), f"the model knows {spec['n_users']} users and {spec['n_items']} "
                              f"items, the log has {log.n_users} users and {log.n_items} items",
                              "load the model with the log it was fitted on")
        model = cls(params)
        net = _network(spec)
        try:
            tensors = load_file(str(weights_path), device="cpu")
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
            keys = ("cat_ids", "cat_weights", "word_ids", "word_weights")
            model._inputs = {k: tensors[f"items.{k}"] for k in keys}
            if _has_user_features(spec):
                model._user_inputs = {k: tensors[f"users.{k}"] for k in keys}
        except (OSError, SafetensorError, RuntimeError, KeyError) as error:
            raise BundleError(str(weights_path), f"weights do not match the architecture ({error})")
        net.eval()
        model.spec, model.best_epoch = spec, document.get("best_epoch")
        model._net, model._device = net, torch.device("cpu")
        model._vectors = model._all_item_vectors()
        return model
