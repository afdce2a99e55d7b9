"""The two towers as a torch module, and the architecture spec it is built from.

* Item tower: an item ID embedding (row ``n_items`` is a shared "unknown item" row) plus, when
  item features are given, the summed token and word embeddings (each column a mean), then a
  residual MLP.
* User tower: the user ID embedding (row ``n_users``: the unknown user) plus the user's token
  and word embeddings, next to a recency-weighted mean of the item ID embeddings of its history
  (one learned weight per position), through a residual MLP on top of that mean.

The items' and users' feature inputs (see :mod:`takeoff.models.two_tower_inputs`) live in the
module as non-persistent buffers: they move with it to the device, and its ``state_dict``
holds the weights only. Torch is imported inside functions, so importing this module stays
cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from takeoff.data.interactions import Interactions
from takeoff.models.recommender import ItemFeatures, UserFeatures
from takeoff.models.two_tower_inputs import INPUT_KEYS, Sequences, has_user_features, vocabulary

SCORE_BATCH = 512  # users scored per matrix product
ITEM_BATCH = 65536  # items through the item tower per forward pass


def architecture(log: Interactions, params: Any, items: ItemFeatures | None,
                 users: UserFeatures | None) -> dict[str, Any]:
    """The spec (the architecture part of two_tower.json) of towers for ``log`` and the features."""
    spec = {
        "n_users": log.n_users, "n_items": log.n_items, "embedding_dim": params.embedding_dim,
        "hidden_dim": params.hidden_dim, "history_length": params.history_length,
        "similarity": params.similarity, "dropout": params.dropout, "hash_buckets": params.hash_buckets,
        "vocabulary": vocabulary(items) if items is not None else {},
        "text_columns": sorted(items.text) if items is not None else [],
        "unknown_user": True,
        "user_vocabulary": vocabulary(users) if users is not None else {},
        "user_text_columns": sorted(users.text) if users is not None else [],
    }
    spec["n_tokens"] = sum(len(v) for v in spec["vocabulary"].values())
    spec["n_user_tokens"] = sum(len(v) for v in spec["user_vocabulary"].values())
    return spec


def network(spec: dict[str, Any], item_inputs: dict[str, Any], user_inputs: dict[str, Any] | None = None):
    """The torch module described by ``spec``, holding the feature inputs (dicts of (n, width)
    tensors or arrays, keys ``INPUT_KEYS``) of the log's items and, when the spec has user
    features, of its users."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    d, h = spec["embedding_dim"], spec["hidden_dim"]

    def mlp(width: int) -> nn.Sequential:
        return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, h), nn.GELU(), nn.Dropout(spec["dropout"]),
                             nn.Linear(h, d))

    def bag(rows: int) -> nn.EmbeddingBag:
        return nn.EmbeddingBag(rows + 1, d, mode="sum", padding_idx=0)

    class TwoTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item_id = nn.Embedding(spec["n_items"] + 1, d)  # row n_items: the unknown item
            self.tokens = bag(spec["n_tokens"])
            self.words = bag(spec["hash_buckets"])
            self.item_mlp = mlp(d)
            # row n_users: the unknown user (format 1 files have none)
            self.user_id = nn.Embedding(spec["n_users"] + int(spec.get("unknown_user", False)), d)
            self.recency = nn.Parameter(torch.zeros(spec["history_length"]))
            self.user_mlp = mlp(2 * d)
            bags = [self.tokens, self.words]
            self.user_tokens = self.user_words = None
            if spec.get("n_user_tokens"):
                self.user_tokens = bag(spec["n_user_tokens"])
                bags.append(self.user_tokens)
            if spec.get("user_text_columns"):
                self.user_words = bag(spec["hash_buckets"])
                bags.append(self.user_words)
            for table in (self.item_id, self.user_id, *bags):
                nn.init.normal_(table.weight, std=0.1)
            with torch.no_grad():
                for table in bags:
                    table.weight[0].zero_()
            self.has_user_inputs = has_user_features(spec)
            for prefix, inputs in (("item_", item_inputs), ("user_", user_inputs if self.has_user_inputs else None)):
                for key in INPUT_KEYS if inputs is not None else ():
                    self.register_buffer(prefix + key, torch.as_tensor(inputs[key]), persistent=False)

        # ---------------------------------------------------------------- items
        def item_inputs(self, ids) -> dict[str, Any]:
            """The stored feature inputs (dict of (n, width) tensors) of item codes ``ids``."""
            return {k: getattr(self, "item_" + k)[ids] for k in INPUT_KEYS}

        def items(self, id_rows, inputs: dict[str, Any]):
            """(n, d) item vectors from ID embedding rows (n,) and padded token ids / weights (n, width)."""
            x = self.item_id(id_rows)
            x = x + self.tokens(inputs["cat_ids"], per_sample_weights=inputs["cat_weights"])
            x = x + self.words(inputs["word_ids"], per_sample_weights=inputs["word_weights"])
            return self.output(x + self.item_mlp(x))

        @torch.no_grad()
        def item_vectors(self):
            """(n_items, d) vectors of every item of the log (eval mode)."""
            self.eval()
            ids = torch.arange(spec["n_items"], device=self.item_id.weight.device)
            return torch.cat([self.items(ids[a : a + ITEM_BATCH], self.item_inputs(ids[a : a + ITEM_BATCH]))
                              for a in range(0, len(ids), ITEM_BATCH)])

        # ---------------------------------------------------------------- users
        def user_inputs(self, users) -> dict[str, Any] | None:
            """The stored feature inputs of user codes ``users``; None without user features."""
            if not self.has_user_inputs:
                return None
            return {k: getattr(self, "user_" + k)[users] for k in INPUT_KEYS}

        def users(self, rows, history, valid, features=None):
            """(B, d) user vectors from user ID rows (B,), the item codes of their histories
            (B, N), most recent first, the histories' validity mask (B, N), and the users'
            padded feature token ids / weights (dict of (B, width), when the tower has them)."""
            weight = torch.exp(self.recency - self.recency.max()) * valid  # (B, N)
            weight = weight / weight.sum(1, keepdim=True).clamp_min(1e-6)
            # the weighted mean of the history's ID embeddings, without a (B, N, d) tensor
            mean = F.embedding_bag(history, self.item_id.weight, per_sample_weights=weight, mode="sum")
            u = self.user_id(rows)
            if self.user_tokens is not None:
                u = u + self.user_tokens(features["cat_ids"], per_sample_weights=features["cat_weights"])
            if self.user_words is not None:
                u = u + self.user_words(features["word_ids"], per_sample_weights=features["word_weights"])
            x = torch.cat([u, mean], dim=1)  # (B, 2d)
            return self.output(mean + self.user_mlp(x))

        def known_users(self, sequences: Sequences, users):
            """(B, d) vectors of user codes (an int64 tensor), each history being the user's last
            interactions in ``sequences``."""
            history, valid = sequences.latest(users, spec["history_length"])
            return self.users(users, history, valid.float(), self.user_inputs(users))

        @torch.no_grad()
        def user_vectors(self, sequences: Sequences, users: np.ndarray):
            """(len(users), d) vectors of user codes (eval mode), in batches."""
            self.eval()
            codes = torch.from_numpy(np.ascontiguousarray(users, dtype=np.int64)).to(self.item_id.weight.device)
            parts = [self.known_users(sequences, codes[a : a + SCORE_BATCH]) for a in range(0, len(codes), SCORE_BATCH)]
            return torch.cat(parts) if parts else torch.zeros((0, d), device=codes.device)

        @torch.no_grad()
        def scores(self, sequences: Sequences, users: np.ndarray, vectors=None) -> np.ndarray:
            """float32 (len(users), n_items) scores against ``vectors`` (default: every item's)."""
            self.eval()
            if vectors is None:
                vectors = self.item_vectors()
            codes = torch.from_numpy(np.ascontiguousarray(users, dtype=np.int64)).to(vectors.device)
            out = [(self.known_users(sequences, codes[a : a + SCORE_BATCH]) @ vectors.T).float().cpu().numpy()
                   for a in range(0, len(codes), SCORE_BATCH)]
            if not out:
                return np.zeros((0, spec["n_items"]), dtype=np.float32)
            return np.concatenate(out).astype(np.float32, copy=False)

        def output(self, x):
            return F.normalize(x, dim=-1) if spec["similarity"] == "cosine" else x

    return TwoTower()
