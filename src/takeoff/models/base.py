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
pydantic model; each field declared once with type, range, default and description); the
registry finds it (:mod:`takeoff.registry`). It declares what it can do as class attributes
(``exports_onnx``, ``prunable``, ``explains_trees``...) and the methods that go with them;
compression, explain and serving ask those declarations, never the family's name. Heavy
libraries are imported inside methods so that discovering the families stays cheap.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from takeoff.data.schema import Task
from takeoff.errors import ConfigError
from takeoff.features.block import Features
from takeoff.training.context import FitContext

if TYPE_CHECKING:
    import onnx
    import torch


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
    # position in what ``auto`` tries (lowest first): on tables without images for a family
    # that does not read images, on image tables for one that does; None: only by name
    auto_order: ClassVar[int | None] = None
    # small params the contract (:func:`takeoff.testing.check_family`) trains with, so it
    # runs in seconds; keys the family's Params does not have are left out
    fast_params: ClassVar[dict[str, Any]] = {}
    # the configurations ``auto`` tries, best-first: each is a dict of params that override the
    # user's (``{}``: the params as configured). Portfolio entry i of every family is tried before
    # entry i + 1 of any, so a tight budget still gets each family's first choice.
    portfolio: ClassVar[tuple[dict[str, Any], ...]] = ({},)
    # what ``takeoff tune`` searches: param name -> {"low": a, "high": b} (int or float as the
    # Params field is; "log": True samples on a log scale) or {"choices": [...]}; every name a
    # field of ``Params``, every value within the field's bounds. Empty: the family is not tuned.
    search_space: ClassVar[dict[str, dict[str, Any]]] = {}
    # ``auto`` may fit it once per cross-validation fold (False for families whose one fit takes
    # most of a CPU budget: with one of those among the candidates, ``auto`` uses one holdout)
    cross_validates: ClassVar[bool] = True

    # Capabilities: what compression, explain and serving may ask of a fitted model.
    # ``to_onnx(sample)`` builds a graph (``takeoff compress --onnx``)
    exports_onnx: ClassVar[bool] = False
    # int8 quantization of its ONNX graph pays off (it holds network weight matrices)
    quantizes_int8: ClassVar[bool] = False
    # ``prune(...)`` gives a smaller copy (``takeoff compress --prune``)
    prunable: ClassVar[bool] = False
    # ``attribution_module()`` gives a module for Integrated Gradients
    explains_gradients: ClassVar[bool] = False
    # ``tree_contributions(X)`` gives TreeSHAP contributions
    explains_trees: ClassVar[bool] = False
    # the server's micro-batcher pays off (False where the cost per row is tiny)
    serves_in_batches: ClassVar[bool] = True
    # trains with differential privacy (DP-SGD) when ``ctx.dp`` asks for it
    trains_private: ClassVar[bool] = False

    def __init__(self, task: Task, params: Params | dict[str, Any] | None = None):
        if task.kind not in self.tasks:
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
        """Read a model written by ``save`` of :meth:`create`'s result.

        Raises:
            BundleError: ``params`` (from the bundle's manifest) do not fit this family's
                ``Params``, or the family does not do ``task``.
        """
        from pydantic import ValidationError

        from takeoff.bundle_manifest import explain
        from takeoff.errors import BundleError

        try:
            cls.Params(**params)
        except ValidationError as error:
            raise BundleError(str(directory), f"the params of its model family '{cls.name}' are malformed: {explain(error)}",
                              "re-copy the bundle from its source, or re-train") from None
        if not cls.supports(task.kind):
            raise BundleError(str(directory), f"model family '{cls.name}' does not do task '{task.kind}' (it does: "
                              f"{', '.join(cls.tasks)})", "re-copy the bundle from its source, or re-train")
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

    @classmethod
    def auto_skip(cls, rows: int, seconds: float, params: dict[str, Any] | None = None) -> str | None:
        """Why ``auto`` should not try this family on a table of ``rows`` training rows with
        ``seconds`` left (e.g. one epoch would not fit), or None to try it. A family named with
        ``--family`` is trained regardless."""
        return None

    @classmethod
    def warm_up(cls) -> None:
        """Import what :meth:`fit` needs, before the clock of a first fit starts (a fit with a
        few seconds should not spend them importing a library)."""

    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        """Params for refitting on train+valid without a validation split, or None if the
        family should not be refitted. ``n_rows_ratio`` is full rows / train rows."""
        return None

    def feature_importance(self, X: Features) -> np.ndarray | None:
        """Importance per feature column of ``X`` (numeric then categorical), if cheap to get."""
        return None

    def to_onnx(self, sample: Features) -> onnx.ModelProto:
        """This fitted model as an ONNX graph (``takeoff compress --onnx``), for a family that
        declares ``exports_onnx``.

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
        raise self._cannot("be exported to ONNX", "exports_onnx",
                           "train with one of those (e.g. --family lightgbm), or keep serving the bundle as it is.")

    def prune(self, amount: float, structured: bool, X: Features, deadline: float, seed: int) -> tuple[Family, dict[str, Any]]:
        """A pruned copy of this fitted model, for a family that declares ``prunable``.

        Args:
            amount: share of the weights (networks) or of the trailing trees to remove, in (0, 1).
            structured: remove whole units (which shrinks the matrices) instead of single weights.
            X: the fitting rows' features, for a recovery fine-tune.
            deadline: ``time.monotonic()`` value the fine-tune stops at.
            seed: seed of the fine-tune.

        Returns:
            ``(pruned copy, info)``: info is JSON-ready, ``{"member": name, ...}`` (what was removed).

        Raises:
            ConfigError: the family cannot be pruned (this default).
        """
        raise self._cannot("be pruned", "prunable", "distill it into one of those first (--distill lightgbm).")

    def attribution_module(self) -> torch.nn.Module:
        """A float64 torch module for Integrated Gradients, for a family that declares
        ``explains_gradients``: ``.embed(numeric, codes)`` maps a batch to the input ``z`` the
        attributions are taken on, ``.baseline(n_numeric)`` is the baseline ``z``, and
        ``forward(z)`` returns the explained outputs (probabilities or values).

        Raises:
            ConfigError: the family has no such module (this default).
        """
        raise self._cannot("be explained by Integrated Gradients", "explains_gradients",
                           "explain it with permutation importance (always computed).")

    def tree_contributions(self, X: Features) -> np.ndarray:
        """TreeSHAP contributions to the raw score, for a family that declares ``explains_trees``.

        Returns:
            float64 (n, k, d + 1): k is 1 for binary and regression, the class count for
            multiclass; d is the feature columns of ``X``, the last entry the expected value.

        Raises:
            ConfigError: the family is not made of trees (this default).
        """
        raise self._cannot("be explained by TreeSHAP", "explains_trees",
                           "explain it with permutation importance (always computed).")

    def _cannot(self, what: str, capability: str, fix: str) -> ConfigError:
        able = ", ".join(capable(capability)) or "none installed"
        return ConfigError(f"model family '{self.name}' cannot {what}; families that can: {able}. Fix: {fix}")


def listing_order(cls: type) -> tuple:
    """Sort key of families (and recommenders) in listings: families that read tables and
    text before those that read images; in each, the ones ``auto`` tries in its order, then
    the others by name."""
    order = getattr(cls, "auto_order", None)
    return (bool(getattr(cls, "needs_images", False)), order is None, order or 0, cls.name)


def declared(cls: type) -> bool:
    """Whether ``cls`` is a family (or recommender) one can ask for by name: concrete, with
    its own ``name``."""
    return isinstance(cls.__dict__.get("name"), str) and not inspect.isabstract(cls)


def capable(capability: str) -> list[str]:
    """Names of the families imported so far that declare ``capability`` (e.g. "exports_onnx"),
    in listing order (for messages)."""
    found = {c.name: c for c in _subclasses(Family) if declared(c) and getattr(c, capability, False)}
    return [c.name for c in sorted(found.values(), key=listing_order)]


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)
