"""A multilayer perceptron for tables: embeddings for categories, numbers as they come.

Per categorical column an embedding of ``min(embedding_dim_max, (cardinality + 1) // 2)``
dimensions, concatenated with the (already standardised) numeric block, then
``[Linear → norm → activation → Dropout]`` per hidden size, then a linear head:

* classification (binary and multiclass alike): one logit per class, softmax cross-entropy,
  optionally with balanced class weights; probabilities are corrected back to the training
  class frequencies at predict time, so they stay calibrated;
* regression: one output, mean squared error on the standardised target (undone at predict).

Training (:class:`~takeoff.models.torch_family.TorchFamily`): AdamW with a one-cycle learning
rate, early stopping on the validation loss, the time budget, and a checkpoint after every epoch
into ``ctx.checkpoint_dir``; a fit whose checkpoint folder holds an interrupted fit of the same
data, params and seed continues it.

Capabilities: ONNX export, int8 quantization of that graph, magnitude and structured pruning
(:mod:`takeoff.models.mlp_shrink`), and Integrated Gradients (:meth:`MLPFamily.attribution_module`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from takeoff.errors import BundleError, DataError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, Params
from takeoff.models.torch_family import TorchFamily, embedding_dim

WEIGHTS_FILE = "mlp.safetensors"
SPEC_FILE = "mlp.json"
FORMAT = "takeoff-mlp"
FORMAT_VERSION = 1
PREDICT_BATCH = 8192
# Below this many rows a prediction runs on one CPU thread: the matrices are too small to
# share, and waiting for a second thread that the OS has not scheduled costs tens of
# milliseconds on a busy machine (measured: 64 rows, 48 ms on 2 threads vs 1 ms on one).
SMALL_BATCH = 2048
# With no validation data and no fixed epoch count, this share of train is held out for
# early stopping (when there are at least _HOLDOUT_MIN_ROWS rows).
_HOLDOUT_SHARE = 0.1
_HOLDOUT_MIN_ROWS = 100


class MLPParams(Params):
    """Hyperparameters of the MLP family."""

    hidden_sizes: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (256, 128), min_length=1, description="Width of each hidden layer, input side first."
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout after each hidden layer.")
    learning_rate: float = Field(
        3e-3, gt=0.0, le=1.0, description="Peak learning rate of the one-cycle schedule (AdamW)."
    )
    weight_decay: float = Field(1e-4, ge=0.0, description="AdamW weight decay (weights and embeddings only).")
    batch_size: int = Field(
        256, ge=2, description="Rows per optimizer step (smaller on small tables: at least 8 steps per epoch)."
    )
    max_epochs: int = Field(60, ge=1, description="Most epochs; early stopping usually ends sooner.")
    patience: int = Field(8, ge=1, description="Epochs without a better validation loss before stopping.")
    embedding_dim_max: int = Field(
        32, ge=1, description="Cap on a categorical column's embedding size, min(cap, (cardinality + 1) // 2)."
    )
    norm: Literal["batch", "layer", "none"] = Field(
        "batch", description="Normalisation after each hidden Linear: BatchNorm1d, LayerNorm or none."
    )
    activation: Literal["silu", "relu"] = Field("silu", description="Activation of the hidden layers.")
    class_weights: bool = Field(
        True, description="Balanced class weights in the cross-entropy (for imbalanced targets)."
    )
    epochs: int | None = Field(
        None, ge=1, description="Train exactly this many epochs without early stopping (used for refit)."
    )


_Size = Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class MLPSpec(BaseModel):
    """The architecture in ``mlp.json``, checked on load before anything is built from it (sizes
    bounded: the weights file's header must then match them tensor for tensor)."""

    model_config = ConfigDict(extra="allow")

    n_numeric: StrictInt = Field(ge=0, le=1_000_000)
    cardinalities: list[Annotated[StrictInt, Field(ge=1, le=100_000_000)]] = Field(max_length=100_000)
    embedding_dims: list[_Size] = Field(max_length=100_000)
    hidden_sizes: list[_Size] = Field(min_length=1, max_length=64)
    n_outputs: _Size
    norm: Literal["batch", "layer", "none"]
    activation: Literal["silu", "relu"]
    dropout: float = Field(ge=0.0, lt=1.0)
    target_mean: float = Field(allow_inf_nan=False)
    target_std: float = Field(gt=0.0, allow_inf_nan=False)
    logit_offset: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(max_length=1_000_000)


def build_network(spec: dict[str, Any]):
    """Build the torch module described by ``spec`` (the architecture part of mlp.json)."""
    import torch
    from torch import nn

    class TabularMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleList(
                nn.Embedding(c, d) for c, d in zip(spec["cardinalities"], spec["embedding_dims"])
            )
            width = spec["n_numeric"] + sum(spec["embedding_dims"])
            layers: list[nn.Module] = []
            for size in spec["hidden_sizes"]:
                layers.append(nn.Linear(width, size))
                if spec["norm"] == "batch":
                    layers.append(nn.BatchNorm1d(size))
                elif spec["norm"] == "layer":
                    layers.append(nn.LayerNorm(size))
                layers.append(nn.SiLU() if spec["activation"] == "silu" else nn.ReLU())
                layers.append(nn.Dropout(spec["dropout"]))
                width = size
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(width, spec["n_outputs"])

        def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
            parts = [numeric] + [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
            x = torch.cat(parts, dim=1)  # (n, n_numeric + sum(embedding_dims))
            return self.head(self.body(x))  # (n, n_outputs)

    return TabularMLP()


class MLPFamily(TorchFamily):
    """A multilayer perceptron over numeric features and categorical embeddings.

    Example:
        >>> from takeoff.data.schema import Task
        >>> model = MLPFamily(Task("binary", "y", [0, 1]), {"hidden_sizes": (64,), "max_epochs": 5})
    """

    name: ClassVar[str] = "mlp"
    auto_order: ClassVar[int | None] = 20
    fast_params: ClassVar[dict[str, Any]] = {"max_epochs": 3, "hidden_sizes": [16]}
    exports_onnx: ClassVar[bool] = True
    quantizes_int8: ClassVar[bool] = True
    prunable: ClassVar[bool] = True
    explains_gradients: ClassVar[bool] = True
    trains_private: ClassVar[bool] = True
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "multilabel", "regression")
    Params: ClassVar[type[Params]] = MLPParams
    search_space: ClassVar[dict[str, dict[str, Any]]] = {
        "hidden_sizes": {"choices": [[128], [256, 128], [512, 256], [256, 256, 128]]},
        "dropout": {"low": 0.0, "high": 0.4},
        "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
        "batch_size": {"choices": [128, 256, 512]},
        "norm": {"choices": ["batch", "layer", "none"]},
    }
    weights_file: ClassVar[str] = WEIGHTS_FILE
    spec_file: ClassVar[str] = SPEC_FILE
    format: ClassVar[str] = FORMAT
    format_version: ClassVar[int] = FORMAT_VERSION
    predict_batch: ClassVar[int] = PREDICT_BATCH
    single_thread_rows: ClassVar[int] = SMALL_BATCH

    # ------------------------------------------------------------------ fit
    def _make_spec(self, train: Dataset) -> dict[str, Any]:
        p: MLPParams = self.params  # type: ignore[assignment]
        n_outputs = self.task.n_outputs
        target_mean, target_std, class_weight = 0.0, 1.0, [1.0] * n_outputs
        if self.task.is_multilabel:
            pass  # a sigmoid per label; each label's threshold is tuned on validation afterwards
        elif self.task.is_classification:
            counts = np.bincount(train.y.astype(np.int64), minlength=n_outputs).astype(np.float64)
            if p.class_weights and not self._dp_on:  # under DP the loss is a plain mean (training/privacy.py)
                class_weight = (counts.sum() / (n_outputs * np.maximum(counts, 1.0))).tolist()
        else:
            y = train.y.astype(np.float64)
            target_mean, target_std = float(y.mean()), float(y.std())
            target_std = target_std if target_std > 1e-12 else 1.0
        self._class_weight = class_weight
        return {
            "n_numeric": int(train.X.numeric.shape[1]),
            "cardinalities": [int(c) for c in train.X.cardinalities],
            "embedding_dims": [embedding_dim(int(c), p.embedding_dim_max) for c in train.X.cardinalities],
            "hidden_sizes": list(p.hidden_sizes),
            "n_outputs": n_outputs,
            # batch norm mixes the rows of a batch: no per-row gradient for DP-SGD, layer norm instead
            "norm": "layer" if self._dp_on and p.norm == "batch" else p.norm,
            "activation": p.activation,
            "dropout": p.dropout,
            "target_mean": target_mean,
            "target_std": target_std,
            # weighted cross-entropy learns p(c|x)·w_c; subtracting log w_c undoes it
            "logit_offset": [math.log(w) for w in class_weight] if self.task.is_classification else [],
        }

    @classmethod
    def _network(cls, spec: dict[str, Any]):
        return build_network(spec)

    @classmethod
    def _check_spec(cls, spec: Any, where: str) -> None:
        from pydantic import ValidationError

        from takeoff.bundle_manifest import explain

        try:
            checked = MLPSpec.model_validate(spec)
        except ValidationError as error:
            raise BundleError(where, f"'architecture' is malformed: {explain(error)}",
                              "re-copy the bundle from its source, or re-train") from None
        if len(checked.embedding_dims) != len(checked.cardinalities):
            raise BundleError(where, f"'architecture' has {len(checked.embedding_dims)} embedding_dims for "
                              f"{len(checked.cardinalities)} cardinalities", "re-copy the bundle from its source, or re-train")
        if len(checked.logit_offset) not in (0, checked.n_outputs):
            raise BundleError(where, f"'architecture' has {len(checked.logit_offset)} logit_offset values for "
                              f"{checked.n_outputs} outputs", "re-copy the bundle from its source, or re-train")

    def _loss(self, device):
        import torch

        from takeoff.models.losses import task_loss

        return task_loss(self.task.kind, torch.tensor(self._class_weight, dtype=torch.float32, device=device))

    def _param_groups(self, net) -> list[dict[str, Any]]:
        """Weight decay on matrices and embeddings only."""
        p: MLPParams = self.params  # type: ignore[assignment]
        decay = [t for t in net.parameters() if t.ndim >= 2]
        no_decay = [t for t in net.parameters() if t.ndim < 2]
        return [{"params": decay, "weight_decay": p.weight_decay, "lr": p.learning_rate},
                {"params": no_decay, "weight_decay": 0.0, "lr": p.learning_rate}]

    def _split(self, train: Dataset, valid: Dataset | None, seed: int) -> tuple[Dataset, Dataset | None]:
        """With no validation rows and no fixed epoch count, hold some out for early stopping."""
        if valid is None and self.params.epochs is None and len(train) >= _HOLDOUT_MIN_ROWS:
            return self._holdout(train, seed)
        return train, valid

    def _holdout(self, data: Dataset, seed: int) -> tuple[Dataset, Dataset | None]:
        """Split off a validation share (stratified for classification), seeded."""
        rng = np.random.default_rng(seed)
        n = len(data)
        if self.task.is_classification:
            valid_index = []
            for code in np.unique(data.y):
                rows = np.flatnonzero(data.y == code)
                k = int(round(len(rows) * _HOLDOUT_SHARE))
                if len(rows) > 1 and k > 0:
                    valid_index.append(rng.choice(rows, size=k, replace=False))
            valid_index = np.sort(np.concatenate(valid_index)) if valid_index else np.array([], int)
        else:
            valid_index = np.sort(rng.choice(n, size=max(1, int(n * _HOLDOUT_SHARE)), replace=False))
        mask = np.zeros(n, dtype=bool)
        mask[valid_index] = True
        if not mask.any():
            return data, None

        def part(index: np.ndarray) -> Dataset:
            weight = None if data.weight is None else data.weight[index]
            return Dataset(data.X.take(index), data.y[index], weight)

        return part(np.flatnonzero(~mask)), part(np.flatnonzero(mask))

    # -------------------------------------------------------------- predict
    def _arrays(self, X: Features) -> tuple[np.ndarray, ...]:
        if self.spec is not None:
            self._check_features(X)
        return np.asarray(X.numeric, dtype=np.float32), np.asarray(X.categorical, dtype=np.int64)

    def _outputs(self, out):
        import torch

        if self.task.is_classification:
            offset = torch.tensor(self.spec["logit_offset"], dtype=torch.float32, device=out.device)
            return torch.softmax(out - offset, dim=1)
        return super()._outputs(out)

    def _check_features(self, X: Features) -> None:
        spec = self.spec
        if X.numeric.ndim != 2 or X.numeric.shape[1] != spec["n_numeric"]:
            raise DataError(
                f"model family 'mlp' was trained with {spec['n_numeric']} numeric feature column(s); "
                f"received {X.numeric.shape[1] if X.numeric.ndim == 2 else X.numeric.shape}. Fix: "
                "transform the rows with the model's own feature pipeline."
            )
        cards = spec["cardinalities"]
        if X.categorical.ndim != 2 or X.categorical.shape[1] != len(cards):
            raise DataError(
                f"model family 'mlp' was trained with {len(cards)} categorical column(s); received "
                f"{X.categorical.shape}. Fix: transform the rows with the model's own feature pipeline."
            )
        if len(X) and X.numeric.size and not np.isfinite(X.numeric).all():
            rows = np.flatnonzero(~np.isfinite(X.numeric).all(axis=1))
            raise DataError(
                f"numeric features hold nan or infinite values in {len(rows)} row(s), e.g. rows "
                f"{rows[:5].tolist()}. Fix: transform the rows with the model's feature pipeline, "
                "which imputes missing values.",
                rows=rows[:100].tolist(),
            )
        if len(X) and cards:
            bad = (X.categorical < 0) | (X.categorical >= np.asarray(cards))
            if bad.any():
                row, column = np.argwhere(bad)[0]
                name = X.categorical_names[column] if column < len(X.categorical_names) else column
                raise DataError(
                    f"categorical feature '{name}' has code {int(X.categorical[row, column])} in row "
                    f"{int(row)}; the model knows codes 0 to {cards[column] - 1}. Fix: transform the "
                    "rows with the model's own feature pipeline.",
                    column=str(name),
                    rows=[int(row)],
                )

    # ----------------------------------------------------------------- onnx
    def to_onnx(self, sample: Features):
        """The network as an ONNX graph (torch's dynamo exporter), with what :meth:`predict`
        does after it: the logit offset and softmax (classification), or the target's scaling
        undone (regression). Inputs ``numeric`` and ``categorical`` (each only when the model
        has such columns), output ``outputs``, batch axis dynamic (see :meth:`Family.to_onnx`).
        """
        import logging
        import warnings

        import torch

        self._require_fitted()
        self._check_features(sample)
        spec, net = self.spec, self._net.cpu().eval()
        classification, multilabel = self.task.is_classification, self.task.is_multilabel
        names = [n for n, width in (("numeric", spec["n_numeric"]), ("categorical", len(spec["cardinalities"]))) if width]

        class Exported(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net
                self.register_buffer("offset", torch.tensor(spec["logit_offset"] or [0.0], dtype=torch.float32))

            def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
                given = dict(zip(names, inputs))
                n = inputs[0].shape[0]
                numeric = given.get("numeric", torch.zeros((n, 0), dtype=torch.float32))
                categorical = given.get("categorical", torch.zeros((n, 0), dtype=torch.int64))
                out = self.net(numeric, categorical)  # (n, n_outputs)
                if classification:
                    return torch.softmax(out - self.offset, dim=1)
                if multilabel:
                    return torch.sigmoid(out)
                return out[:, 0] * spec["target_std"] + spec["target_mean"]  # (n,)

        # torch.export specialises a batch of one; two rows keep the batch axis symbolic
        rows = np.resize(np.arange(len(sample)), max(2, len(sample)))
        arrays = {"numeric": sample.numeric[rows].astype(np.float32), "categorical": sample.categorical[rows].astype(np.int64)}
        args = tuple(torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in names)
        batch = torch.export.Dim("N")
        exporter_log = logging.getLogger("torch.onnx")
        level = exporter_log.level
        exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" and the like
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(
                    Exported().eval(), args, input_names=names, output_names=["outputs"], dynamo=True,
                    dynamic_shapes=(tuple({0: batch} for _ in names),), verbose=False, report=False,
                )
        finally:
            exporter_log.setLevel(level)
        program.optimize()
        return program.model_proto


    # ---------------------------------------------------------------- prune
    def prune(self, amount: float, structured: bool, X: Features, deadline: float, seed: int) -> tuple[Family, dict]:
        """A pruned copy: magnitude (see :meth:`TorchFamily.prune`) or, with ``structured``,
        the ``amount`` of hidden units that matter least removed (:mod:`takeoff.models.mlp_shrink`),
        then fine-tuned to this model's outputs on ``X`` until ``deadline``."""
        if not structured:
            return super().prune(amount, False, X, deadline, seed)
        import torch

        from takeoff.models.mlp_shrink import shrink

        self._require_fitted()
        torch.manual_seed(seed)
        spec, net = shrink(self._net, self.spec, amount, self._network)
        net = net.to(self._device)
        new = self._copy_with(net, spec)
        info = self._distil_into(new, X, deadline, seed, "structured")
        info["hidden_sizes"] = {"before": self.spec["hidden_sizes"], "after": spec["hidden_sizes"]}
        return new, info

    # ------------------------------------------------------- attributions
    def attribution_module(self):
        """The network as a float64 module from the embedded input to the explained outputs,
        for Integrated Gradients (:mod:`takeoff.explain.gradients`).

        ``embed(numeric, codes)`` gives the input after the embeddings (n, n_numeric +
        sum(embedding_dims)); ``baseline(n_numeric)`` the "average" row (1, width): numbers at
        zero (the training mean) and each category at the mean embedding of its known codes (2
        and up; code 0, missing, may never have been trained); ``forward(z)`` the probability
        (softmax of the logits minus the class-weight offset, as :meth:`predict`), per-label
        probability, or the un-standardised value (n, n_outputs). ``embedding_dims`` lists each
        categorical column's width, to fold attributions back onto columns.

        Raises:
            DataError: the model is not fitted.
        """
        import copy

        import torch
        from torch import nn

        self._require_fitted()
        original, spec = self._net, self.spec
        classification, multilabel = self.task.is_classification, self.task.is_multilabel

        class Probability(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = copy.deepcopy(original).cpu().double().eval()  # float64: a small completeness delta
                self.register_buffer("offset", torch.tensor(spec["logit_offset"] or [0.0], dtype=torch.float64))
                self.embedding_dims = list(spec["embedding_dims"])

            def embed(self, numeric, codes):
                parts = [numeric] + [emb(codes[:, j]) for j, emb in enumerate(self.net.embeddings)]
                return torch.cat(parts, dim=1)

            def baseline(self, n_numeric: int):
                parts = [torch.zeros(1, n_numeric, dtype=torch.float64)]
                for emb in self.net.embeddings:
                    known = emb.weight[2:] if emb.weight.shape[0] > 2 else torch.zeros_like(emb.weight[:1])
                    parts.append(known.mean(dim=0, keepdim=True))
                return torch.cat(parts, dim=1)

            def forward(self, z):
                out = self.net.head(self.net.body(z))  # (n, n_outputs)
                if classification:
                    return torch.softmax(out - self.offset, dim=1)
                if multilabel:
                    return torch.sigmoid(out)
                return out * spec["target_std"] + spec["target_mean"]

        return Probability()
