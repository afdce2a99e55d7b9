"""What the two towers read: feature tokens as padded id/weight matrices, and user histories.

* Categorical columns: each row's tokens (the first ``MAX_TOKENS``) looked up in a vocabulary
  built at fit (the ``MAX_VOCABULARY`` most frequent tokens; unknown tokens are ignored).
* Text columns: each row's words (the first ``MAX_TOKENS``) hashed with ``zlib.crc32`` into
  ``hash_buckets`` buckets.
* Histories: each user's interactions in time order, from which the items before any
  position (most recent first) make the history the user tower averages.

Torch is imported inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np

from takeoff.data.interactions import Interactions
from takeoff.models.recommender import ItemFeatures, UserFeatures

MAX_TOKENS = 32  # tokens kept per row and column (the first ones)
MAX_VOCABULARY = 100_000  # most frequent categorical tokens kept
INPUT_KEYS = ("cat_ids", "cat_weights", "word_ids", "word_weights")
_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(str(text).lower())


def _bucket(column: str, word: str, buckets: int) -> int:
    """A stable hash bucket (1..buckets; 0 pads) of a word of a text column."""
    return 1 + zlib.crc32(f"{column}\x1f{word}".encode("utf-8")) % buckets


def vocabulary(features: ItemFeatures | UserFeatures) -> dict[str, list[str]]:
    """Per categorical column, its tokens by descending frequency (capped at MAX_VOCABULARY in all)."""
    counts: dict[tuple[str, str], int] = {}
    for column, lists in features.categorical.items():
        for tokens in lists:
            for token in tokens[:MAX_TOKENS]:
                counts[(column, str(token))] = counts.get((column, str(token)), 0) + 1
    kept = sorted(counts, key=lambda key: (-counts[key], key))[:MAX_VOCABULARY]
    out: dict[str, list[str]] = {column: [] for column in features.categorical}
    for column, token in sorted(kept):
        out[column].append(token)
    return out


def _token_matrix(rows: list[list[list[int]]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad per-row, per-column token ids into (n, width) ids and weights; each column of a row
    gets total weight 1 (a mean per column), padding id 0 gets weight 0."""
    width = max([sum(len(c) for c in row) for row in rows] + [1])
    ids = np.zeros((n, width), dtype=np.int64)
    weights = np.zeros((n, width), dtype=np.float32)
    for i, row in enumerate(rows):
        k = 0
        for column in row:
            for token in column:
                ids[i, k], weights[i, k] = token, 1.0 / len(column)
                k += 1
    return ids, weights


def _encode(features: ItemFeatures | UserFeatures | None, n: int, vocab: dict[str, list[str]],
            text_columns: list[str], buckets: int) -> dict[str, np.ndarray]:
    """Padded token ids and weights (n, width) of the categorical columns and of the hashed
    text words of ``n`` rows (unknown tokens and columns are ignored)."""
    categorical: list[list[list[int]]] = [[] for _ in range(n)]
    words: list[list[list[int]]] = [[] for _ in range(n)]
    if features is not None:
        offset = 1
        for column, tokens in vocab.items():
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


def has_user_features(spec: dict[str, Any]) -> bool:
    """Whether the architecture ``spec`` has a user feature input (format 1 files have none)."""
    return bool(spec.get("n_user_tokens") or spec.get("user_text_columns"))


class Sequences:
    """Each user's interactions in time order, as tensors on ``device``, for building histories.

    Attributes:
        items, users: int64 (n,): the item and user code at each position (by user, then time).
        starts, ends: int64 (n_users,): each user's first position and one past its last.
    """

    def __init__(self, log: Interactions, device: Any):
        import torch

        rank = np.empty(len(log), dtype=np.int64)
        rank[log.order()] = np.arange(len(log))
        order = np.lexsort((rank, log.user_codes))  # interaction indices, by user then time
        counts = np.bincount(log.user_codes, minlength=log.n_users)
        ends = np.cumsum(counts).astype(np.int64)

        def tensor(values: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64)).to(device)

        self.items = tensor(log.item_codes[order])
        self.users = tensor(log.user_codes[order])
        self.starts, self.ends = tensor(ends - counts), tensor(ends)

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def history(self, positions, users, length: int):
        """Items (B, length) before each position (most recent first) and their validity mask
        (B, length) (only the same user's earlier interactions are valid); int64 tensors in."""
        import torch

        steps = torch.arange(1, length + 1, device=positions.device)
        index = positions[:, None] - steps[None, :]  # (B, length)
        valid = index >= self.starts[users][:, None]
        return torch.where(valid, self.items[index.clamp_min(0)], 0), valid

    def latest(self, users, length: int):
        """Each user's last ``length`` items (most recent first) and their validity mask."""
        return self.history(self.ends[users], users, length)
