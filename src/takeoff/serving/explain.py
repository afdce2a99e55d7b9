"""Explaining one record over HTTP: the request and response of ``POST /v1/explain`` and
``POST /v1/models/{name}/explain`` (routes in :mod:`takeoff.serving.routes.explain`), and the answer.

The body is ``{"record": {...}, "top": 5}``. The record is validated as a predict record (the
same 422 answers, naming the fields); the answer holds the prediction, the explained output
and the ``top`` attributions by absolute value, per input column (see docs/explain.md).
:mod:`takeoff.explain` (and Captum, for an MLP) is imported on the first explain request, so a
server that never explains never loads them.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from takeoff.errors import DataError
from takeoff.serving.errors import ApiError, from_data_error
from takeoff.serving.recommend import parse

MAX_TOP = 100
WHERE = "the request"


class ExplainRequest(BaseModel):
    """One record to explain, and how many attributions to return."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"record": {"age": 42, "job": "fixed"}, "top": 5}]})

    record: dict[str, Any] = Field(
        description="One input row, as sent to predict (every input field; null when unknown).")
    top: int = Field(
        5, strict=True, ge=1, le=MAX_TOP, description=f"Attributions returned, largest first (1 to {MAX_TOP}).")


class Attribution(BaseModel):
    column: str
    value: Any = Field(description="The record's value of the column.")
    attribution: float | None = Field(description="Its share of the explained output (positive raises it).")


class Token(BaseModel):
    token: str
    attribution: float | None = Field(description="Output lost without this word; null past the word cap.")


class ExplainResponse(BaseModel):
    model: str
    version: str = Field(description="Content hash of the bundle's manifest.")
    task: str
    prediction: Any = Field(description="The predicted label or value, as predict answers.")
    explained: str = Field(description="What the attributions are in, e.g. \"probability of 'yes'\".")
    output: float | None = Field(description="The explained output: the class probability or the value.")
    method: list[str] = Field(
        description="The local method of each blend member: treeshap, integrated_gradients, occlusion.")
    attributions: list[Attribution] = Field(description="The top attributions by absolute value.")
    tokens: dict[str, list[Token]] = Field(description="Per text column, each word's attribution (word occlusion).")
    warnings: list[str]


def explain_body(entry, body: bytes, strict: bool = False) -> Response:
    """Answer one explain request body for a served model (raises ApiError)."""
    from takeoff.explain import explain

    request = parse(ExplainRequest, body, entry.settings.max_json_depth)
    if "records" in request.record and "records" not in entry.schema.kinds:
        raise ApiError(422, "'record' is one input row; explain one record per request",
                       fields=[{"field": "record", "problem": "holds 'records'"}])
    parsed = entry.schema.parse_json(json.dumps(request.record).encode(), 1)
    try:
        explanation = explain(entry.model, parsed.rows, rows=1, global_importance=False, where=WHERE, strict=strict)
    except DataError as exc:
        raise from_data_error(exc, True, entry.schema.kinds) from None
    local = explanation.local[0]
    answer = {
        "model": entry.name, "version": entry.model.version, "task": entry.model.task.kind,
        "prediction": _as_answered(entry.model.task, local["prediction"]), "explained": explanation.explained, "output": local["output"],
        "method": [m["method"] for m in explanation.members],
        "attributions": local["attributions"][: request.top],
        "tokens": local["tokens"],
        "warnings": parsed.warnings + explanation.notes,
    }
    entry.metrics.rows.labels(entry.name).inc(1)
    return Response(json.dumps(answer, allow_nan=False), media_type="application/json")


def _as_answered(task, prediction: Any) -> Any:
    """The prediction as ``/v1/predict`` gives it: a multilabel label set as a list."""
    if task.is_multilabel and isinstance(prediction, str):
        from takeoff.data.schema import LABEL_SEP

        return prediction.split(LABEL_SEP) if prediction else []
    return prediction
