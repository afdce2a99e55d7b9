"""Multilabel with any binary family: one model per label (one-vs-rest).

A family that cannot do a multilabel task natively (LightGBM, the TF-IDF and frozen-encoder
linear models) still handles one through :meth:`Family.create`: for each label it trains a
binary model ("has this label" against "has not") on the same features, each within its share
of the time budget, and ``predict`` puts the per-label probabilities side by side. The models
are saved in one folder per label (``label-000/``, ...) next to ``onevsrest.json``, each in its
family's own format.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from takeoff.data.schema import Task
from takeoff.errors import BundleError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport, Params
from takeoff.training.context import FitContext

SPEC_FILE = "onevsrest.json"
FORMAT = "takeoff.onevsrest"


class OneVsRest(Family):
    """One binary model of ``family`` per label of a multilabel task."""

    tasks = ("multilabel",)

    def __init__(self, family: type[Family], task: Task, params: Params | dict[str, Any] | None = None):
        self.family = family
        self.name = family.name
        self.needs_text, self.needs_images = family.needs_text, family.needs_images
        params = params.model_dump() if isinstance(params, Params) else dict(params or {})
        # a refit passes the per-label overrides found by the validated fit
        self._label_params: list[dict[str, Any]] | None = params.pop("labels", None)
        self.Params = family.Params
        super().__init__(task, family.Params(**params))
        self.members: list[Family] = []

    def _binary(self) -> Task:
        return Task("binary", self.task.target, [0, 1])

    def _params_for(self, k: int) -> dict[str, Any]:
        base = self.params.model_dump()
        return {**base, **(self._label_params[k] if self._label_params else {})}

    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        started = time.monotonic()
        k_labels = len(self.task.classes)
        self.members, stops = [], []
        for k in range(k_labels):
            share = 1.0 / (k_labels - k)  # the time a label leaves over goes to the next ones
            checkpoints = None if ctx.checkpoint_dir is None else Path(ctx.checkpoint_dir) / f"label-{k:03d}"
            member = self.family(self._binary(), self._params_for(k))
            member.fit(_label(train, k), None if valid is None else _label(valid, k), ctx.with_share(share, checkpoints))
            self.members.append(member)
            stops.append(member.report.stopped_by)
        best = [m.report.best_iteration for m in self.members if m.report.best_iteration]
        self.report = FitReport(
            best_iteration=max(best) if best else None,  # the longest label's (each keeps its own)
            history=_mean_history([m.report.history for m in self.members]),
            stopped_by="time_budget" if "time_budget" in stops else stops[-1],
            seconds=time.monotonic() - started,
        )
        return self.report

    def predict(self, X: Features) -> np.ndarray:
        if not self.members:
            from takeoff.errors import DataError

            raise DataError(f"model family '{self.name}' has not been fitted or loaded; call fit() or load() first")
        return np.column_stack([np.asarray(m.predict(X))[:, 1] for m in self.members]).astype(np.float64)

    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        per_label = [m.refit_params(n_rows_ratio) for m in self.members]
        if any(p is None for p in per_label):
            return None
        return {"labels": per_label}

    def feature_importance(self, X: Features) -> np.ndarray | None:
        parts = [m.feature_importance(X) for m in self.members]
        if any(p is None for p in parts):
            return None
        return np.mean(parts, axis=0)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        for k, member in enumerate(self.members):
            sub = directory / f"label-{k:03d}"
            sub.mkdir(parents=True, exist_ok=True)
            member.save(sub)
        spec = {"format": FORMAT, "version": 1, "family": self.name, "labels": [str(c) for c in self.task.classes],
                "label_params": [m.params.model_dump(mode="json") for m in self.members]}
        (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2))

    @classmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> Family:
        raise BundleError(str(directory), "load a one-vs-rest model with Family.restore (it needs its family)")

    @classmethod
    def load_for(cls, family: type[Family], directory: Path, task: Task, params: dict[str, Any]) -> OneVsRest:
        path = Path(directory) / SPEC_FILE
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise BundleError(str(path), f"cannot read the one-vs-rest model ({error})") from error
        if spec.get("format") != FORMAT or spec.get("labels") != [str(c) for c in task.classes]:
            raise BundleError(str(path), f"the per-label models are for labels {spec.get('labels')}, "
                                         f"the task has {[str(c) for c in task.classes]}")
        model = cls(family, task, params)
        model.members = [family.load(Path(directory) / f"label-{k:03d}", model._binary(), p)
                         for k, p in enumerate(spec["label_params"])]
        return model


def _label(data: Dataset, k: int) -> Dataset:
    return Dataset(data.X, np.asarray(data.y)[:, k].astype(np.int64), data.weight)


def _mean_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Learning curves averaged over the labels, as long as the shortest label's."""
    keys = set.intersection(*(set(h) for h in histories)) if histories else set()
    out = {}
    for key in sorted(keys):
        n = min(len(h[key]) for h in histories)
        if n:
            out[key] = np.mean([h[key][:n] for h in histories], axis=0).tolist()
    return out
