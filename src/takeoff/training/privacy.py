"""Differentially private training: DP-SGD through Opacus on the one :class:`Trainer`.

What a private fit changes, and why:

* **Poisson sampling.** Each step takes every training row independently with probability
  ``q = batch_size / n`` (a :class:`Trainer` ``batch_order``, seeded by the run's seed and the
  epoch). The accountant's privacy amplification by subsampling assumes exactly this; a
  shuffled fixed-size batch order would void the number it reports.
* **Per-sample clipping and noise.** The module is wrapped in Opacus's ``GradSampleModule``
  and the optimizer in its ``DPOptimizer``: every row's gradient is clipped to
  ``max_grad_norm``, and Gaussian noise of standard deviation ``noise_multiplier ·
  max_grad_norm`` is added to each step's sum. The noise multiplier is calibrated by
  ``opacus.accountants.utils.get_noise_multiplier`` so that the planned steps spend exactly
  the target ε at δ.
* **Accounting.** Opacus's accountant is stepped by the optimizer on every step actually
  taken; the spent ε is what it reports for those steps (less than the target when the time
  budget cuts training short).
* **Layers.** Batch normalisation mixes rows of a batch, so no per-row gradient exists; the
  module is checked with ``ModuleValidator`` and refused with a message naming the layer
  (the MLP switches to layer normalisation under DP instead).
* **Loss.** The plain per-batch mean, so that each row's clipped gradient depends on that row
  alone: class and row weights are not applied under DP.

What DP-SGD does *not* cover is documented in ``docs/privacy.md``: the feature preprocessing
(scales, category lists) is fitted on the data without noise, and the validation rows used to
report metrics and tune the decision threshold are not protected.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from takeoff.errors import ConfigError

DEFAULT_DELTA = 1e-5


class DPParams(BaseModel):
    """Differential privacy of the network families (DP-SGD through Opacus)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    epsilon: float | None = Field(
        None, gt=0, le=1000, description="Target privacy budget ε of DP-SGD; None trains without DP. Only network "
        "families (mlp) train with DP; auto then tries those alone.")
    delta: float | None = Field(
        None, gt=0, lt=1, description="δ of (ε, δ)-DP; default min(1e-5, 0.1 / training rows), well below 1/rows.")
    max_grad_norm: float = Field(1.0, gt=0, description="Per-row gradient clipping bound C of DP-SGD.")
    epochs: int = Field(
        20, ge=1, le=1000, description="Epochs of a DP-SGD fit (unless the family's params fix `epochs`): all are run, "
        "no early stopping, and the noise is calibrated to spend ε over exactly these.")
    accountant: Literal["rdp", "prv", "gdp"] = Field(
        "rdp", description="Opacus accountant that calibrates the noise and reports the ε spent.")

    @property
    def enabled(self) -> bool:
        return self.epsilon is not None


def default_delta(n_rows: int) -> float:
    """δ when none is given: 1e-5, or 0.1/n on tables of more than 10,000 rows."""
    return min(DEFAULT_DELTA, 0.1 / max(n_rows, 1))


class PrivateTraining:
    """One DP-SGD fit: the sampling plan, the calibrated noise and the accountant.

    Args:
        params: the run's :class:`DPParams` (``epsilon`` set).
        n_rows: training rows.
        batch_size: expected rows per step (``q = batch_size / n_rows``).
        epochs: planned passes over the data (``round(1 / q)`` steps each).

    Example:
        >>> plan = PrivateTraining(DPParams(epsilon=3.0), n_rows=1000, batch_size=100, epochs=5)
        >>> plan.steps_per_epoch, plan.planned_steps
        (10, 50)
    """

    def __init__(self, params: DPParams, n_rows: int, batch_size: int, epochs: int):
        try:
            from opacus.accountants import create_accountant
            from opacus.accountants.utils import get_noise_multiplier
        except ImportError:
            from takeoff.errors import MissingDependencyError

            raise MissingDependencyError("opacus", "differential privacy (--dp-epsilon)", extra="train") from None

        if params.epsilon is None:
            raise ConfigError("PrivateTraining needs dp.epsilon")
        self.params, self.n_rows = params, int(n_rows)
        self.delta = params.delta if params.delta is not None else default_delta(n_rows)
        self.sample_rate = min(1.0, batch_size / max(n_rows, 1))
        self.expected_batch = max(1, int(round(self.sample_rate * n_rows)))
        self.steps_per_epoch = max(1, int(round(1.0 / self.sample_rate)))
        self.planned_steps = max(1, int(epochs)) * self.steps_per_epoch
        self.epochs = max(1, int(epochs))
        self.noise_multiplier = float(get_noise_multiplier(
            target_epsilon=params.epsilon, target_delta=self.delta, sample_rate=self.sample_rate,
            steps=self.planned_steps, accountant=params.accountant, epsilon_tolerance=0.01))
        self.accountant = create_accountant(mechanism=params.accountant)

    # ------------------------------------------------------------------ wrap
    def wrap(self, module: Any, optimizer: Any, name: str) -> tuple[Any, Any]:
        """``(GradSampleModule, DPOptimizer)`` over ``module`` and ``optimizer``; each
        optimizer step is recorded by the accountant.

        Raises:
            ConfigError: the module has layers DP-SGD cannot train (e.g. batch normalisation).
        """
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer
        from opacus.validators import ModuleValidator

        import warnings

        # Opacus's hooks fire on the first layer although the inputs need no gradient: harmless
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")
        problems = ModuleValidator.validate(module, strict=False)
        if problems:
            described = "; ".join(str(p) for p in problems[:3])
            raise ConfigError(f"model family '{name}' cannot train with differential privacy: {described}. "
                              "Fix: use norm: layer (or none) for this family, or train without --dp-epsilon.")
        private_module = GradSampleModule(module, loss_reduction="mean")
        private_optimizer = DPOptimizer(optimizer, noise_multiplier=self.noise_multiplier,
                                        max_grad_norm=self.params.max_grad_norm,
                                        expected_batch_size=self.expected_batch, loss_reduction="mean")
        private_optimizer.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=self.sample_rate))
        return private_module, private_optimizer

    @staticmethod
    def unwrap(private_module: Any) -> Any:
        """The plain module again: hooks and per-sample gradients removed."""
        return private_module.to_standard_module()

    def batch_order(self, seed: int):
        """``batch_order(epoch)`` for the :class:`Trainer`: ``steps_per_epoch`` Poisson batches
        (each row in each batch with probability ``sample_rate``), a function of ``(seed,
        epoch)`` only. An empty draw (probability ``(1 - q)^n``) is skipped; the optimizer then
        takes no step and the accountant records none."""
        n, q, steps = self.n_rows, self.sample_rate, self.steps_per_epoch

        def order(epoch: int) -> list[np.ndarray]:
            rng = np.random.default_rng([seed, epoch, 0x0D9])
            batches = [np.flatnonzero(rng.random(n) < q) for _ in range(steps)]
            return [b for b in batches if len(b)]

        return order

    # ------------------------------------------------------------------ result
    @property
    def steps_taken(self) -> int:
        return int(sum(steps for _, _, steps in getattr(self.accountant, "history", [])))

    def spent(self) -> dict[str, Any]:
        """The manifest's ``privacy.dp``: ε spent for the steps taken (Opacus's accountant),
        δ, the accountant, the noise multiplier, the clipping bound, and the sampling plan."""
        steps = self.steps_taken
        epsilon = float(self.accountant.get_epsilon(delta=self.delta)) if steps else 0.0
        return {
            "epsilon": epsilon,
            "target_epsilon": float(self.params.epsilon),
            "delta": float(self.delta),
            "accountant": self.params.accountant,
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": float(self.params.max_grad_norm),
            "sample_rate": self.sample_rate,
            "steps": steps,
            "planned_steps": self.planned_steps,
            "epochs": round(steps / self.steps_per_epoch, 2),
            "training_rows": self.n_rows,
        }


def epsilon_for(noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp") -> float:
    """ε that Opacus's ``accountant`` gives for ``steps`` DP-SGD steps (to check a report)."""
    from opacus.accountants import create_accountant

    acc = create_accountant(mechanism=accountant)
    acc.history = [(noise_multiplier, sample_rate, int(steps))]
    return float(acc.get_epsilon(delta=delta)) if steps else 0.0
