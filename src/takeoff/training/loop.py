"""The training loop for torch modules.

:class:`Trainer` runs epochs of shuffled mini-batches, validates after each, and leaves every
decision (stop early, stop on time, save, draw progress, warn) to callbacks. It is resumable:
the state it saves after an epoch (model, optimizer, scheduler, RNG, callbacks, history)
continues exactly as the uninterrupted run would have, because each epoch's batch order
depends on ``ctx.seed + epoch`` only.

Under ``torch.distributed`` (a process group of several ranks, see
:mod:`takeoff.training.distributed`) the same trainer runs data-parallel:

* each rank takes its share of each epoch from a ``DistributedSampler`` (seeded, ``set_epoch``
  every epoch) and batches of ``ceil(batch_size / world)`` rows, so one optimizer step still
  sees about ``batch_size`` rows in all and the learning-rate schedule has the same steps as in
  one process;
* the model is wrapped in DistributedDataParallel for the training passes, which averages the
  gradients (rebuilt when a callback changes which parameters train, e.g. an unfrozen backbone);
* validation: each rank forwards its block of the validation rows and the outputs are
  all-gathered, so every rank computes the same metrics a single process would; the training
  loss is all-reduced;
* whether to stop (early stopping, the time budget, divergence) is decided on rank 0 and
  broadcast after every batch and every epoch, so no rank waits for a step the others skip;
* the callbacks that write (checkpoints, progress) act on rank 0 only; the checkpoint holds the
  unwrapped model, so any world size (or one process) resumes from it.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from takeoff.training.callbacks import FINAL_REASONS, Callback
from takeoff.training.checkpoint import defer_interrupts, load_state
from takeoff.training.context import FitContext
from takeoff.training.device import autocast_context
from takeoff.training.distributed import agree_stop, all_sum, gather_rows, rank_and_world, shard_bounds
from takeoff.training.scores import ScoreFn
from takeoff.training.tensors import TensorSet, batch_bounds, epoch_order, joined, steps_per_epoch

STATE_VERSION = 1
EVAL_BATCH_SIZE = 8192
# Keep the whole training set on the GPU when it takes less than this share of free memory;
# otherwise batches are gathered on the CPU into pinned memory and copied asynchronously.
_GPU_RESIDENT_SHARE = 0.25

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
Collate = Callable[[TensorSet], TensorSet]
BatchOrder = Callable[[int], Sequence[Sequence[int]]]


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
        collate: ``collate(batch) -> batch`` applied on the CPU to every batch, training and
            evaluation, before it moves to the device (dynamic padding cuts token ids to the
            batch's longest row here), or None. With it, the rows stay on the CPU.
        batch_order: ``batch_order(epoch) -> batches`` (lists of row indices) replacing the
            shuffled order, e.g. length-bucketed batches; it must depend on the epoch and the
            seed only, so a resumed run sees the same batches. None: a permutation of
            ``(ctx.seed, epoch)``, this rank's slice of it under ``torch.distributed``.
        grad_accum: batches whose gradients are summed before each optimizer step. Defaults to 1.
        precision: "auto", "fp32" or "bf16" (see
            :func:`~takeoff.training.device.autocast_context`). Defaults to "auto".
        autocast_cpu: with "auto", also autocast on a CPU that computes bf16 natively.
            Defaults to False.

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
        collate: Collate | None = None,
        batch_order: BatchOrder | None = None,
        grad_accum: int = 1,
        precision: str = "auto",
        autocast_cpu: bool = False,
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
        self.collate, self.batch_order, self.grad_accum = collate, batch_order, max(1, int(grad_accum))
        self.precision, self.autocast_cpu = precision, autocast_cpu
        self.rank, self.world_size = rank_and_world()
        # each rank's batches: about batch_size rows per step over all ranks together
        self.rank_batch_size = math.ceil(batch_size / self.world_size)
        if batch_order is not None:
            self.batches_per_epoch = len(self._rank_share(batch_order(0)))
        else:
            self.batches_per_epoch = steps_per_epoch(len(train) // self.world_size, self.rank_batch_size)
        self._ddp: Any = None  # the DistributedDataParallel wrapper, built on first use
        self._ddp_key: tuple[bool, ...] = ()
        self._sampler: Any = None
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / self.grad_accum)
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
                self._agree()
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
                self._agree()
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
        module = self._training_module()
        module.train()
        order, bounds = self._epoch_batches(epoch, len(data))
        on_device = data.target.device == self.device and self.collate is None
        if on_device and self.device.type != "cpu":
            order = order.to(self.device, non_blocking=True)
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        seen = 0
        self.optimizer.zero_grad(set_to_none=True)
        for step, (a, b) in enumerate(bounds):
            batch = data.take(order[a:b])
            if not on_device:  # gathered on the CPU, streamed to the device
                batch = self._to_device(batch)
            if self.batch_transform is not None:
                batch = self.batch_transform(batch)
            stepping = (step + 1) % self.grad_accum == 0 or step + 1 == len(bounds)
            # DDP: average the gradients once per optimizer step, not after every batch summed
            sync = contextlib.nullcontext() if stepping or module is self.model else module.no_sync()
            with sync:
                with self._autocast():
                    outputs = module(*batch.inputs)
                    loss = self.loss_fn(outputs, batch.target, batch.weight)
                (loss / self.grad_accum if self.grad_accum > 1 else loss).backward()
            if stepping:
                if self.grad_clip is not None:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                self.optimizer.step()
                if self.scheduler is not None:
                    self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.global_step += 1
            loss = loss.detach()
            total += loss.double() * (b - a)
            seen += b - a
            self._call("on_batch_end", step, loss)
            self._agree()
            if self.stop_reason is not None:
                return None
        total_all, seen_all = all_sum([float(total), seen])
        return total_all / max(seen_all, 1)

    def _agree(self) -> None:
        """Under torch.distributed: rank 0's stop decision on every rank."""
        if self.world_size > 1:
            self.stop_reason = agree_stop(self.stop_reason)

    def _training_module(self) -> nn.Module:
        """The module the training passes call: the model, or under torch.distributed the model
        in DistributedDataParallel (rebuilt when the set of trainable parameters changed)."""
        if self.world_size <= 1:
            return self.model
        key = tuple(p.requires_grad for p in self.model.parameters())
        if self._ddp is None or key != self._ddp_key:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._ddp, self._ddp_key = DistributedDataParallel(self.model, device_ids=ids), key
        return self._ddp

    def _epoch_batches(self, epoch: int, n_rows: int) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """(order, bounds): the rows of this epoch and where each batch starts and stops."""
        if self.batch_order is not None:
            return joined(self._rank_share(self.batch_order(epoch)))
        if self.world_size <= 1:
            return epoch_order(n_rows, self.batch_size, self.ctx.seed, epoch)
        from torch.utils.data import DistributedSampler

        if self._sampler is None:
            # the permutation of (seed + epoch), as in one process; rank r takes every world-th
            # row of it, the last n_rows % world rows waiting for another epoch
            self._sampler = DistributedSampler(range(n_rows), num_replicas=self.world_size, rank=self.rank,
                                               shuffle=True, seed=self.ctx.seed, drop_last=True)
        self._sampler.set_epoch(epoch)
        order = torch.tensor(list(self._sampler), dtype=torch.long)
        return order, batch_bounds(len(order), self.rank_batch_size)

    def _rank_share(self, batches: Sequence[Sequence[int]]) -> list[list[int]]:
        """This rank's part of each custom batch (every world-th row); batches with fewer rows
        than ranks are left out on every rank, so all ranks take the same number of steps."""
        if self.world_size <= 1:
            return [list(b) for b in batches]
        return [list(b)[self.rank :: self.world_size] for b in batches if len(b) >= self.world_size]

    def _to_device(self, batch: TensorSet) -> TensorSet:
        if self.collate is not None:
            batch = self.collate(batch)
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast_context(self.device, self.precision, cpu=self.autocast_cpu)

    @torch.no_grad()
    def predict(self, inputs: Sequence[torch.Tensor], batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
        """The model's float32 outputs for ``inputs`` (eval mode, batched), on ``self.device``."""
        n = int(inputs[0].shape[0])
        return self._forward(TensorSet(tuple(inputs), torch.zeros(n)), batch_size)

    def _forward(self, data: TensorSet, batch_size: int) -> torch.Tensor:
        return forward_batches(self.model, data, batch_size, self.device, collate=self.collate,
                               precision=self.precision, autocast_cpu=self.autocast_cpu)

    def evaluate(self, data: TensorSet) -> dict[str, float]:
        """``valid_loss`` (and the score function's logs) of the model on ``data``.

        Under torch.distributed each rank forwards its block of the rows and the outputs are
        all-gathered: every rank returns the same logs, those of all rows."""
        if self.world_size > 1 and len(data) >= self.world_size:
            a, b = shard_bounds(len(data), self.rank, self.world_size)
            outputs = gather_rows(self._forward(data.slice(a, b), self.eval_batch_size), len(data))
        else:
            outputs = self._forward(data, self.eval_batch_size)
        target = data.target.to(self.device)
        weight = None if data.weight is None else data.weight.to(self.device)
        with torch.no_grad():
            logs = {"valid_loss": float(self.loss_fn(outputs, target, weight))}
        if self.score_fn is not None:
            logs.update(self.score_fn(outputs.cpu(), data.target.cpu()))
        return logs

    def _place(self, data: TensorSet) -> TensorSet:
        """Put the rows where batches are drawn from: the device when they fit there (and need
        no collating on the CPU)."""
        if self.collate is not None:
            return data.to(torch.device("cpu"))
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
            "world_size": self.world_size,
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


@torch.no_grad()
def forward_batches(model: nn.Module, data: TensorSet, batch_size: int, device: torch.device, *,
                    collate: Collate | None = None, precision: str = "auto", autocast_cpu: bool = False,
                    ) -> torch.Tensor:
    """``model``'s float32 outputs for the rows of ``data`` in order (eval mode, batched, on
    ``device``; each batch collated on the CPU first when ``collate`` is given)."""
    model.eval()
    parts = []
    for a in range(0, len(data), batch_size):
        chunk = data.slice(a, a + batch_size)
        if collate is not None:
            chunk = collate(chunk)
        inputs = [t.to(device, non_blocking=True) for t in chunk.inputs]
        with autocast_context(device, precision, cpu=autocast_cpu):
            parts.append(model(*inputs).float())
    if not parts:
        return torch.zeros((0,), device=device)
    return torch.cat(parts)
