"""What a callback may read and set on the trainer, as a protocol.

Callbacks are typed against :class:`TrainerView` rather than the trainer class, so that
:mod:`takeoff.training.callbacks` does not import :mod:`takeoff.training.loop` (which imports
the callbacks).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from takeoff.training.context import FitContext


class TrainerView(Protocol):
    """The trainer as a callback sees it.

    Attributes:
        model, optimizer, scheduler: what is trained and how.
        ctx: the :class:`FitContext` (deadline, seed, progress, warnings).
        device: where it computes.
        epoch: epochs completed; max_epochs: the most it runs.
        batches_per_epoch: batches (``on_batch_end`` calls) per epoch; steps_per_epoch: optimizer
            steps per epoch (fewer with gradient accumulation).
        global_step: optimizer steps so far.
        history: one list per log key, one value per completed epoch.
        stop_reason: None while running; a hook sets it to stop training.
        rank, world_size: this process under ``torch.distributed`` (0, 1 otherwise).
        train_data, valid_data: the rows (valid_data None without validation).
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ctx: FitContext
    device: torch.device
    epoch: int
    max_epochs: int
    batches_per_epoch: int
    steps_per_epoch: int
    global_step: int
    history: dict[str, list[float]]
    stop_reason: str | None
    rank: int
    world_size: int
    train_data: Any
    valid_data: Any

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after the last completed epoch."""
        ...
