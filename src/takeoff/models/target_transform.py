"""A regression model fitted on ``log(1 + y)``: for positive, skewed targets (prices, counts,
durations) a squared error on the log scale weighs relative errors alike, which the raw scale
does not. Predictions come back on the target's scale (``exp(z) - 1``).

The wrapped family is any regression family; the bundle records the transform in the member's
entry (``"target_transform": "log1p"``) and stores the inner model as it would store itself,
so nothing here is a new file format. Capabilities follow the inner model where the transform
can follow them too: the ONNX graph gets the ``exp(z) - 1`` nodes appended, a pruned copy is
wrapped again, Integrated Gradients explains the value on the target's scale; TreeSHAP
contributions add up on the log scale only, so they are not offered.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from takeoff.errors import DataError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport
from takeoff.training.context import FitContext

if TYPE_CHECKING:
    import onnx

TRANSFORMS = ("log1p",)


def skewed_positive(y: np.ndarray) -> bool:
    """Whether a regression target is worth a log transform: no value below 0, and a
    right skew (sample skewness above 1, or a 99th percentile over 10 times the median)."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < 10 or y.min() < 0:
        return False
    sd = y.std()
    if sd == 0:
        return False
    skew = float(np.mean(((y - y.mean()) / sd) ** 3))
    median = float(np.median(y))
    return skew > 1.0 or (median > 0 and float(np.quantile(y, 0.99)) > 10 * median)


class LogTarget(Family):
    """``inner`` fitted on ``log(1 + y)``; predicts ``exp(inner) - 1``. Not a family one names:
    ``auto`` makes it (or ``target_transform: log``), and the bundle loader rebuilds it."""

    explains_trees = False  # contributions would add up to log(1 + y), not to the prediction

    def __init__(self, inner: Family):  # no super().__init__: the inner family holds task and params
        if inner.task.kind != "regression":
            raise DataError(f"a log target transform needs a regression task; this one is {inner.task.kind}.")
        self.inner = inner
        self.name = inner.name
        self.task = inner.task
        self.params = inner.params
        # what compression and explain may ask follows the inner model
        self.exports_onnx = inner.exports_onnx
        self.quantizes_int8 = inner.quantizes_int8
        self.prunable = inner.prunable
        self.explains_gradients = inner.explains_gradients
        self.serves_in_batches = inner.serves_in_batches
        self.needs_text = inner.needs_text
        self.needs_images = inner.needs_images

    transform = "log1p"

    @property
    def report(self) -> FitReport:
        return self.inner.report

    @report.setter
    def report(self, value: FitReport) -> None:
        self.inner.report = value

    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        return self.inner.fit(_logged(train), _logged(valid) if valid is not None else None, ctx)

    def predict(self, X: Features) -> np.ndarray:
        z = np.asarray(self.inner.predict(X), dtype=np.float64)
        return np.expm1(np.clip(z, None, 700.0))  # exp overflows past ~709

    def save(self, directory: Path) -> None:
        self.inner.save(directory)

    @classmethod
    def load(cls, directory: Path, task, params: dict[str, Any]) -> Family:
        raise NotImplementedError("rebuilt by wrapping the inner family's restore (see Model.from_bundle)")

    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        return self.inner.refit_params(n_rows_ratio)

    def feature_importance(self, X: Features) -> np.ndarray | None:
        return self.inner.feature_importance(X)

    def to_onnx(self, sample: Features) -> onnx.ModelProto:
        from onnx import TensorProto, helper

        model = self.inner.to_onnx(sample)
        graph = model.graph  # its declared output "outputs" keeps its name, shape and type
        for node in graph.node:
            node.output[:] = ["outputs.log" if o == "outputs" else o for o in node.output]
        graph.initializer.append(helper.make_tensor("outputs.one", TensorProto.FLOAT, [], [1.0]))
        graph.node.extend([helper.make_node("Exp", ["outputs.log"], ["outputs.exp"]),
                           helper.make_node("Sub", ["outputs.exp", "outputs.one"], ["outputs"])])
        return model

    def prune(self, amount: float, structured: bool, X: Features, deadline: float, seed: int) -> tuple[Family, dict[str, Any]]:
        pruned, info = self.inner.prune(amount, structured, X, deadline, seed)
        return LogTarget(pruned), info

    def attribution_module(self):
        import torch

        inner = self.inner.attribution_module()

        class OnTargetScale(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = inner

            def embed(self, numeric, codes):
                return self.inner.embed(numeric, codes)

            def baseline(self, n_numeric: int):
                return self.inner.baseline(n_numeric)

            def forward(self, z):
                return torch.expm1(self.inner(z))

        return OnTargetScale()

    def __getattr__(self, item: str):
        # family-specific helpers (e.g. lightgbm's rounds) are the inner model's
        if item == "inner":
            raise AttributeError(item)
        return getattr(self.inner, item)


def wrap(family: Family, transform: str | None) -> Family:
    """``family`` under ``transform`` ("log1p") or as it is (None)."""
    if transform is None:
        return family
    if transform not in TRANSFORMS:
        raise DataError(f"unknown target transform {transform!r}; known: {', '.join(TRANSFORMS)}. Fix: upgrade takeoff.")
    return LogTarget(family)


def _logged(data: Dataset) -> Dataset:
    y = np.asarray(data.y, dtype=np.float64)
    if (y < 0).any():
        raise DataError(f"a log target transform needs targets of 0 or more; found {int((y < 0).sum())} below 0 "
                        f"(e.g. {float(y[y < 0][0]):g}). Fix: set target_transform: none.")
    return Dataset(data.X, np.log1p(y), data.weight)
