"""Explaining one record over HTTP: ``POST /v1/explain`` and ``POST /v1/models/{name}/explain``.

The body is ``{"record": {...}, "top": 5}``. The record is validated as a predict record (the
same 422 answers, naming the fields); the answer holds the prediction, the explained output
and the ``top`` attributions by absolute value, per input column (see docs/explain.md).
:mod:`takeoff.explain` (and Captum, for an MLP) is imported on the first explain request, so a
server that never explains never loads them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI, Request
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


def add_routes(app: FastAPI, entries: dict[str, Any], default: str | None, *, entry_for, no_default, model_name,
               settings, errors: dict[int, Any], read_body) -> None:
    """``POST /v1/explain`` (the default model) and ``POST /v1/models/{name}/explain``.

    ``entry_for(name)`` finds a served model (404 otherwise), ``no_default(route, kind)`` is the
    error without a default model, ``read_body(request, limit)`` reads a body under the limit.
    """

    async def explain_default(request: Request) -> Response:
        if default is None:
            raise no_default("explain", "predict")
        return await _explain(request, entries[default], settings, read_body)

    async def explain_named(request: Request, name: str = model_name) -> Response:
        return await _explain(request, entry_for(name), settings, read_body)

    doc = ('`{"record": {...}, "top": 5}`: the prediction for one record and the input columns that drive it most, '
           "in the probability of the explained class (or the predicted value). The record is validated as for predict.")
    common = dict(methods=["POST"], tags=["explain"], description=doc, responses={200: {"model": ExplainResponse}, **errors})
    record = {"$ref": f"#/components/schemas/{entries[default].schema.record_ref}"} if default else {"type": "object"}
    app.add_api_route("/v1/explain", explain_default, operation_id="explain_default", openapi_extra=_body(record),
                      summary=f"Explain a prediction of the default model ({default or 'none set'})", **common)
    app.add_api_route("/v1/models/{name}/explain", explain_named, operation_id="explain_by_name",
                      openapi_extra=_body({"type": "object", "additionalProperties": True}),
                      summary="Explain a prediction of a model, by name", **common)


def _body(record: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "required": ["record"], "additionalProperties": False, "properties": {
        "record": {**record, "description": ExplainRequest.model_fields["record"].description},
        "top": {"type": "integer", "minimum": 1, "maximum": MAX_TOP, "default": 5}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _explain(request: Request, entry, settings, read_body) -> Response:
    if getattr(entry, "recommender", False) or getattr(entry, "kind", "predict") != "predict":
        what = "a recommender" if getattr(entry, "recommender", False) else "a search index"
        raise ApiError(409, f"model '{entry.name}' is {what}, which has no per-column predictions to explain; only "
                       "models that predict a target answer explain", code="wrong_task")
    runtime = getattr(entry.model, "runtime", "native")
    if runtime != "native":
        raise ApiError(409, f"model '{entry.name}' predicts through an exported {runtime} graph; explanations need "
                       "the bundle it was exported from (serve that one to explain)", code="wrong_task")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        raise ApiError(415, f"content type '{media or 'none'}' is not accepted; send application/json")

    async def work() -> Response:
        body = await read_body(request, settings.max_body_bytes)
        return await asyncio.to_thread(explain_body, entry, body, settings.strict)  # not event-loop work

    try:
        return await asyncio.wait_for(work(), timeout=settings.timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, f"the explanation took longer than {settings.timeout_s:g}s. Fix: raise --timeout",
                       code="timeout") from None


def explain_body(entry, body: bytes, strict: bool = False) -> Response:
    """Answer one explain request body for a served model (raises ApiError)."""
    from takeoff.explain import explain

    request = parse(ExplainRequest, body)
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
