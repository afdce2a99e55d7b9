"""The training loop for torch modules.

:class:`Trainer` runs epochs of shuffled mini-batches, validates after each, and leaves every
decision (stop early, stop on time, save, draw progress, warn) to callbacks. It is resumable:
the state it saves after an epoch (model, optimizer, scheduler, RNG, callbacks, history)
continues exactly as the uninterrupted run would have, because each epoch shuffles with its
own generator seeded from ``ctx.seed + epoch``.

It is single-process; nothing in the arithmetic assumes so (losses are per-sample means,
shuffles depend on the seed and epoch only), so a distributed sampler can replace the
permutation later.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from takeoff.training.callbacks import FINAL_REASONS, Callback
from takeoff.training.checkpoint import defer_interrupts, load_state
from takeoff.training.context import FitContext
from takeoff.training.device import autocast_context

STATE_VERSION = 1
EVAL_BATCH_SIZE = 8192
# Keep the whole training set on the GPU when it takes less than this share of free memory;
# otherwise batches are gathered on the CPU into pinned memory and copied asynchronously.
_GPU_RESIDENT_SHARE = 0.25

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
ScoreFn = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]


@dataclass
class TensorSet:
    """Rows for the trainer: the model's inputs, the target, optional sample weights.

    ``model(*inputs)`` gives the outputs; ``loss_fn(outputs, target, weight)`` the mean loss.
    Every tensor has the rows along dimension 0.
    """

    inputs: tuple[torch.Tensor, ...]
    target: torch.Tensor
    weight: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> TensorSet:
        return TensorSet(
            tuple(fn(t) for t in self.inputs),
            fn(self.target),
            None if self.weight is None else fn(self.weight),
        )

    def take(self, index: torch.Tensor) -> TensorSet:
        return self._map(lambda t: t.index_select(0, index))

    def slice(self, start: int, stop: int) -> TensorSet:
        return self._map(lambda t: t[start:stop])

    def to(self, device: torch.device, non_blocking: bool = False) -> TensorSet:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> TensorSet:
        return self._map(lambda t: t.pin_memory())

    def nbytes(self) -> int:
        tensors = [*self.inputs, self.target] + ([self.weight] if self.weight is not None else [])
        return sum(t.element_size() * t.nelement() for t in tensors)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        history: one list per log key (``train_loss``, ``valid_loss``, ...), one value per
            completed epoch, including epochs done before a resume.
        stop_reason: "early_stopping", "time_budget", "diverged" or "max".
        epochs: epochs completed.
        seconds: wall time of this call.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    stop_reason: str = "max"
    epochs: int = 0
    seconds: float = 0.0


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Optimizer steps in one epoch (a last batch of one row joins the one before it)."""
    return len(_batch_bounds(n_rows, batch_size))


def _batch_bounds(n_rows: int, batch_size: int) -> list[tuple[int, int]]:
    bounds = [(a, min(a + batch_size, n_rows)) for a in range(0, n_rows, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        # a batch of one row breaks BatchNorm and gives a very noisy step: fold it back
        bounds[-2] = (bounds[-2][0], n_rows)
        bounds.pop()
    return bounds


class Trainer:
    """Fits a torch module with mini-batches, validation and callbacks.

    Args:
        model: the module, already on ``device`` (so the optimizer holds its parameters).
        loss_fn: ``loss_fn(outputs, target, weight) -> scalar``, the (weighted) mean loss.
        optimizer: the optimizer over ``model``'s parameters.
        scheduler: a learning-rate scheduler stepped after every batch, or None.
        train: the training rows.
        valid: validation rows, evaluated after each epoch, or None.
        batch_size: rows per step. Defaults to 256.
        max_epochs: the most epochs to run. Defaults to 10.
        callbacks: hooks, called in their ``order``. Defaults to none.
        ctx: deadline, seed, progress and warnings; defaults to ``FitContext()``.
        device: where to compute; defaults to the model's device.
        score_fn: ``score_fn(valid_outputs, valid_target) -> logs`` for a chance-aware metric
            (see :func:`chance_score`), computed on the CPU after each validation.
        grad_clip: clip the gradient norm to this value, or None. Defaults to None.
        meta: JSON-like facts saved with each checkpoint; :meth:`resume` only accepts a
            checkpoint with equal ``meta`` (the same data and settings).
        eval_batch_size: rows per forward pass when validating (images need fewer).
        batch_transform: ``batch_transform(batch) -> batch`` applied to each training batch on
            the device before the forward pass (mixup and cutmix mix images and targets
            here), or None.

    Example:
        >>> net = nn.Linear(3, 1)
        >>> data = TensorSet((torch.randn(64, 3),), torch.randn(64))
        >>> mse = lambda out, y, w: ((out[:, 0] - y) ** 2).mean()
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> result = Trainer(net, mse, opt, train=data, max_epochs=2).fit()
        >>> result.epochs
        2
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        train: TensorSet,
        valid: TensorSet | None = None,
        batch_size: int = 256,
        max_epochs: int = 10,
        callbacks: Sequence[Callback] = (),
        ctx: FitContext | None = None,
        device: torch.device | None = None,
        score_fn: ScoreFn | None = None,
        grad_clip: float | None = None,
        meta: dict[str, Any] | None = None,
        eval_batch_size: int = EVAL_BATCH_SIZE,
        batch_transform: Callable[[TensorSet], TensorSet] | None = None,
    ):
        self.model, self.loss_fn = model, loss_fn
        self.optimizer, self.scheduler = optimizer, scheduler
        self.train_data = train
        self.valid_data = valid if valid is not None and len(valid) > 0 else None
        self.batch_size, self.max_epochs = batch_size, max_epochs
        # stable sort: equal orders keep the caller's order
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        self.ctx = ctx or FitContext()
        if device is None:
            first = next(model.parameters(), None)
            device = first.device if first is not None else torch.device("cpu")
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        self.score_fn, self.grad_clip, self.meta = score_fn, grad_clip, meta
        self.eval_batch_size, self.batch_transform = eval_batch_size, batch_transform
        self.steps_per_epoch = steps_per_epoch(len(train), batch_size)
        self.epoch = 0  # epochs completed
        self.global_step = 0
        self.history: dict[str, list[float]] = {}
        self.stop_reason: str | None = None

    # ------------------------------------------------------------------ running
    def fit(self) -> TrainResult:
        """Train until ``max_epochs``, or until a callback stops it.

        Raises:
            KeyboardInterrupt: passed on after the last completed epoch's callbacks (its
                checkpoint included) have run; ``stop_reason`` is then "interrupted".
        """
        start = time.monotonic()
        train = self._place(self.train_data)
        valid = None if self.valid_data is None else self._place(self.valid_data)
        try:
            self._call("on_train_begin")
            while self.stop_reason is None and self.epoch < self.max_epochs:
                epoch = self.epoch
                self._call("on_epoch_begin", epoch)
                if self.stop_reason is not None:
                    break
                train_loss = self._train_epoch(train, epoch)
                if train_loss is None:  # stopped mid-epoch: the partial epoch is not recorded
                    break
                logs = {"train_loss": train_loss}
                if valid is not None:
                    logs.update(self.evaluate(valid))
                # an epoch is recorded whole or not at all: Ctrl-C waits for its checkpoint
                with defer_interrupts():
                    for key, value in logs.items():
                        self.history.setdefault(key, []).append(value)
                    self.epoch = epoch + 1
                    self._call_all("on_epoch_end", epoch, logs)
        except BaseException as error:
            self.stop_reason = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
            with contextlib.suppress(Exception):  # the original error is the one to report
                self._call("on_train_end")
            raise
        if self.stop_reason is None:
            self.stop_reason = "max"
        self._call("on_train_end")
        return TrainResult(
            history={k: list(v) for k, v in self.history.items()},
            stop_reason=self.stop_reason,
            epochs=self.epoch,
            seconds=time.monotonic() - start,
        )

    def _train_epoch(self, data: TensorSet, epoch: int) -> float | None:
        """One pass over ``data``; the mean training loss, or None when a callback stopped it."""
        self.model.train()
        # the shuffle depends on (seed, epoch) only, so a resumed run sees the same batches
        generator = torch.Generator().manual_seed(self.ctx.seed + epoch)
        order = torch.randperm(len(data), generator=generator)
        on_device = data.target.device == self.device
        if on_device and self.device.type != "cpu":
            order = order.to(self.device, non_blocking=True)
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        for step, (a, b) in enumerate(_batch_bounds(len(data), self.batch_size)):
            batch = data.take(order[a:b])
            if not on_device:  # streamed from pinned CPU memory
                batch = batch.pin_memory().to(self.device, non_blocking=True)
            if self.batch_transform is not None:
                batch = self.batch_transform(batch)
            with autocast_context(self.device):
                outputs = self.model(*batch.inputs)
                loss = self.loss_fn(outputs, batch.target, batch.weight)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            self.global_step += 1
            loss = loss.detach()
            total += loss.double() * (b - a)
            self._call("on_batch_end", step, loss)
            if self.stop_reason is not None:
                return None
        return float(total) / len(data)

    @torch.no_grad()
    def predict(self, inputs: Sequence[torch.Tensor], batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
        """The model's float32 outputs for ``inputs`` (eval mode, batched), on ``self.device``."""
        self.model.eval()
        n = int(inputs[0].shape[0])
        parts = []
        for a in range(0, n, batch_size):
            chunk = [t[a : a + batch_size].to(self.device, non_blocking=True) for t in inputs]
            with autocast_context(self.device):
                parts.append(self.model(*chunk).float())
        if not parts:
            return torch.zeros((0,), device=self.device)
        return torch.cat(parts)

    def evaluate(self, data: TensorSet) -> dict[str, float]:
        """``valid_loss`` (and the score function's logs) of the model on ``data``."""
        outputs = self.predict(data.inputs, self.eval_batch_size)
        target = data.target.to(self.device)
        weight = None if data.weight is None else data.weight.to(self.device)
        with torch.no_grad():
            logs = {"valid_loss": float(self.loss_fn(outputs, target, weight))}
        if self.score_fn is not None:
            logs.update(self.score_fn(outputs.cpu(), data.target.cpu()))
        return logs

    def _place(self, data: TensorSet) -> TensorSet:
        """Put the rows where batches are drawn from: the device when they fit there."""
        if self.device.type != "cuda":
            return data.to(self.device)
        free, _ = torch.cuda.mem_get_info(self.device)
        if data.nbytes() < _GPU_RESIDENT_SHARE * free:
            return data.pin_memory().to(self.device, non_blocking=True)
        return data.to(torch.device("cpu"))

    # -------------------------------------------------------------- callbacks
    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def _call_all(self, hook: str, *args: Any) -> None:
        """Call every callback even if one raises KeyboardInterrupt (raised afterwards), so
        the checkpoint of a completed epoch is always written."""
        pending: KeyboardInterrupt | None = None
        for callback in self.callbacks:
            try:
                getattr(callback, hook)(self, *args)
            except KeyboardInterrupt as interrupt:
                pending = interrupt
        if pending is not None:
            raise pending

    def _callback_names(self) -> list[str]:
        names, seen = [], {}
        for callback in self.callbacks:
            base = type(callback).__name__
            seen[base] = seen.get(base, 0) + 1
            names.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
        return names

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after the last completed epoch."""
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "version": STATE_VERSION,
            "meta": self.meta,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "stop_reason": self.stop_reason,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "history": self.history,
            "callbacks": {
                name: cb.state_dict() for name, cb in zip(self._callback_names(), self.callbacks)
            },
            "rng": rng,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (see :meth:`state_dict`): the next epoch is ``state['epoch']``."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.history = {k: [float(v) for v in values] for k, values in state["history"].items()}
        saved = state.get("callbacks", {})
        for name, callback in zip(self._callback_names(), self.callbacks):
            if name in saved:
                callback.load_state_dict(saved[name])
        torch.set_rng_state(state["rng"]["cpu"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        # a finished run stays finished; one stopped by the clock or Ctrl-C goes on
        reason = state.get("stop_reason")
        self.stop_reason = reason if reason in FINAL_REASONS else None

    def resume(self, path_dir: Path) -> bool:
        """Load the checkpoint in ``path_dir`` if there is one made with the same ``meta``.

        Returns:
            True when training will continue from the checkpoint, False otherwise.

        Raises:
            DataSourceError: the checkpoint exists but cannot be read.
        """
        state = load_state(path_dir)
        if state is None or state.get("meta") != self.meta:
            return False
        self.load_state_dict(state)
        return True


# ------------------------------------------------------------------------ scores
def chance_score(kind: str) -> ScoreFn:
    """A score function for :class:`Trainer` whose logs say how far from chance the model is.

    Args:
        kind: "binary" (outputs: (n, 2) logits; ROC-AUC, chance 0.5), "multilabel" (outputs:
            (n, k) logits; mean ROC-AUC over labels, chance 0.5), "multiclass" (outputs:
            (n, k) logits; accuracy, chance = the majority class's share) or "regression"
            (outputs: (n,) or (n, 1); R², chance 0).

    Returns:
        A function giving ``valid_score``, ``valid_chance``, ``valid_chance_band`` (about two
        standard errors of the score when there is no signal) and the named metric.
    """
    if kind == "binary":
        return _binary_score
    if kind == "multiclass":
        return _multiclass_score
    if kind == "regression":
        return _regression_score
    if kind == "multilabel":
        return _multilabel_score
    from takeoff.errors import UnknownNameError

    raise UnknownNameError("task", kind, ["binary", "multiclass", "multilabel", "regression"])


def _multilabel_score(outputs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean ROC-AUC over the labels with positives and negatives (logits (n, k), 0/1 (n, k))."""
    y = target.numpy().astype(np.int64)
    logits = outputs.double().numpy()
    aucs, bands = [], []
    for k in range(y.shape[1]):
        n_pos = int(y[:, k].sum())
        n_neg = len(y) - n_pos
        if n_pos and n_neg:
            aucs.append(roc_auc(logits[:, k], y[:, k]))
            bands.append(2.0 * np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg)))
    if not aucs:
        return {}
    auc = float(np.mean(aucs))
    band = float(np.sqrt(np.sum(np.square(bands))) / len(bands))  # of a mean of independent AUCs
    return {"valid_roc_auc": auc, "valid_score": auc, "valid_chance": 0.5, "valid_chance_band": band}


def _binary_score(outputs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    y = target.numpy().astype(np.int64)
    n_pos = int((y == 1).sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return {}
    margin = (outputs[:, 1] - outputs[:, 0]).double().numpy()
    auc = roc_auc(margin, y)
    band = 2.0 * np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    return {"valid_roc_auc": auc, "valid_score": auc, "valid_chance": 0.5, "valid_chance_band": float(band)}


def _multiclass_score(outputs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    y = target.numpy().astype(np.int64)
    if len(y) == 0:
        return {}
    accuracy = float((outputs.argmax(dim=1).numpy() == y).mean())
    majority = float(np.bincount(y).max() / len(y))
    band = 2.0 * np.sqrt(majority * (1 - majority) / len(y))
    return {
        "valid_accuracy": accuracy,
        "valid_score": accuracy,
        "valid_chance": majority,
        "valid_chance_band": float(band),
    }


def _regression_score(outputs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    y = target.double().numpy()
    pred = outputs.double().reshape(len(y), -1)[:, 0].numpy()
    total = float(((y - y.mean()) ** 2).sum())
    if len(y) < 2 or total <= 0:
        return {}
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / total
    return {"valid_r2": r2, "valid_score": r2, "valid_chance": 0.0, "valid_chance_band": 2.0 / np.sqrt(len(y))}


def roc_auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve from scores and 0/1 labels (ties count half)."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y)
    sorter = np.argsort(scores, kind="mergesort")
    ordered = scores[sorter]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    mean_rank = (starts + ends + 1) / 2.0  # 1-based ranks start+1 .. end, averaged over ties
    group = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1
    ranks = np.empty(len(scores))
    ranks[sorter] = mean_rank[group]
    n_pos = int((y == 1).sum())
    n_neg = len(y) - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
