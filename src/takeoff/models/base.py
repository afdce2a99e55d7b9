"""The model family contract.

A family turns :class:`~takeoff.features.Features` into outputs for one :class:`Task`:

* classification: ``predict`` returns probabilities, shape (n_rows, n_classes), columns in
  the order of ``task.classes`` (for binary, column 1 is the positive class);
* regression: ``predict`` returns values, shape (n_rows,);
* multilabel: ``predict`` returns one independent probability per label, shape
  (n_rows, n_labels), columns in ``task.classes`` order; the target ``y`` is a 0/1 matrix of
  that shape. A family that lists "multilabel" in ``tasks`` does it natively (one network with
  a sigmoid head); any other family that does "binary" gets one model per label from
  :class:`~takeoff.models.onevsrest.OneVsRest` (:meth:`Family.create`).

A family is one file in ``models/`` holding the family class and its ``Params`` (a small
pydantic model; each field declared once with type, range, default and description), plus one
line in :mod:`takeoff.registry`. Heavy libraries are imported inside methods so that reading
the registry stays cheap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from takeoff.data.schema import Task
from takeoff.features.block import Features
from takeoff.training.context import FitContext

if TYPE_CHECKING:
    import onnx

# The families whose ``to_onnx`` builds a graph (see :meth:`Family.to_onnx`).
ONNX_FAMILIES = ("lightgbm", "mlp", "text-finetune")


class Params(BaseModel):
    """Base of every family's hyperparameters: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass
class Dataset:
    """Features with their encoded target (class codes, or float values for regression)."""

    X: Features
    y: np.ndarray
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class FitReport:
    """What a fit learned about itself, for refitting and the report.

    Attributes:
        best_iteration: boosting rounds / epochs at the best validation score (for refit).
        history: learning curves, e.g. {"train_loss": [...], "valid_loss": [...]}.
        stopped_by: why the fit ended: "converged", "early_stopping", "time_budget", "max".
    """

    best_iteration: int | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    stopped_by: str = "max"
    seconds: float = 0.0


class Family(ABC):
    """One kind of model, behind the small interface the trainer, bundle and server use."""

    name: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "regression")
    Params: ClassVar[type[Params]] = Params
    # reads ``Features.text`` (raw strings): tried by ``auto`` only when the table has text
    needs_text: ClassVar[bool] = False
    # reads ``Features.images`` (decoded pixels): tried by ``auto`` only on image tables
    needs_images: ClassVar[bool] = False
    # capabilities that compression, explain and serving ask for (never a family's name)
    exports_onnx: ClassVar[bool] = False  # to_onnx(sample) builds a graph
    quantizes_int8: ClassVar[bool] = False  # int8 quantization of its ONNX graph pays (network weights)
    prunable: ClassVar[bool] = False  # prune(...) below
    explains_gradients: ClassVar[bool] = False  # attribution_module() for Integrated Gradients
    explains_trees: ClassVar[bool] = False  # tree_contributions(X) for TreeSHAP
    serves_in_batches: ClassVar[bool] = True  # the server's micro-batcher pays off

    def __init__(self, task: Task, params: Params | dict[str, Any] | None = None):
        if task.kind not in self.tasks:
            from takeoff.errors import ConfigError

            raise ConfigError(
                f"model family '{self.name}' does not support task '{task.kind}'; "
                f"it supports: {', '.join(self.tasks)}"
            )
        self.task = task
        if isinstance(params, dict) or params is None:
            params = self.Params(**(params or {}))
        self.params = params
        self.report = FitReport()

    @classmethod
    def supports(cls, kind: str) -> bool:
        """Whether this family can train for task ``kind`` (natively or one model per label)."""
        return kind in cls.tasks or (kind == "multilabel" and "binary" in cls.tasks)

    @classmethod
    def create(cls, task: Task, params: Params | dict[str, Any] | None = None) -> Family:
        """A new model of this family for ``task``: the family itself, or for a multilabel task
        it cannot do natively, one binary model per label."""
        if task.kind == "multilabel" and "multilabel" not in cls.tasks and "binary" in cls.tasks:
            from takeoff.models.onevsrest import OneVsRest

            return OneVsRest(cls, task, params)
        return cls(task, params)

    @classmethod
    def restore(cls, directory: Path, task: Task, params: dict[str, Any]) -> Family:
        """Read a model written by ``save`` of :meth:`create`'s result."""
        if task.kind == "multilabel" and "multilabel" not in cls.tasks and "binary" in cls.tasks:
            from takeoff.models.onevsrest import OneVsRest

            return OneVsRest.load_for(cls, Path(directory), task, params)
        return cls.load(Path(directory), task, params)

    @abstractmethod
    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        """Fit on ``train``; early-stop on ``valid`` when given. Return before ``ctx.deadline``.

        With ``valid=None`` (a refit on all the data) the family trains for the number of
        iterations its params fix (see :meth:`refit_params`).
        """

    @abstractmethod
    def predict(self, X: Features) -> np.ndarray:
        """Probabilities (n, n_classes) for classification, values (n,) for regression."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the fitted model into ``directory`` (JSON + safetensors or a native text format)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> Family:
        """Read a model written by :meth:`save`. Never executes code from the directory."""

    @classmethod
    def unavailable(cls, params: dict[str, Any] | None = None) -> str | None:
        """Why this family cannot train on this machine (a missing package or pretrained
        weights), or None. ``auto`` skips an unavailable family with this as the warning."""
        return None

    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        """Params for refitting on train+valid without a validation split, or None if the
        family should not be refitted. ``n_rows_ratio`` is full rows / train rows."""
        return None

    def feature_importance(self, X: Features) -> np.ndarray | None:
        """Importance per feature column of ``X`` (numeric then categorical), if cheap to get."""
        return None

    def prune(self, amount: float, structured: bool, X: Features, deadline: float, seed: int) -> tuple[Family, dict]:
        """A pruned copy of this fitted family and a JSON-ready info dict ({"member": name, ...}).

        Raises:
            ConfigError: the family cannot be pruned (this default).
        """
        from takeoff.errors import ConfigError

        raise ConfigError(f"model family '{self.name}' cannot be pruned. Fix: prune a bundle of a family that "
                          "declares pruning (e.g. lightgbm, mlp, text-finetune).")

    def attribution_module(self) -> Any:
        """A float64 torch module for Integrated Gradients (``embed``, ``baseline``, ``forward``).

        Raises:
            ConfigError: the family has no gradients to explain (this default).
        """
        from takeoff.errors import ConfigError

        raise ConfigError(f"model family '{self.name}' is not explained by Integrated Gradients (e.g. mlp is).")

    def to_onnx(self, sample: Features) -> onnx.ModelProto:
        """This fitted model as an ONNX graph (``takeoff compress --onnx``).

        The graph's inputs are those of the features it reads, each declared only when used:
        ``numeric`` float32 [N, d_num] (the whole numeric block, hashed text included),
        ``categorical`` int64 [N, d_cat], and for families that read text themselves, per text
        column ``text.<column>.input_ids`` and ``text.<column>.attention_mask`` int64 [N, L]
        (such families also implement ``onnx_assets(directory) -> {column: {"tokenizer": file,
        "max_length": L}}``). Its one output, ``outputs`` float32, is what :meth:`predict`
        returns: probabilities [N, n_classes] or values [N].

        Args:
            sample: a few rows of features, for tracing and shapes.

        Raises:
            ConfigError: the family cannot be exported (this default).
        """
        from takeoff.errors import ConfigError

        raise ConfigError(
            f"model family '{self.name}' cannot be exported to ONNX; families that can: {', '.join(ONNX_FAMILIES)}. "
            "Fix: train with one of those (e.g. --family lightgbm), or keep serving the bundle as it is."
        )
