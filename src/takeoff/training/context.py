"""What a family's ``fit`` receives besides its data: the deadline, where to checkpoint,
where to report progress and warnings, and which device to use."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FitContext:
    """The run-level facts a family needs while fitting.

    Attributes:
        deadline: ``time.monotonic()`` value by which ``fit`` must return (with the best model
            found so far). ``None`` means no limit.
        seed: random seed; the same seed, data and config give identical models on the CPU.
        checkpoint_dir: a directory the family may use for resumable checkpoints, or None.
        progress: show progress bars (on stderr).
        warn: called with a one-line message for anything the user should know.
        device: "auto", "cpu" or "cuda[:N]".
        dp: differential privacy of the fit (:class:`~takeoff.training.privacy.DPParams` with
            ``epsilon`` set), or None; families that cannot train with it refuse.
        report: called after each epoch / boosting round with ``(step, validation loss)``
            (lower is better) by families that validate as they go; it may raise to end the
            fit (a hyperparameter search prunes a bad trial this way). None: nobody listens.
    """

    deadline: float | None = None
    seed: int = 0
    checkpoint_dir: Path | None = None
    progress: bool = True
    warn: Callable[[str], None] = field(default=lambda message: None)
    device: str = "auto"
    dp: Any = None
    report: Callable[[int, float], None] | None = None

    def remaining(self) -> float:
        """Seconds left before the deadline (infinity when there is none)."""
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def with_share(self, share: float, checkpoint_dir: Path | None = None) -> FitContext:
        """A copy whose deadline is ``share`` of the time left (for one of several families)."""
        deadline = None if self.deadline is None else time.monotonic() + self.remaining() * share
        return FitContext(
            deadline=deadline,
            seed=self.seed,
            checkpoint_dir=checkpoint_dir,
            progress=self.progress,
            warn=self.warn,
            device=self.device,
            dp=self.dp,
            report=self.report,
        )
