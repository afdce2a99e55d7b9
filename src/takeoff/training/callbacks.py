"""Named, typed hooks the :class:`~takeoff.training.loop.Trainer` calls.

Early stopping, the time budget, checkpoints, progress and warnings are callbacks rather than
branches in the loop. Any hook may stop training by setting ``trainer.stop_reason``; the loop
checks it after every hook call (after every batch for ``on_batch_end``).

What a callback may read on the trainer is :class:`~takeoff.training.protocol.TrainerView`:
``model``, ``optimizer``, ``scheduler``, ``ctx`` (the
:class:`~takeoff.training.context.FitContext`), ``device``, ``epoch`` (epochs completed),
``max_epochs``, ``batches_per_epoch``, ``steps_per_epoch``, ``global_step``, ``history`` (one
list per log key), ``rank`` and ``state_dict()`` (the full resumable state). Callbacks that
write files or draw act on rank 0 only.

A callback with state that matters for resuming (early stopping's best score, say) returns it
from :meth:`Callback.state_dict`; it is saved in each checkpoint and handed back to
:meth:`Callback.load_state_dict` on resume.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, ClassVar

import torch

from takeoff.errors import ConfigError
from takeoff.training.protocol import TrainerView as Trainer

# Reasons a run ends; "time_budget" and "interrupted" may be resumed, the others are final.
FINAL_REASONS = ("early_stopping", "max", "diverged")


class Callback:
    """Base class: every hook does nothing.

    ``order`` decides the call order (lower first, stable otherwise); checkpoints run last so
    they record what the other callbacks decided at the end of the epoch.
    """

    order: ClassVar[int] = 0

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first epoch (also when resuming)."""

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """Before epoch ``epoch`` (0-based) starts."""

    def on_batch_end(self, trainer: Trainer, step: int, loss: torch.Tensor) -> None:
        """After optimizer step ``step`` (0-based, within the epoch).

        ``loss`` is the batch's mean loss as a detached 0-dim tensor: call ``float(loss)`` only
        when needed, as it waits for the GPU.
        """

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        """After epoch ``epoch`` (0-based) and its validation; ``logs`` holds ``train_loss``,
        and with validation data ``valid_loss``, ``valid_score``, ``valid_chance`` and the
        named metric (``valid_roc_auc``, ``valid_balanced_accuracy`` and ``valid_accuracy``, or
        ``valid_r2``)."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last epoch. Also called when an exception ends training, with
        ``trainer.stop_reason`` set to "interrupted" (Ctrl-C) or "error"."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class EarlyStopping(Callback):
    """Stop when the monitored log has not improved for ``patience`` epochs; keep the best
    weights in memory and put them back in the model when training ends.

    Args:
        monitor: the log key to watch. Defaults to "valid_loss".
        mode: "min" (lower is better) or "max". Defaults to "min".
        patience: epochs without improvement before stopping. Defaults to 8.
        min_delta: the smallest change that counts as an improvement. Defaults to 0.
        restore_best_weights: load the best epoch's weights at the end. Defaults to True.

    Example:
        >>> stopper = EarlyStopping(patience=3)
    """

    def __init__(
        self,
        monitor: str = "valid_loss",
        mode: str = "min",
        patience: int = 8,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ):
        if mode not in ("min", "max"):
            raise ConfigError(f"EarlyStopping mode '{mode}' is not valid; use 'min' or 'max'")
        if patience < 1:
            raise ConfigError(f"EarlyStopping patience must be at least 1; received: {patience}")
        self.monitor, self.mode = monitor, mode
        self.patience, self.min_delta = patience, abs(min_delta)
        self.restore_best_weights = restore_best_weights
        self.best: float | None = None
        self.best_epoch = 0  # epochs completed when the best value was seen
        self.wait = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            raise ConfigError(
                f"EarlyStopping monitors '{self.monitor}', which this training does not log; "
                f"logged: {', '.join(sorted(logs))}. Fix: monitor one of those, or give "
                "validation data."
            )
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            if self.restore_best_weights:
                self.best_weights = {
                    k: v.detach().clone() for k, v in trainer.model.state_dict().items()
                }
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop_reason = "early_stopping"

    def on_train_end(self, trainer: Trainer) -> None:
        if self.best_weights is not None and trainer.stop_reason not in ("interrupted", "error"):
            trainer.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.best_weights = state["wait"], state["best_weights"]


class TimeBudget(Callback):
    """Stop when ``trainer.ctx.deadline`` passes, checked after every batch (so one huge epoch
    cannot overrun the budget), before each epoch and after each validation.

    Args:
        margin_s: stop this many seconds before the deadline, to leave time for what follows
            the fit. Defaults to 0.
    """

    def __init__(self, margin_s: float = 0.0):
        self.margin_s = margin_s

    def _check(self, trainer: Trainer) -> None:
        if trainer.ctx.remaining() <= self.margin_s:
            trainer.stop_reason = "time_budget"

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self._check(trainer)

    def on_batch_end(self, trainer: Trainer, step: int, loss: torch.Tensor) -> None:
        self._check(trainer)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        self._check(trainer)


class ReportValidation(Callback):
    """Hand each epoch's validation loss to ``trainer.ctx.report`` (a hyperparameter search
    listening for pruning). Rank 0 only: every rank holds the same all-reduced loss."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if trainer.ctx.report is not None and "valid_loss" in logs and trainer.rank == 0:
            trainer.ctx.report(epoch, float(logs["valid_loss"]))


class TerminateOnNaN(Callback):
    """Stop with reason "diverged" when the epoch's training loss is nan or infinite (one
    check per epoch, so the GPU is not synchronised every batch)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if not math.isfinite(logs.get("train_loss", 0.0)):
            trainer.stop_reason = "diverged"
            trainer.ctx.warn(
                f"training diverged at epoch {epoch + 1} (the loss is {logs['train_loss']}); the "
                "best earlier epoch is kept. Fix: lower the learning rate."
            )


class Checkpoint(Callback):
    """Save the full training state after every epoch, atomically (see
    :mod:`takeoff.training.checkpoint`). Runs after the other callbacks.

    Args:
        directory: the checkpoint folder; it holds the latest epoch only.
    """

    order: ClassVar[int] = 100

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        from takeoff.training.checkpoint import save_state

        if trainer.rank == 0:  # the other ranks hold the same state
            save_state(self.directory, trainer.state_dict())


class ProgressBar(Callback):
    """A rich progress bar on stderr: epoch, batches, training loss and the monitored log.

    Silent (draws and logs nothing) when ``ctx.progress`` is False, stderr is not a terminal,
    or this process is not rank 0.

    Args:
        monitor: the log shown next to the training loss. Defaults to "valid_loss".
        console: a ``rich.console.Console`` to draw on; defaults to one on stderr.
    """

    order: ClassVar[int] = 90

    def __init__(self, monitor: str = "valid_loss", console: Any = None):
        self.monitor, self.console = monitor, console
        self._progress: Any = None
        self._task: Any = None
        self._last_draw = 0.0
        self._last: str = ""

    def on_train_begin(self, trainer: Trainer) -> None:
        if not trainer.ctx.progress or trainer.rank != 0:
            return
        from rich.console import Console

        console = self.console or Console(stderr=True)
        if not console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.progress import TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("", total=trainer.batches_per_epoch, info="")

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        if self._progress is not None:
            self._progress.reset(
                self._task,
                total=trainer.batches_per_epoch,
                description=f"epoch {epoch + 1}/{trainer.max_epochs}",
                info=self._last,
            )

    def on_batch_end(self, trainer: Trainer, step: int, loss: torch.Tensor) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now - self._last_draw > 0.25:  # float(loss) syncs the GPU: only a few times a second
            self._last_draw = now
            self._progress.update(self._task, advance=1, info=f"loss {float(loss):.4f} {self._last}")
        else:
            self._progress.advance(self._task)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self._progress is None:
            return
        parts = [f"train_loss {logs['train_loss']:.4f}"]
        if self.monitor in logs and self.monitor != "train_loss":
            parts.append(f"{self.monitor} {logs[self.monitor]:.4f}")
        self._last = "· " + " ".join(parts)
        self._progress.update(self._task, info=self._last)

    def on_train_end(self, trainer: Trainer) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# the metric ``valid_score`` is, by the key logged beside it (balanced accuracy before accuracy:
# a multiclass score logs both and scores the first)
_METRIC_NAMES = {"valid_roc_auc": "ROC-AUC", "valid_balanced_accuracy": "balanced accuracy",
                 "valid_accuracy": "accuracy", "valid_r2": "R²"}


class ChanceWarning(Callback):
    """Warn once when the network memorises rows without learning anything that generalises:
    after ``min_epochs``, the training loss has fallen by more than ``loss_drop`` while the
    validation score is still at the chance level of its metric: what a guess that ignores the
    features scores (ROC-AUC 0.5, balanced accuracy 1/k, R² 0; see
    :func:`~takeoff.training.scores.chance_level`), not the majority class's share, which a
    model that finds the rare classes may score below while it learns.

    The chance band is ``max(tolerance, logs["valid_chance_band"])``, the latter being about
    two standard errors of the score under "no signal" for the validation set's size.

    Args:
        min_epochs: epochs before the first check. Defaults to 3.
        loss_drop: share by which the training loss must have fallen. Defaults to 0.2.
        tolerance: the smallest chance band (0.02: an AUC below 0.52 is chance). Defaults to 0.02.
    """

    def __init__(self, min_epochs: int = 3, loss_drop: float = 0.2, tolerance: float = 0.02):
        self.min_epochs, self.loss_drop, self.tolerance = min_epochs, loss_drop, tolerance
        self.fired = False

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self.fired or epoch + 1 < self.min_epochs or "valid_score" not in logs:
            return
        losses = trainer.history.get("train_loss", [])
        if not losses or not losses[0] > 0 or not math.isfinite(logs["train_loss"]):
            return
        drop = 1.0 - logs["train_loss"] / losses[0]
        score, chance = logs["valid_score"], logs["valid_chance"]
        band = max(self.tolerance, logs.get("valid_chance_band", 0.0))
        if drop <= self.loss_drop or score > chance + band:
            return
        self.fired = True
        name = next((_METRIC_NAMES[k] for k in _METRIC_NAMES if k in logs), "score")
        trainer.ctx.warn(
            f"the training loss fell {drop:.0%} over {epoch + 1} epochs but the validation "
            f"{name} is {score:.3f}, the chance level being {chance:.3f} (what a guess that ignores "
            "the features scores): the network memorises "
            "rows instead of learning a pattern that carries over. Likely causes: the labels are "
            "shuffled or misaligned with their rows; the features hold no signal for the "
            "target; or what is learned leaks across rows (an ID-like or row-order column lets "
            "the network tell rows apart). Check: that each target value belongs to its row "
            "(joins, sorting), what a simple model such as LightGBM scores, and drop ID-like "
            "columns."
        )

    def state_dict(self) -> dict[str, Any]:
        return {"fired": self.fired}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fired = bool(state["fired"])
