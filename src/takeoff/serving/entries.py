"""The served models: one entry per model, of the class its task calls for.

An entry holds the model, parses its requests and answers them. A table model is a
:class:`PredictEntry`; recommenders, search indexes and generative models have theirs in
:mod:`takeoff.serving.recommend`, :mod:`takeoff.serving.search` and :mod:`takeoff.serving.generation`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from starlette.responses import Response

from takeoff.data.schema import LABEL_SEP
from takeoff import registry
from takeoff.errors import DataError, UnknownNameError
from takeoff.features.block import Features
from takeoff.serving.batching import MicroBatcher
from takeoff.serving.errors import from_data_error
from takeoff.serving.generation import GENERATIVE, GenerateEntry
from takeoff.serving.jsonable import clean, finite, native
from takeoff.serving.limits import CHUNK_ROWS, check_deadline
from takeoff.serving.metrics import Metrics
from takeoff.serving.recommend import RecommendEntry
from takeoff.serving.requests import Parsed, RequestSchema
from takeoff.serving.search import SearchEntry
from takeoff.serving.settings import ServeSettings

WHERE = "the request"


class PredictEntry:
    """A served model: its request schema and how its rows are predicted."""

    recommender = False
    kind = "predict"

    def __init__(self, name: str, model, settings: ServeSettings, metrics: Metrics):
        self.name, self.model, self.settings, self.metrics = name, model, settings, metrics
        self.schema = RequestSchema(name, model, settings)
        # micro-batching pays where a member declares it does (networks); not for trees alone
        self.neural = any(_batches(m["family"]) for m in model.manifest["members"])
        self.batcher = None
        if self.neural:
            self.batcher = MicroBatcher(self._predict_parts, settings.batch_max_size, settings.batch_max_wait_ms / 1000,
                                        on_batch=metrics.batch_rows.labels(name).observe)
        self.drift = None  # the rolling drift window, when the bundle has a training profile
        if model.manifest.get("profile"):
            from takeoff.serving.drift import DriftWindow

            self.drift = DriftWindow(name, model.manifest["profile"], metrics.drift_psi)
            model.monitor = self.drift.observe

    def _predict_parts(self, parts: list[Features]) -> list[np.ndarray]:
        """Predict the features of several requests in one call; split the outputs back."""
        batch = type(parts[0]).concat(parts) if len(parts) > 1 else parts[0]  # Features, or RawInputs (ONNX bundles)
        outputs = self.model.predict_features(batch)
        return np.split(outputs, np.cumsum([len(p) for p in parts])[:-1])

    def features(self, parsed: Parsed) -> tuple[Features, list[str]]:
        """Validate one request's rows and make their features (before batching, so a bad
        request fails alone); return them with the notes of what was coerced."""
        try:
            features, notes = self.model.features(parsed.rows, where=WHERE, strict=self.settings.strict)
        except DataError as exc:
            raise from_data_error(exc, parsed.single, self.schema.kinds) from None
        return features, notes.messages()

    def predict_direct(self, parsed: Parsed) -> Response:
        outputs, notes = self.predict_rows(parsed)
        return self.respond(outputs, parsed.warnings + notes, parsed)

    def predict_rows(self, parsed: Parsed) -> tuple[np.ndarray, list[str]]:
        """The raw outputs of a request's rows and the notes of what was coerced. Past
        ``CHUNK_ROWS`` rows, in chunks with the request's deadline checked between them, so that
        work whose client was already answered 504 stops instead of running on."""
        if len(parsed) <= CHUNK_ROWS:
            features, notes = self.features(parsed)
            return self.model.predict_features(features), notes
        rows, conform_notes, outputs = parsed.rows, None, []
        try:
            for start in range(0, len(rows), CHUNK_ROWS):
                check_deadline()
                part = rows.iloc[start:start + CHUNK_ROWS] if isinstance(rows, pd.DataFrame) else rows[start:start + CHUNK_ROWS]
                features, conform_notes = self.model.features(part, where=WHERE, strict=self.settings.strict,
                                                              notes=conform_notes, row_offset=start)
                outputs.append(self.model.predict_features(features))
        except DataError as exc:
            raise from_data_error(exc, parsed.single, self.schema.kinds) from None
        check_deadline()
        return np.concatenate(outputs), conform_notes.messages()

    def respond(self, outputs: np.ndarray, warnings: list[str], parsed: Parsed | None = None) -> Response:
        """The predictions as JSON bytes (labels under the bundle's per-group thresholds when it
        has them, read from the request's sensitive columns)."""
        task = self.model.task
        decided = self.decide(outputs, parsed)
        if self.drift is not None:
            self.drift.observe_predictions(decided)
        labels = [native(v) for v in decided.tolist()]
        if task.is_classification or task.is_multilabel:
            keys = [str(c) for c in task.classes]
            if task.is_multilabel:  # the label set as a list: "a|b" -> ["a", "b"]
                labels = [label.split(LABEL_SEP) if label else [] for label in labels]
            predictions = [{"prediction": label, "probabilities": dict(zip(keys, map(finite, row)))}
                           for label, row in zip(labels, outputs.tolist())]
        else:
            predictions = [{"prediction": finite(v)} for v in labels]
        if not (task.is_classification or task.is_multilabel) and any(p["prediction"] is None for p in predictions):
            warnings = [*warnings, "some predictions are not finite numbers and are given as null"]
        self.metrics.rows.labels(self.name).inc(len(labels))
        body = {"model": self.name, "version": self.model.version, "task": task.kind,
                "predictions": predictions, "warnings": warnings}
        return Response(json.dumps(body, allow_nan=False), media_type="application/json")

    def decide(self, outputs: np.ndarray, parsed: Parsed | None = None) -> np.ndarray:
        """The labels of ``outputs``: the model's decision rule, or its per-group thresholds
        (``--mitigate threshold``) by the request's sensitive columns."""
        if getattr(self.model, "mitigation", None) is None:
            return self.model.decide(outputs)
        groups = parsed.sensitive if parsed is not None and parsed.sensitive is not None else pd.DataFrame(index=range(len(outputs)))
        try:
            return self.model.fair_decide(outputs, groups)
        except DataError as exc:
            raise from_data_error(exc, parsed.single if parsed is not None else False, self.schema.kinds) from None

    def summary(self, default: bool) -> dict[str, Any]:
        m = self.model
        return {"name": self.name, "task": m.task.kind, "target": m.task.target, "classes": clean(m.classes),
                "version": m.version, "created": m.manifest.get("created"), "default": default}

    def detail(self) -> dict[str, Any]:
        m = self.model
        return clean({
            "name": self.name, "version": m.version, "task": m.task.kind, "target": m.task.target,
            "classes": m.classes, "threshold": m.threshold, "created": m.manifest.get("created"),
            "format_version": m.manifest.get("format_version"), "takeoff_version": m.manifest.get("takeoff_version"),
            "metrics": m.metrics, "inputs": m.input_fields(),
            "members": [{"family": x["family"], "weight": x["weight"]} for x in m.manifest["members"]],
            "report_url": f"/v1/models/{self.name}/report" if "report.html" in m.attachments else None,
        })


def make_entry(name: str, model, settings: ServeSettings, metrics: Metrics):
    """The entry serving ``model``: a recommender, a search index, a generative model or a model
    that predicts rows."""
    kind = model.manifest.get("task", {}).get("kind")
    cls = {"recommend": RecommendEntry, "search": SearchEntry, **dict.fromkeys(GENERATIVE, GenerateEntry)}.get(kind, PredictEntry)
    return cls(name, model, settings, metrics)


def kind_of(entry) -> str:
    """"predict" (a tabular model), "recommend", "search", "generate" or "answer"."""
    return getattr(entry, "kind", "recommend" if entry.recommender else "predict")


def _batches(family: str) -> bool:
    """Whether a member of this family gains from micro-batching (its declaration). An ONNX
    bundle of a family this install does not have runs as a graph: batching pays there."""
    try:
        return registry.get(family).serves_in_batches
    except UnknownNameError:
        return True
