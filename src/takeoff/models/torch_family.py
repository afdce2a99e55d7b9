"""The base of every torch family: fit, predict, save, load and resume written once.

A torch family describes its network and its data; :class:`TorchFamily` does the rest on the
one :class:`~takeoff.training.loop.Trainer`:

* fit: the target encoded for the task (class codes, 0/1 rows, or the standardised value),
  the network built from a JSON-ready ``spec``, AdamW with a one-cycle schedule, and the
  callbacks: early stopping on the validation loss (best weights kept), the time budget, nan
  divergence, progress, the chance warning, and a checkpoint after every epoch into
  ``ctx.checkpoint_dir``. A fit whose checkpoint folder holds an interrupted fit of the same
  data (:func:`data_fingerprint`), params, task and seed continues it.
* predict: batched, without gradients, on the device the model lives on, then the head's
  post-processing (softmax, sigmoid, or the target's scaling undone).
* save/load: ``<spec_file>`` (JSON: format, version, task, architecture, best epoch, params)
  and ``<weights_file>`` (safetensors), each written atomically; loading rebuilds the network
  from the JSON and never runs code from the folder.
* "not fitted" errors, the refit epoch count and magnitude pruning (:meth:`prune`).

What a subclass supplies: ``_make_spec`` (the architecture from the training data and params),
``_network`` (the module for a spec), ``_arrays`` (the network's inputs for some features, as
arrays, checked), and where it differs, the hooks below (loss, optimizer groups, epochs
planned for the budget, extra callbacks, post-processing).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from takeoff.bundle import read_spec, write_atomic, write_json
from takeoff.data.schema import Task
from takeoff.errors import BudgetError, BundleError, ConfigError, DataError, DataSourceError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport, Params
from takeoff.training.context import FitContext

log = logging.getLogger("takeoff")

MIN_STEPS = 8  # optimizer steps per epoch on small tables
MIN_BATCH = 16


def embedding_dim(cardinality: int, cap: int) -> int:
    """Embedding size of a categorical column with ``cardinality`` codes."""
    return max(1, min(cap, (cardinality + 1) // 2))


class TorchFamily(Family):
    """A family whose model is one torch module trained by the shared :class:`Trainer`.

    Class attributes a subclass sets: ``weights_file``, ``spec_file``, ``format`` and
    ``format_version`` (what :meth:`save` writes), ``predict_batch`` (rows per forward pass
    when predicting and validating), ``single_thread_rows`` (below this many rows a CPU
    prediction runs on one thread), ``warmup_share`` (of the one-cycle schedule),
    ``row_noun`` and ``budget_fix`` (for messages), ``chance_warning`` and ``min_delta`` (for
    the validation callbacks), and ``prune_epochs``, ``prune_batch``, ``prune_lr`` (the
    recovery fine-tune after pruning).

    Its params must have ``max_epochs``, ``epochs`` (a fixed count without early stopping, for
    refit), ``patience``, ``batch_size``, ``learning_rate`` and ``weight_decay``.
    """

    weights_file: ClassVar[str]
    spec_file: ClassVar[str]
    format: ClassVar[str]
    format_version: ClassVar[int] = 1
    predict_batch: ClassVar[int] = 8192
    single_thread_rows: ClassVar[int] = 0
    warmup_share: ClassVar[float] = 0.3
    row_noun: ClassVar[str] = "rows"
    budget_fix: ClassVar[str] = "give a larger time budget"
    chance_warning: ClassVar[bool] = True  # score validation against chance and warn when it stays there
    min_delta: ClassVar[float] = 0.0  # the smallest fall of the validation loss early stopping counts
    # recovery fine-tune after pruning: epochs, rows per batch, learning rate
    prune_epochs: ClassVar[int] = 30
    prune_batch: ClassVar[int] = 256
    prune_lr: ClassVar[float] = 1e-3

    def __init__(self, task: Task, params: Params | dict[str, Any] | None = None):
        super().__init__(task, params)
        self.callbacks: list[Any] = []  # extra training callbacks (tracking, tests)
        self.spec: dict[str, Any] | None = None
        self.best_epoch: int | None = None
        self._net: Any = None
        self._device: Any = None
        self.privacy: dict[str, Any] | None = None  # the DP-SGD accounting of the fit (privacy.dp)
        self._private: Any = None  # the PrivateTraining of a DP fit in progress
        self._dp_on = False  # the fit in progress is differentially private

    @property
    def network(self) -> Any:
        """The fitted torch module (None before :meth:`fit` or :meth:`load`)."""
        return self._net

    # ------------------------------------------------------- what a subclass supplies
    @abstractmethod
    def _make_spec(self, train: Dataset) -> dict[str, Any]:
        """The JSON-ready architecture for ``train`` (saved as ``architecture``); it holds
        ``n_outputs`` and, for regression, ``target_mean`` and ``target_std``."""

    @classmethod
    @abstractmethod
    def _network(cls, spec: dict[str, Any]) -> Any:
        """The untrained module for ``spec``, as :meth:`load` rebuilds it."""

    @abstractmethod
    def _arrays(self, X: Features) -> tuple[np.ndarray, ...]:
        """The network's inputs for ``X`` (rows first, dtypes as the network takes them).

        Raises:
            DataError: ``X`` does not have the columns or shapes the model was trained with.
        """

    # ----------------------------------------------------------------- hooks
    def _check_training(self, train: Dataset, ctx: FitContext) -> None:
        """Refuse training data or params this family cannot fit (before anything is built)."""

    def _split(self, train: Dataset, valid: Dataset | None, seed: int) -> tuple[Dataset, Dataset | None]:
        """The rows to train and validate on (the MLP holds some out when none are given)."""
        return train, valid

    def _build(self, spec: dict[str, Any]) -> Any:
        """The network fit() starts from (image-finetune loads pretrained weights into it)."""
        return self._network(spec)

    def _prepare(self, net: Any, device: Any) -> Any:
        """The module the trainer calls (a compiled or re-laid-out view of ``net``)."""
        return net

    def _loss(self, device: Any):
        from takeoff.models.losses import task_loss

        return task_loss(self.task.kind)

    def _param_groups(self, net: Any) -> list[dict[str, Any]]:
        """Optimizer parameter groups, each with its peak learning rate ``lr``."""
        return [{"params": list(net.parameters()), "lr": self.params.learning_rate}]

    def _optimizer(self, net: Any, device: Any):
        import torch

        p = self.params
        return torch.optim.AdamW(self._param_groups(net), lr=p.learning_rate, weight_decay=p.weight_decay,
                                 fused=True if device.type == "cuda" else None)

    def _scheduler(self, optimizer: Any, total_steps: int):
        import torch

        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total_steps,
            pct_start=self.warmup_share,
        )

    def _plan_epochs(self, net: Any, train: Any, valid: Any, batch_size: int, device: Any,
                     remaining: float, most: int) -> int:
        """Epochs to schedule when the params fix none (image families fit them to the budget)."""
        return most

    def _extra_callbacks(self, net: Any, epochs: int) -> list[Any]:
        """Trainer callbacks of this family (image-finetune unfreezes its backbone with one)."""
        return []

    def _batch_transform(self):
        """A transform of each training batch on the device (Mixup, CutMix), or None."""
        return None

    def _after_fit(self, net: Any, data: Any, device: Any, batch_size: int) -> None:
        """Runs on the trained network before it is kept (image-finetune recalibrates its
        batch-norm statistics here)."""

    def _outputs(self, out: Any) -> Any:
        """Network outputs (n, n_outputs) as :meth:`predict` returns them, before un-scaling."""
        import torch

        if self.task.is_classification:
            return torch.softmax(out, dim=1)
        if self.task.is_multilabel:
            return torch.sigmoid(out)
        return out

    def _predict_module(self) -> Any:
        """The module :meth:`predict` runs (image families wrap the network in test-time views)."""
        return self._net

    def _batch_order(self, train: Any, batch_size: int, seed: int):
        """The trainer's ``batch_order`` (e.g. length buckets), or None for shuffled batches."""
        return None

    def _collate(self):
        """The trainer's CPU-side ``collate`` for this family's batches (None: as they are)."""
        return None

    def _grad_accum(self) -> int:
        """Batches whose gradients are summed before each optimizer step."""
        return 1

    def _precision(self) -> tuple[str, bool]:
        """(precision, autocast on a CPU with native bf16) of training and validation."""
        return "auto", False

    def _predict_precision(self) -> str:
        """Precision of :meth:`predict`: float32, so predictions match across machines."""
        return "fp32"

    def _steps_per_epoch(self, n_rows: int, batch_size: int) -> int:
        """Optimizer steps per epoch, for the learning-rate schedule."""
        from takeoff.training.tensors import steps_per_epoch

        return steps_per_epoch(n_rows, batch_size)

    def _batch_size(self, n_rows: int) -> int:
        # a small table still gets several steps per epoch (else 60 epochs are 120 steps)
        return min(self.params.batch_size, max(MIN_BATCH, math.ceil(n_rows / MIN_STEPS)))

    # ------------------------------------------------------------------ fit
    @classmethod
    def warm_up(cls) -> None:
        import torch  # seconds on a cold start

        # the first optimizer imports torch._dynamo (seconds more): not on a fit's clock
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)])

    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        """Train on ``train``, early-stopping on ``valid`` (see the module docstring).

        Raises:
            DataError: fewer than two training rows.
            BudgetError: the deadline passed before a single batch was trained.
        """
        start = time.monotonic()
        p = self.params
        private = ctx.dp is not None and ctx.dp.enabled
        if private and not self.trains_private:
            raise ConfigError(f"model family '{self.name}' cannot train with differential privacy (--dp-epsilon); "
                              "families that can: mlp. Fix: choose --family mlp (or auto), or drop --dp-epsilon.")
        if private and train.weight is not None:
            ctx.warn(f"{self.name}: row weights are not applied under differential privacy (each row's clipped "
                     "gradient must depend on that row alone)")
            train = Dataset(train.X, train.y, None)
        self._dp_on, self._private, self.privacy = private, None, None
        self._check_training(train, ctx)
        if len(train) < 2:
            raise DataError(f"model family '{self.name}' needs at least 2 training {self.row_noun}; received {len(train)}")
        from takeoff.training.device import resolve_device

        device = resolve_device(ctx.device)
        # hashing the rows costs a pass over them: only needed to match a checkpoint
        if private:  # a DP fit neither checkpoints (the accountant's state would not resume) nor resumes
            ctx = FitContext(deadline=ctx.deadline, seed=ctx.seed, checkpoint_dir=None, progress=ctx.progress,
                             warn=ctx.warn, device=ctx.device, dp=ctx.dp)
        fingerprint = None if ctx.checkpoint_dir is None else data_fingerprint(train, valid)
        if valid is not None and len(valid) == 0:
            valid = None
        if not private:  # a DP fit does not early-stop, so holds nothing out for it
            train, valid = self._split(train, valid, ctx.seed)
        batch_size = self._batch_size(len(train))
        self.spec = self._make_spec(train)
        train_set = self._tensors(train)
        valid_set = None if valid is None else self._tensors(valid)
        meta = None
        if ctx.checkpoint_dir is not None:
            meta = {"family": self.name, "params": p.model_dump(mode="json"), "task": self.task.to_json(),
                    "seed": ctx.seed, "data": fingerprint}
        saved = self._saved_state(ctx, meta)
        setup = (train_set, valid_set, batch_size, device, ctx, meta)
        trainer, stopper, net = self._trainer(*setup, saved)
        if saved is not None:
            try:
                trainer.load_state_dict(saved)
                log.info("%s: continuing the interrupted fit from epoch %d of %d", self.name, trainer.epoch,
                         trainer.max_epochs)
            except (RuntimeError, KeyError, ValueError, TypeError) as error:
                ctx.warn(f"the checkpoint in {ctx.checkpoint_dir} does not fit this model ({error}); "
                         f"{self.name} starts from scratch")
                trainer, stopper, net = self._trainer(*setup, None)
        result = trainer.fit()
        if trainer.global_step == 0 and trainer.epoch == 0:
            raise BudgetError(
                f"model family '{self.name}': the time budget ran out before the first batch was trained. "
                f"Fix: {self.budget_fix}."
            )
        if self._private is not None:
            from takeoff.training.privacy import PrivateTraining

            PrivateTraining.unwrap(trainer.model)
            self.privacy, self._private = self._private.spent(), None
        self._after_fit(net, train_set, device, batch_size)
        self._net, self._device = net.eval(), device
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

    def _trainer(self, train_set, valid_set, batch_size: int, device, ctx: FitContext, meta, saved):
        """A seeded network, its optimizer and schedule, and the trainer with its callbacks."""
        from takeoff.training.callbacks import (
            ChanceWarning,
            Checkpoint,
            EarlyStopping,
            ProgressBar,
            TerminateOnNaN,
            TimeBudget,
        )
        from takeoff.training.device import seed_everything
        from takeoff.training.distributed import agree
        from takeoff.training.loop import Trainer
        from takeoff.training.scores import chance_score

        p = self.params
        seed_everything(ctx.seed, deterministic=False)
        net = self._build(self.spec).to(device)
        model = self._prepare(net, device)
        epochs = p.epochs or p.max_epochs
        if saved is not None:
            epochs = int(saved["meta"]["epochs"])  # the schedule of the fit being continued
        elif p.epochs is None and ctx.dp is not None and ctx.dp.enabled:
            epochs = ctx.dp.epochs  # DP-SGD runs a fixed schedule that its noise is calibrated to
        elif p.epochs is None:
            # fit the one-cycle schedule to the budget: a schedule cut short never anneals
            epochs = self._plan_epochs(net, train_set, valid_set, batch_size, device, ctx.remaining(), epochs)
            epochs = agree(epochs)  # under torch.distributed, rank 0's plan: every rank runs as many
        if meta is not None:
            meta["epochs"] = epochs
        optimizer = self._optimizer(net, device)
        precision, autocast_cpu = self._precision()
        steps_per_epoch = self._steps_per_epoch(len(train_set), batch_size)
        batch_order = self._batch_order(train_set, batch_size, ctx.seed)
        if ctx.dp is not None and ctx.dp.enabled:
            # DP-SGD: Poisson batches, per-row clipping and noise calibrated to the planned steps;
            # the fit runs its planned epochs (no early stopping: see training/privacy.py)
            from takeoff.training.privacy import PrivateTraining

            self._private = PrivateTraining(ctx.dp, len(train_set), batch_size, epochs)
            model, optimizer = self._private.wrap(model, optimizer, self.name)
            steps_per_epoch, batch_order = self._private.steps_per_epoch, self._private.batch_order(ctx.seed)
        scheduler = self._scheduler(optimizer, epochs * steps_per_epoch)
        early_stop = valid_set is not None and p.epochs is None and self._private is None
        stopper = EarlyStopping("valid_loss", "min", patience=p.patience, min_delta=self.min_delta) if early_stop else None
        callbacks: list[Any] = [TerminateOnNaN(), TimeBudget(), ProgressBar()]
        if stopper is not None:
            callbacks.insert(0, stopper)
        scored = valid_set is not None and self.chance_warning
        if scored:
            callbacks.append(ChanceWarning())
        callbacks += self._extra_callbacks(net, epochs)
        if valid_set is not None and ctx.report is not None:  # e.g. a search pruning this trial
            from takeoff.training.callbacks import ReportValidation

            callbacks.append(ReportValidation())
        if ctx.checkpoint_dir is not None and self._private is None:
            callbacks.append(Checkpoint(ctx.checkpoint_dir))
        trainer = Trainer(
            model, self._loss(device), optimizer, scheduler, train=train_set, valid=valid_set,
            batch_size=batch_size, max_epochs=epochs, callbacks=callbacks + list(self.callbacks), ctx=ctx,
            device=device, score_fn=chance_score(self.task.kind) if scored else None,
            meta=meta, eval_batch_size=self.predict_batch, batch_transform=self._batch_transform(),
            collate=self._collate(), batch_order=batch_order,
            grad_accum=self._grad_accum(), precision=precision, autocast_cpu=autocast_cpu,
        )
        return trainer, stopper, net

    def _saved_state(self, ctx: FitContext, meta: dict[str, Any] | None) -> dict[str, Any] | None:
        """The checkpoint in ``ctx.checkpoint_dir`` when it holds this same fit, else None (none,
        unreadable or of another fit: warned)."""
        if meta is None:
            return None
        from takeoff.training.checkpoint import load_state

        try:
            state = load_state(ctx.checkpoint_dir)
        except DataSourceError as error:
            ctx.warn(f"{error}; {self.name} starts from scratch")
            return None
        if state is None:
            return None
        saved = state.get("meta")
        if isinstance(saved, dict) and "epochs" in saved and {k: v for k, v in saved.items() if k != "epochs"} == meta:
            return state
        ctx.warn(f"the checkpoint in {ctx.checkpoint_dir} is from another fit (other data, params or seed); "
                 f"{self.name} starts from scratch and replaces it")
        return None

    def _tensors(self, data: Dataset):
        """The rows as the trainer takes them: inputs, encoded target, weights."""
        import torch

        from takeoff.training.tensors import TensorSet

        inputs = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in self._arrays(data.X))
        if self.task.is_classification:
            target = torch.from_numpy(data.y.astype(np.int64))
        elif self.task.is_multilabel:
            target = torch.from_numpy(data.y.astype(np.float32))
        else:
            mean, std = self.spec["target_mean"], self.spec["target_std"]
            target = torch.from_numpy(((data.y.astype(np.float64) - mean) / std).astype(np.float32))
        weight = None if data.weight is None else torch.from_numpy(np.asarray(data.weight, dtype=np.float32))
        return TensorSet(inputs, target, weight)

    # -------------------------------------------------------------- predict
    def predict(self, X: Features) -> np.ndarray:
        """Probabilities (n, n_classes), per-label probabilities (n, n_labels) or values (n,), float32.

        Raises:
            DataError: the model is not fitted, or the features are not those it was trained with.
        """
        self._require_fitted()
        return self._finish(self._forward(self._arrays(X)))

    def _forward(self, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
        """The post-processed network outputs (n, n_outputs) for inputs ``arrays``, batched."""
        import torch

        from takeoff.training.loop import forward_batches
        from takeoff.training.tensors import TensorSet

        n = len(arrays[0])
        if n == 0:
            return np.zeros((0, self.spec["n_outputs"]), dtype=np.float32)
        data = TensorSet(tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays), torch.zeros(n))
        device = self._device
        with torch_threads(1 if n < self.single_thread_rows and device.type == "cpu" else None):
            out = forward_batches(self._predict_module(), data, self.predict_batch, device, collate=self._collate(),
                                  precision=self._predict_precision())
            return self._outputs(out).cpu().numpy().astype(np.float32, copy=False)

    def _finish(self, out: np.ndarray) -> np.ndarray:
        """Outputs as :meth:`predict` returns them: probabilities, or values un-standardised."""
        if self.task.is_classification or self.task.is_multilabel:
            return out
        return (out[:, 0].astype(np.float64) * self.spec["target_std"] + self.spec["target_mean"]).astype(np.float32)

    def _require_fitted(self) -> None:
        if self._net is None or self.spec is None:
            raise DataError(f"model family '{self.name}' has not been fitted or loaded; call fit() or load() first")

    # ------------------------------------------------------------ save/load
    def save(self, directory: Path) -> None:
        """Write the weights and ``spec_file`` (architecture, target scaling, params) into
        ``directory``, each atomically."""
        if self._net is None or self.spec is None:
            raise DataError(f"model family '{self.name}' has not been fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._write_weights(directory)
        write_json(directory / self.spec_file, {
            "format": self.format, "version": self.format_version, "task": self.task.kind,
            "architecture": self.spec, "best_epoch": self.best_epoch, "params": self.params.model_dump(mode="json"),
            **({"privacy": self.privacy} if self.privacy is not None else {}),
        })

    def _write_weights(self, directory: Path) -> None:
        from safetensors.torch import save_file

        weights = {k: v.detach().cpu().contiguous() for k, v in self._net.state_dict().items()}
        write_atomic(directory / self.weights_file, lambda tmp: save_file(weights, str(tmp), metadata={"format": "pt"}))

    @classmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> TorchFamily:
        """Rebuild the network from ``spec_file`` and load its weights, on the CPU.

        Raises:
            BundleError: a file is missing or unreadable, or does not fit the task or architecture.
        """
        import torch

        directory = Path(directory)
        document = read_spec(directory, cls.spec_file, (cls.weights_file,), cls.format, (cls.format_version,), cls.name)
        spec = document.get("architecture")
        cls._check_spec(spec, str(directory / cls.spec_file))
        if spec["n_outputs"] != task.n_outputs:
            raise BundleError(str(directory / cls.spec_file),
                              f"the network has {spec['n_outputs']} output(s), the task '{task.kind}' needs {task.n_outputs}")
        model = cls(task, params)
        net = model._read_network(directory, spec)
        model.spec, model.best_epoch = spec, document.get("best_epoch")
        model.privacy = document.get("privacy")
        model._net, model._device = net.eval(), torch.device("cpu")
        return model

    @classmethod
    def _check_spec(cls, spec: Any, where: str) -> None:
        """Refuse an architecture of the wrong shape before anything is built from it (a
        subclass checks its own fields and bounds; the base checks it is a JSON object with
        ``n_outputs``).

        Raises:
            BundleError: a field is missing, of the wrong type, or out of range.
        """
        outputs = spec.get("n_outputs") if isinstance(spec, dict) else None
        if isinstance(outputs, bool) or not isinstance(outputs, int) or outputs < 1:
            raise BundleError(where, f"'architecture' is not a network description (n_outputs {outputs!r})",
                              "re-copy the bundle from its source, or re-train")

    def _read_network(self, directory: Path, spec: dict[str, Any]) -> Any:
        """Build the network for ``spec`` and load its weights, once the tensors the weights file
        holds (its header, read without loading) are exactly those the architecture asks for:
        the network is first built on the ``meta`` device (no memory), so a spec that asks for
        terabytes is refused before anything is allocated, and what is allocated is bounded by
        the size of the weights file."""
        import torch
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = directory / self.weights_file
        try:
            with torch.device("meta"):
                skeleton = self._network(spec)
            expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
        except (TypeError, ValueError, KeyError, IndexError, RuntimeError, OverflowError) as error:
            raise BundleError(str(directory / self.spec_file), f"its architecture cannot be built ({type(error).__name__}: "
                              f"{str(error)[:160]})", "re-copy the bundle from its source, or re-train") from None
        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                stored = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
        except (OSError, SafetensorError) as error:
            raise BundleError(str(path), f"is not a readable safetensors file ({error})",
                              "re-copy the bundle from its source, or re-train") from None
        if stored != expected:
            differ = sorted(set(stored) ^ set(expected)) or sorted(k for k in stored if stored[k] != expected[k])
            name = differ[0]
            raise BundleError(str(path), f"weights do not match the architecture in {self.spec_file}: tensor "
                              f"'{name}' is {stored.get(name, 'absent')} in the file, {expected.get(name, 'absent')} in "
                              f"the architecture ({len(differ)} tensor(s) differ)", "re-copy the bundle from its source, or re-train")
        net = self._network(spec)
        try:
            net.load_state_dict(load_file(str(path), device="cpu"), strict=True)
        except (OSError, SafetensorError, RuntimeError) as error:
            raise BundleError(str(path), f"weights do not match the architecture ({error})")
        return net

    # ---------------------------------------------------------------- refit
    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        """``{"epochs": n}``: the best epoch count, grown mildly (square root) with the rows."""
        if self.best_epoch is None:
            return None
        return {"epochs": max(1, int(round(self.best_epoch * math.sqrt(max(n_rows_ratio, 1.0)))))}

    # ---------------------------------------------------------------- prune
    def prune(self, amount: float, structured: bool, X: Features, deadline: float, seed: int) -> tuple[Family, dict]:
        """A copy with the smallest ``amount`` of its Linear weights zeroed (magnitude pruning,
        globally by absolute value), fine-tuned until ``deadline`` to give the outputs this
        model gives on ``X`` (see :mod:`takeoff.training.pruning`). A family that can shrink
        its layers for real overrides this for ``structured``.

        Raises:
            ConfigError: ``structured`` asked for, which this family does not do.
        """
        import copy

        import torch

        from takeoff.training.pruning import mask_smallest, unmask

        if structured:
            raise ConfigError(f"structured pruning applies to the mlp family; use magnitude pruning "
                              f"(--prune without --structured) for {self.name}")
        self._require_fitted()
        torch.manual_seed(seed)
        student = copy.deepcopy(self._net)
        masked = mask_smallest(student, amount)
        new = self._copy_with(student)
        info = self._distil_into(new, X, deadline, seed, "magnitude", finish=lambda: unmask(masked))
        info["note"] = "zeros stay in dense matrices: no smaller file, no faster CPU kernels"
        return new, info

    def _distil_into(self, new: TorchFamily, X: Features, deadline: float, seed: int, kind: str,
                     finish: Any = None) -> dict[str, Any]:
        """Fine-tune ``new`` (a pruned copy) to this model's outputs on ``X``; the info dict."""
        from takeoff.training.pruning import distil, linear_sparsity, n_params

        teacher = self._net.eval()
        losses = distil(new._net, teacher, self._prune_data(X), classification=self.task.is_classification,
                        deadline=deadline, seed=seed, epochs=self.prune_epochs, batch_size=self.prune_batch,
                        lr=self.prune_lr, collate=self._collate())
        if finish is not None:
            finish()
        new._net.eval()
        return {
            "member": self.name, "kind": kind,
            "params_before": n_params(teacher), "params_after": n_params(new._net),
            "linear_sparsity": round(linear_sparsity(new._net), 4),
            "recovery_loss": losses,
        }

    def _prune_data(self, X: Features):
        """The network's inputs for ``X`` as a :class:`TensorSet` (its target unused)."""
        import torch

        from takeoff.training.tensors import TensorSet

        inputs = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in self._arrays(X))
        return TensorSet(inputs, torch.zeros(len(X)))

    def _copy_with(self, net: Any, spec: dict[str, Any] | None = None) -> TorchFamily:
        """A shallow copy of this fitted family holding another network (and spec)."""
        import copy

        new = copy.copy(self)
        new._net = net
        if spec is not None:
            new.spec = spec
        return new


# ------------------------------------------------------------------------ helpers
def data_fingerprint(train: Dataset, valid: Dataset | None) -> str:
    """A hash of the data (decoded images included), so a checkpoint is only resumed for the same rows."""
    digest = hashlib.sha256()
    for data in (train, valid):
        if data is None:
            digest.update(b"none")
            continue
        images = [data.X.images[k] for k in sorted(data.X.images)]
        texts = [np.asarray(data.X.text[k], dtype=str) for k in sorted(data.X.text)]
        for array in (*images, *texts, data.X.numeric, data.X.categorical, data.y, data.weight):
            if array is None:
                digest.update(b"none")
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
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
