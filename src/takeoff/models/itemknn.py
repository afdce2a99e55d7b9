"""``itemknn``: item-item cosine neighbours, scored from each user's recent history.

The similarity of items ``i`` and ``j`` is the cosine of their columns of the user × item
matrix (the interaction weights, or 1 per interaction), with a shrink term that damps pairs
seen by few users: ``x_i · x_j / (|x_i| |x_j| + shrink)``. Each item keeps its ``neighbors``
most similar items (a sparse table, zero diagonal). An item's score for a user sums the
similarities to it of the user's past items that are among its neighbours, each past
interaction weighted by ``0.5 ** (rank / recency_half_life)`` where rank 0 is the user's
latest interaction: what a user watched last says most about what comes next.

Measured on the MovieLens leave-last-out split (``shared/datasets/splits/movielens``, all
items unseen in train ranked, 671 users; popularity NDCG@10 0.0198, HR@10 0.0432), defaults
otherwise:

=============================================  =========  =======
variant                                        NDCG@10    HR@10
=============================================  =========  =======
no recency weighting                           0.0344     0.067
recency half-life 2                            0.0602     0.101
recency half-life 3 (default)                  0.0634     0.112
recency half-life 5                            0.0612     0.110
recency half-life 8                            0.0599     0.110
binary interactions (use_weights=False)        0.0579     0.109
neighbours kept per *history* item instead     0.0568     0.101
=============================================  =========  =======

Scoring each item from its own neighbour list (rather than adding the neighbour lists of the
user's items) is what the last row compares against. A second split (each user's last train
interaction held out, fitted on the rest) ranks the variants the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from takeoff.data.interactions import Interactions
from takeoff.errors import BudgetError, BundleError
from takeoff.models.base import FitReport, Params
from takeoff.models.recommender import ItemFeatures, Recommender
from takeoff.training.context import FitContext

WEIGHTS_FILE = "itemknn.safetensors"
META_FILE = "itemknn.json"
# Similarity rows are computed densely in blocks of about this many bytes (rows × n_items
# float32), so memory stays bounded for any catalogue size.
BLOCK_BYTES = 64 * 2**20


class ItemKNNParams(Params):
    """Hyperparameters of item-item nearest neighbours."""

    neighbors: int = Field(100, ge=1, description="Most similar items kept per item.")
    shrink: float = Field(10.0, ge=0, description="Added to the cosine's denominator; damps pairs seen by few users.")
    use_weights: bool = Field(True, description="Use the interaction weights (ratings) instead of 1 per interaction.")
    recency_half_life: float | None = Field(
        3.0, gt=0,
        description="A user's interaction this many interactions before their latest counts half when "
        "scoring; None: all count the same.",
    )


def history_matrix(log: Interactions, half_life: float | None, use_weights: bool):
    """The user × item CSR (float32) of each user's history, weighted by recency."""
    weights = log.weights.astype(np.float64) if use_weights else np.ones(len(log))
    if half_life is not None:
        weights = weights * 0.5 ** (log.recency_ranks() / half_life)
    return log.matrix(weights)


class ItemKNNRecommender(Recommender):
    """Item-item nearest neighbours over recency-weighted histories.

    Example:
        >>> model = ItemKNNRecommender({"neighbors": 50})
        >>> model.fit(log, FitContext(seed=0))
        >>> scores = model.score(log, np.array([0, 1]))  # (2, log.n_items)
        >>> nearest = model.similar(np.array([7]))  # (1, log.n_items), 0 outside item 7's neighbours
    """

    name = "itemknn"
    auto_order = 20
    Params = ItemKNNParams

    def fit(self, log: Interactions, ctx: FitContext, items: ItemFeatures | None = None) -> FitReport:
        """Compute the item-item neighbours of ``log``.

        The work is one pass over the items; it is not cut short at the deadline (a partial
        neighbour table would leave items without neighbours), but it does not start when the
        deadline has passed.

        Raises:
            BudgetError: the deadline had passed before the fit started.
        """
        if ctx.expired():
            raise BudgetError(
                "recommender 'itemknn': the time budget ran out before fitting started. Fix: give a larger time budget."
            )
        start = time.monotonic()
        self.similarity = item_similarity(log, self.params.neighbors, self.params.shrink, self.params.use_weights)
        if ctx.expired():
            ctx.warn(f"itemknn: the neighbour table took {time.monotonic() - start:.1f}s, past the deadline")
        self._set_log(log)
        self.report = FitReport(stopped_by="converged", seconds=time.monotonic() - start)
        return self.report

    def _set_log(self, log: Interactions) -> None:
        """Precompute what scoring needs: the weighted histories and the transposed table
        (row ``i``: the items that have ``i`` among their neighbours)."""
        self._log = log
        self._history = history_matrix(log, self.params.recency_half_life, self.params.use_weights)
        self._incoming = self.similarity.T.tocsr()

    def score(self, log: Interactions, users: np.ndarray) -> np.ndarray:
        if log is not self._log:
            self._set_log(log)
        rows = self._history[np.asarray(users, dtype=np.int64)]  # (len(users), n_items) sparse
        return np.asarray((rows @ self._incoming).toarray(), dtype=np.float32)

    def similar(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.similarity[np.asarray(items, dtype=np.int64)].toarray(), dtype=np.float32)

    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        s = self.similarity
        arrays = {"indptr": s.indptr.astype(np.int64), "indices": s.indices.astype(np.int32),
                  "data": s.data.astype(np.float32)}
        save_file(arrays, str(Path(directory) / WEIGHTS_FILE))
        (Path(directory) / META_FILE).write_text(json.dumps({"n_items": int(s.shape[0]), "nnz": int(s.nnz)}))

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], log: Interactions,
             items: ItemFeatures | None = None) -> ItemKNNRecommender:
        import scipy.sparse as sp
        from safetensors.numpy import load_file

        meta = json.loads((Path(directory) / META_FILE).read_text())
        arrays = load_file(str(Path(directory) / WEIGHTS_FILE))
        n = int(meta["n_items"])
        if n != log.n_items:
            raise BundleError(str(directory), f"the itemknn table has {n} items but the interaction log has "
                              f"{log.n_items}", "load the model with the log it was trained on, or retrain it")
        model = cls(params)
        model.similarity = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n))
        model._set_log(log)
        return model


def item_similarity(log: Interactions, neighbors: int, shrink: float, use_weights: bool):
    """The item × item CSR (float32) of each item's ``neighbors`` largest shrunk cosines.

    Rows are computed in blocks (dense block × n_items), so memory stays bounded however large
    the catalogue; no item is its own neighbour.
    """
    import scipy.sparse as sp

    n = log.n_items
    X = log.matrix(None if use_weights else np.ones(len(log), dtype=np.float32))  # users × items
    X.sum_duplicates()
    XT = X.T.tocsr()  # items × users
    norms = np.sqrt(np.asarray(XT.multiply(XT).sum(axis=1)).ravel()).astype(np.float32)
    k = min(neighbors, max(n - 1, 1))
    block = max(1, min(n, BLOCK_BYTES // (4 * max(n, 1))))
    indptr, indices, data = [np.zeros(1, dtype=np.int64)], [], []
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        dots = (XT[lo:hi] @ X).toarray()  # (hi - lo, n) co-occurrence
        sims = dots / (norms[lo:hi, None] * norms[None, :] + shrink + 1e-12)
        sims[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        if k < n:
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(n), (hi - lo, n))
        values = np.take_along_axis(sims, top, axis=1)
        keep = values > 0  # an item seen with no other item has no neighbours
        counts = keep.sum(axis=1)
        indptr.append(indptr[-1][-1] + np.cumsum(counts))
        indices.append(top[keep].astype(np.int32))
        data.append(values[keep].astype(np.float32))
    similarity = sp.csr_matrix(
        (np.concatenate(data) if data else np.zeros(0, np.float32),
         np.concatenate(indices) if indices else np.zeros(0, np.int32),
         np.concatenate(indptr)),
        shape=(n, n),
    )
    similarity.sort_indices()
    return similarity
