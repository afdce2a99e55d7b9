"""``two-tower``: a user tower and an item tower whose vectors meet in a cosine (or dot) score.

* Item tower: an item ID embedding (row ``n_items`` is a shared "unknown item" row) plus, when
  item features are given, the mean embedding of each categorical column's tokens
  (vocabulary built at fit; unknown tokens ignored) and of each text column's words (hashed
  with ``zlib.crc32`` into a fixed number of buckets), then a residual MLP.
* User tower: the user ID embedding (row ``n_users`` is a shared "unknown user" row) plus, when
  user features are given, the mean embeddings of their categorical tokens and text words (as
  for items, in tables of their own), next to a recency-weighted mean of the item ID embeddings
  of the user's last ``history_length`` interactions (one learned weight per position), through
  a residual MLP on top of that mean.

Training (on the shared ``Trainer``, see :mod:`takeoff.models.two_tower_fit`): each interaction
is a positive for its user, with the history made of the interactions *before* it (so training
matches scoring, where the history is the user's last interactions). The loss is a sampled
softmax over the batch's items plus ``negatives`` uniformly drawn items, with the logQ
correction (the full softmax when the catalogue is no larger than ``negatives``); AdamW; early
stopping on NDCG@10 of each user's last interaction (held out of the training log), keeping the
best epoch's weights; the time budget. Item and user IDs are randomly replaced by their unknown
row (``id_dropout``) so that features alone give useful vectors; with user features, an example
whose user ID is dropped also loses its history, so that it is trained as a new user described
by features alone would be seen (without user features the history is kept: the unknown row
then stands for a new user with a history). :meth:`TwoTowerRecommender.embed_items` embeds items
the log has never seen, :meth:`TwoTowerRecommender.embed_users` users it has never seen.

The inputs (feature tokens, histories) are in :mod:`takeoff.models.two_tower_inputs`, the
network in :mod:`takeoff.models.two_tower_net`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from takeoff.bundle import read_spec, write_atomic, write_json
from takeoff.data.interactions import Interactions
from takeoff.errors import BudgetError, BundleError, DataError
from takeoff.models.base import FitReport, Params
from takeoff.models.recommender import ItemFeatures, Recommender, UserFeatures
from takeoff.models.two_tower_inputs import INPUT_KEYS, Sequences, encode_items, encode_users, has_user_features
from takeoff.models.two_tower_net import architecture, network
from takeoff.training.context import FitContext

WEIGHTS_FILE = "two_tower.safetensors"
SPEC_FILE = "two_tower.json"
FORMAT = "takeoff-two-tower"
FORMAT_VERSION = 2  # 2: the unknown user row and user features; version 1 files still load


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
        self.callbacks: list[Any] = []  # extra training callbacks (tracking, tests)
        self.spec: dict[str, Any] | None = None
        self.best_epoch: int | None = None
        self._net: Any = None  # the towers, holding the items' and users' feature inputs
        self._device: Any = None
        self._vectors: Any = None  # (n_items, d) item tower output, cached after fit/load

    # ------------------------------------------------------------------ fit
    def fit(self, log: Interactions, ctx: FitContext, items: ItemFeatures | None = None, *,
            users: UserFeatures | None = None) -> FitReport:
        """Train on ``log`` (see the module docstring); return by ``ctx.deadline``.

        With ``ctx.checkpoint_dir`` the training state is saved after every epoch, and a fit of
        the same log, features, params and seed continues from it.

        Args:
            log: the interactions.
            ctx: deadline, seed, device, checkpoint folder.
            items: item features aligned with the log's item codes (default None).
            users: user features aligned with the log's user codes (default None).

        Raises:
            BudgetError: the deadline passed before a single batch was trained.
        """
        from takeoff.models.two_tower_fit import train_towers
        from takeoff.training.device import resolve_device, seed_everything

        start = time.monotonic()
        p: TwoTowerParams = self.params  # type: ignore[assignment]
        device = resolve_device(ctx.device)
        features = None if items is None or items.empty else items
        user_features = None if users is None or users.empty else users
        self.spec = architecture(log, p, features, user_features)
        seed_everything(ctx.seed, deterministic=False)
        user_inputs = encode_users(user_features, log.n_users, self.spec) if has_user_features(self.spec) else None
        net = network(self.spec, encode_items(features, log.n_items, self.spec), user_inputs).to(device)
        self._net, self._device = net, device
        # with user features, an example whose user ID is dropped also loses its history: it is
        # trained as a new user described by features alone. Measured on MovieLens (150 held-out
        # users described by their two favourite genres, hits in their top 20, 4 seeds): 240 on
        # average, against 202 when half of those examples keep their history (popularity: 222)
        result, self.best_epoch, steps = train_towers(net, log, self.spec, p, ctx, device, name=self.name,
                                                      cold=user_inputs is not None, extra_callbacks=self.callbacks)
        if steps == 0:
            raise BudgetError(
                "recommender 'two-tower': the time budget ran out before the first batch was trained. "
                "Fix: give a larger time budget."
            )
        self._vectors = net.item_vectors()
        history = {k: list(result.history.get(k, [])) for k in ("train_loss", "valid_ndcg_at_10")}
        self.report = FitReport(best_iteration=self.best_epoch, history=history, stopped_by=result.stop_reason,
                                seconds=time.monotonic() - start)
        return self.report

    # -------------------------------------------------------------- predict
    def score(self, log: Interactions, users: np.ndarray) -> np.ndarray:
        """float32 (len(users), n_items): each user's vector (from its last ``history_length``
        interactions in ``log``) against every item vector."""
        self._check_fitted()
        return self._net.scores(Sequences(log, self._device), users, self._vectors)

    def item_vectors(self) -> np.ndarray | None:
        """(n_items, embedding_dim) float32 item tower vectors of the log's items."""
        self._check_fitted()
        return self._vectors.cpu().numpy().astype(np.float32, copy=False)

    def user_vectors(self, log: Interactions, users: np.ndarray) -> np.ndarray:
        """(len(users), embedding_dim) float32 user tower vectors of user codes, from their last
        ``history_length`` interactions in ``log``; ``user_vectors @ item_vectors().T`` is ``score``."""
        self._check_fitted()
        return self._net.user_vectors(Sequences(log, self._device), users).float().cpu().numpy()

    @property
    def has_user_features(self) -> bool:
        """Whether the model was fitted with user features (so :meth:`embed_users` can use them)."""
        return self.spec is not None and has_user_features(self.spec)

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
        inputs = None
        if self.has_user_features:
            inputs = self._on_device(encode_users(features, n, spec))
        self._net.eval()
        with torch.no_grad():
            rows = torch.full((n,), spec["n_users"], dtype=torch.long, device=self._device)
            vectors = self._net.users(rows, torch.from_numpy(hist).to(self._device),
                                      torch.from_numpy(valid).to(self._device).float(), inputs)
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
        inputs = self._on_device(encode_items(features, n, self.spec))
        self._net.eval()
        with torch.no_grad():
            ids = torch.full((n,), self.spec["n_items"], dtype=torch.long, device=self._device)
            vectors = self._net.items(ids, inputs)
        return vectors.cpu().numpy().astype(np.float32, copy=False)

    def _on_device(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        return {k: torch.from_numpy(v).to(self._device) for k, v in arrays.items()}

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
        buffers = dict(self._net.named_buffers())  # the feature inputs (not in the state_dict)
        for part, prefix in (("items", "item_"), ("users", "user_")):
            tensors.update({f"{part}.{k}": buffers[prefix + k].detach().cpu().contiguous()
                            for k in INPUT_KEYS if prefix + k in buffers})
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
        try:
            tensors = load_file(str(weights_path), device="cpu")
            item_inputs = {k: tensors[f"items.{k}"] for k in INPUT_KEYS}
            user_inputs = {k: tensors[f"users.{k}"] for k in INPUT_KEYS} if has_user_features(spec) else None
            net = network(spec, item_inputs, user_inputs)
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        except (OSError, SafetensorError, RuntimeError, KeyError) as error:
            raise BundleError(str(weights_path), f"weights do not match the architecture ({error})")
        net.eval()
        model.spec, model.best_epoch = spec, document.get("best_epoch")
        model._net, model._device = net, torch.device("cpu")
        model._vectors = net.item_vectors()
        return model
