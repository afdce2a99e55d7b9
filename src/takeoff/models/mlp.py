"""A multilayer perceptron for tables: embeddings for categories, numbers as they come.

Per categorical column an embedding of ``min(embedding_dim_max, (cardinality + 1) // 2)``
dimensions, concatenated with the (already standardised) numeric block, then
``[Linear → norm → activation → Dropout]`` per hidden size, then a linear head:

* classification (binary and multiclass alike): one logit per class, softmax cross-entropy,
  optionally with balanced class weights; probabilities are corrected back to the training
  class frequencies at predict time, so they stay calibrated;
* regression: one output, mean squared error on the standardised target (undone at predict).

Training: AdamW with a one-cycle learning rate, early stopping on the validation loss, the
time budget, and a checkpoint after every epoch into ``ctx.checkpoint_dir``; a fit whose
checkpoint folder holds an interrupted fit of the same data, params and seed continues it.
"""

from __future__ import annotations

import hashlib
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from takeoff.bundle import read_spec, write_atomic, write_json
from takeoff.data.schema import Task
from takeoff.errors import BudgetError, BundleError, DataError, DataSourceError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport, Params
from takeoff.training.context import FitContext

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
_MIN_STEPS = 8  # optimizer steps per epoch on small tables
_MIN_BATCH = 16


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


def embedding_dim(cardinality: int, cap: int) -> int:
    """Embedding size of a categorical column with ``cardinality`` codes."""
    return max(1, min(cap, (cardinality + 1) // 2))


def _network(spec: dict[str, Any]):
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


class MLPFamily(Family):
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
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "multilabel", "regression")
    Params: ClassVar[type[Params]] = MLPParams

    def __init__(self, task: Task, params: MLPParams | dict[str, Any] | None = None):
        super().__init__(task, params)
        self.callbacks: list[Any] = []  # extra training callbacks (tracking, tests)
        self.spec: dict[str, Any] | None = None
        self.best_epoch: int | None = None
        self._net: Any = None
        self._device: Any = None

    # ------------------------------------------------------------------ fit
    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        """Train on ``train``, early-stopping on ``valid`` (see the module docstring).

        Raises:
            BudgetError: the deadline passed before a single batch was trained.
        """
        import torch

        from takeoff.training.callbacks import (
            ChanceWarning,
            Checkpoint,
            EarlyStopping,
            ProgressBar,
            TerminateOnNaN,
            TimeBudget,
        )
        from takeoff.training.device import resolve_device, seed_everything
        from takeoff.training.loop import Trainer, chance_score, steps_per_epoch

        start = time.monotonic()
        p: MLPParams = self.params  # type: ignore[assignment]
        device = resolve_device(ctx.device)
        if len(train) < 2:
            raise DataError(f"model family 'mlp' needs at least 2 training rows; received {len(train)}")
        # hashing the rows costs a pass over them: only needed to match a checkpoint
        fingerprint = None if ctx.checkpoint_dir is None else _fingerprint(train, valid)
        if valid is not None and len(valid) == 0:
            valid = None
        if valid is None and p.epochs is None and len(train) >= _HOLDOUT_MIN_ROWS:
            train, valid = self._holdout(train, ctx.seed)
        early_stop = valid is not None and p.epochs is None
        epochs = p.epochs or p.max_epochs
        # a small table still gets several steps per epoch (else 60 epochs are 120 steps)
        batch_size = min(p.batch_size, max(_MIN_BATCH, math.ceil(len(train) / _MIN_STEPS)))

        classification = self.task.is_classification
        multilabel = self.task.is_multilabel
        n_outputs = self.task.n_outputs
        target_mean, target_std, class_weight = 0.0, 1.0, [1.0] * n_outputs
        if multilabel:
            pass  # a sigmoid per label; each label's threshold is tuned on validation afterwards
        elif classification:
            counts = np.bincount(train.y.astype(np.int64), minlength=n_outputs).astype(np.float64)
            if p.class_weights:
                class_weight = (counts.sum() / (n_outputs * np.maximum(counts, 1.0))).tolist()
        else:
            y = train.y.astype(np.float64)
            target_mean, target_std = float(y.mean()), float(y.std())
            target_std = target_std if target_std > 1e-12 else 1.0
        self.spec = {
            "n_numeric": int(train.X.numeric.shape[1]),
            "cardinalities": [int(c) for c in train.X.cardinalities],
            "embedding_dims": [embedding_dim(int(c), p.embedding_dim_max) for c in train.X.cardinalities],
            "hidden_sizes": list(p.hidden_sizes),
            "n_outputs": n_outputs,
            "norm": p.norm,
            "activation": p.activation,
            "dropout": p.dropout,
            "target_mean": target_mean,
            "target_std": target_std,
            # weighted cross-entropy learns p(c|x)·w_c; subtracting log w_c undoes it
            "logit_offset": [math.log(w) for w in class_weight] if classification else [],
        }
        train_set = self._tensors(train, target_mean, target_std)
        valid_set = None if valid is None else self._tensors(valid, target_mean, target_std)
        weight_tensor = torch.tensor(class_weight, dtype=torch.float32, device=device)
        loss_fn = (_classification_loss(weight_tensor) if classification else
                   multilabel_loss if multilabel else _regression_loss)
        meta = {
            "family": self.name,
            "params": p.model_dump(mode="json"),
            "task": self.task.to_json(),
            "seed": ctx.seed,
            "data": fingerprint,
        }

        def build() -> tuple[Trainer, EarlyStopping | None]:
            seed_everything(ctx.seed, deterministic=False)
            net = _network(self.spec).to(device)
            decay = [t for t in net.parameters() if t.ndim >= 2]
            no_decay = [t for t in net.parameters() if t.ndim < 2]
            optimizer = torch.optim.AdamW(
                [{"params": decay, "weight_decay": p.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                lr=p.learning_rate,
                fused=True if device.type == "cuda" else None,
            )
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=p.learning_rate,
                total_steps=epochs * steps_per_epoch(len(train_set), batch_size),
            )
            stopper = EarlyStopping("valid_loss", "min", patience=p.patience) if early_stop else None
            callbacks: list[Any] = [TerminateOnNaN(), TimeBudget(), ProgressBar()]
            if stopper is not None:
                callbacks.insert(0, stopper)
            if valid_set is not None:
                callbacks.append(ChanceWarning())
            if ctx.checkpoint_dir is not None:
                callbacks.append(Checkpoint(ctx.checkpoint_dir))
            trainer = Trainer(
                net,
                loss_fn,
                optimizer,
                scheduler,
                train=train_set,
                valid=valid_set,
                batch_size=batch_size,
                max_epochs=epochs,
                callbacks=callbacks + list(self.callbacks),
                ctx=ctx,
                device=device,
                score_fn=chance_score(self.task.kind) if valid_set is not None else None,
                meta=meta,
            )
            return trainer, stopper

        trainer, stopper = build()
        if ctx.checkpoint_dir is not None:
            trainer, stopper = self._maybe_resume(trainer, stopper, build, ctx)
        result = trainer.fit()
        if trainer.global_step == 0 and trainer.epoch == 0:
            raise BudgetError(
                "model family 'mlp': the time budget ran out before the first batch was trained. "
                "Fix: give a larger time budget."
            )
        self._net, self._device = trainer.model, device
        self._net.eval()
        if stopper is not None and stopper.best_epoch > 0:
            self.best_epoch = stopper.best_epoch
        else:
            self.best_epoch = max(trainer.epoch, 1)
        self.report = FitReport(
            best_iteration=self.best_epoch,
            history={k: list(result.history.get(k, [])) for k in ("train_loss", "valid_loss") if k in result.history},
            stopped_by=result.stop_reason,
            seconds=time.monotonic() - start,
        )
        return self.report

    def _maybe_resume(self, trainer, stopper, build, ctx: FitContext):
        """Continue from ``ctx.checkpoint_dir`` when it holds this same fit."""
        from takeoff.training.checkpoint import load_state

        try:
            state = load_state(ctx.checkpoint_dir)
        except DataSourceError as error:
            ctx.warn(f"{error}; the mlp starts from scratch")
            return trainer, stopper
        if state is None:
            return trainer, stopper
        if state.get("meta") != trainer.meta:
            ctx.warn(
                f"the checkpoint in {ctx.checkpoint_dir} is from another fit (other data, params "
                "or seed); the mlp starts from scratch and replaces it"
            )
            return trainer, stopper
        try:
            trainer.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError) as error:
            ctx.warn(
                f"the checkpoint in {ctx.checkpoint_dir} does not fit this model ({error}); the "
                "mlp starts from scratch"
            )
            return build()
        return trainer, stopper

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

    def _tensors(self, data: Dataset, mean: float, std: float):
        import torch

        from takeoff.training.loop import TensorSet

        numeric = torch.from_numpy(np.ascontiguousarray(data.X.numeric, dtype=np.float32))
        categorical = torch.from_numpy(np.ascontiguousarray(data.X.categorical, dtype=np.int64))
        if self.task.is_classification:
            target = torch.from_numpy(data.y.astype(np.int64))
        elif self.task.is_multilabel:
            target = torch.from_numpy(data.y.astype(np.float32))
        else:
            target = torch.from_numpy(((data.y.astype(np.float64) - mean) / std).astype(np.float32))
        weight = None
        if data.weight is not None:
            weight = torch.from_numpy(np.asarray(data.weight, dtype=np.float32))
        return TensorSet((numeric, categorical), target, weight)

    # -------------------------------------------------------------- predict
    def predict(self, X: Features) -> np.ndarray:
        """Probabilities (n, n_classes) or values (n,), float32.

        Raises:
            DataError: the features do not have the shape the model was trained with, or hold
                non-finite numbers or unknown category codes.
        """
        import torch

        if self._net is None or self.spec is None:
            raise DataError("model family 'mlp' has not been fitted or loaded; call fit() or load() first")
        self._check_features(X)
        net, device = self._net, self._device
        net.eval()
        n = len(X)
        classification = self.task.is_classification
        offset = torch.tensor(self.spec["logit_offset"], dtype=torch.float32, device=device)
        parts = []
        with torch.no_grad(), _threads(1 if n < SMALL_BATCH and device.type == "cpu" else None):
            for a in range(0, n, PREDICT_BATCH):
                numeric = torch.from_numpy(np.ascontiguousarray(X.numeric[a : a + PREDICT_BATCH], dtype=np.float32))
                categorical = torch.from_numpy(np.ascontiguousarray(X.categorical[a : a + PREDICT_BATCH], dtype=np.int64))
                out = net(numeric.to(device), categorical.to(device)).float()
                if classification:
                    out = torch.softmax(out - offset, dim=1)
                elif self.task.is_multilabel:
                    out = torch.sigmoid(out)
                parts.append(out.cpu().numpy())
        if classification or self.task.is_multilabel:
            width = self.spec["n_outputs"]
            probs = np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32)
            return probs.astype(np.float32, copy=False)
        values = np.concatenate(parts)[:, 0] if parts else np.zeros(0, dtype=np.float32)
        return (values.astype(np.float64) * self.spec["target_std"] + self.spec["target_mean"]).astype(np.float32)

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

    # ------------------------------------------------------------ save/load
    def save(self, directory: Path) -> None:
        """Write ``mlp.safetensors`` (weights) and ``mlp.json`` (architecture, target scaling,
        params) into ``directory``, each atomically."""
        from safetensors.torch import save_file

        if self._net is None or self.spec is None:
            raise DataError("model family 'mlp' has not been fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in self._net.state_dict().items()}
        write_atomic(directory / WEIGHTS_FILE, lambda tmp: save_file(weights, str(tmp), metadata={"format": "pt"}))
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "task": self.task.kind,
            "architecture": self.spec,
            "best_epoch": self.best_epoch,
            "params": self.params.model_dump(mode="json"),
        }
        write_json(directory / SPEC_FILE, document)

    @classmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> MLPFamily:
        """Rebuild the network from ``mlp.json`` and load ``mlp.safetensors`` (on the CPU)."""
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        spec_path, weights_path = directory / SPEC_FILE, directory / WEIGHTS_FILE
        document = read_spec(directory, SPEC_FILE, (WEIGHTS_FILE,), FORMAT, (FORMAT_VERSION,), "mlp")
        model = cls(task, params)
        spec = document["architecture"]
        expected = task.n_outputs
        if spec["n_outputs"] != expected:
            raise BundleError(
                str(spec_path),
                f"the network has {spec['n_outputs']} output(s), the task '{task.kind}' needs {expected}",
            )
        net = _network(spec)
        try:
            weights = load_file(str(weights_path), device="cpu")
            net.load_state_dict(weights, strict=True)
        except (OSError, SafetensorError, RuntimeError) as error:
            raise BundleError(str(weights_path), f"weights do not match the architecture ({error})")
        net.eval()
        model.spec, model.best_epoch = spec, document.get("best_epoch")
        model._net, model._device = net, torch.device("cpu")
        return model

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

        if self._net is None or self.spec is None:
            raise DataError("model family 'mlp' has not been fitted or loaded; call fit() or load() first")
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

    # ---------------------------------------------------------------- refit
    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        """``{"epochs": n}``: the best epoch count, grown mildly (square root) with the rows."""
        if self.best_epoch is None:
            return None
        return {"epochs": max(1, int(round(self.best_epoch * math.sqrt(max(n_rows_ratio, 1.0)))))}


@contextmanager
def _threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (None: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------ losses
def _classification_loss(class_weight):
    import torch.nn.functional as F

    def loss(outputs, target, weight):
        per_row = F.cross_entropy(outputs.float(), target, reduction="none")
        w = class_weight[target]
        if weight is not None:
            w = w * weight
        return (per_row * w).sum() / w.sum().clamp_min(1e-12)

    return loss


def multilabel_loss(outputs, target, weight):
    """Binary cross-entropy per label on logits (n, n_labels), averaged over labels and rows
    (row-weighted when ``weight`` is given)."""
    import torch.nn.functional as F

    per_row = F.binary_cross_entropy_with_logits(outputs.float(), target.float(), reduction="none").mean(dim=1)
    if weight is None:
        return per_row.mean()
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


def _regression_loss(outputs, target, weight):
    per_row = (outputs[:, 0].float() - target) ** 2
    if weight is None:
        return per_row.mean()
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


# ------------------------------------------------------------------------ helpers
def _fingerprint(train: Dataset, valid: Dataset | None) -> str:
    """A hash of the data (decoded images included), so a checkpoint is only resumed for the same rows."""
    digest = hashlib.sha256()
    for data in (train, valid):
        if data is None:
            digest.update(b"none")
            continue
        images = [data.X.images[k] for k in sorted(data.X.images)]
        for array in (*images, data.X.numeric, data.X.categorical, data.y, data.weight):
            if array is None:
                digest.update(b"none")
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()
