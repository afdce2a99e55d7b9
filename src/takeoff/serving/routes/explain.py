"""``POST /v1/explain`` (the default model) and ``POST /v1/models/{name}/explain``; the work is
in :mod:`takeoff.serving.explain`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from takeoff.serving.body import read_body, require_json
from takeoff.serving.errors import ApiError
from takeoff.serving.explain import MAX_TOP, ExplainRequest, ExplainResponse, explain_body
from takeoff.serving.responses import ERRORS
from takeoff.serving.routes.context import RouteContext


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    default = ctx.defaults["predict"]

    async def explain_default(request: Request) -> Response:
        if default is None:
            raise ctx.no_default("explain", "predict")
        return await _explain(request, ctx.entries[default], ctx)

    async def explain_named(request: Request, name: str = ctx.model_name) -> Response:
        return await _explain(request, ctx.entry_for(name), ctx)

    doc = ('`{"record": {...}, "top": 5}`: the prediction for one record and the input columns that drive it most, '
           "in the probability of the explained class (or the predicted value). The record is validated as for predict.")
    common = dict(methods=["POST"], tags=["explain"], description=doc, responses={200: {"model": ExplainResponse}, **ERRORS})
    record = {"$ref": f"#/components/schemas/{ctx.entries[default].schema.record_ref}"} if default else {"type": "object"}
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


async def _explain(request: Request, entry, ctx: RouteContext) -> Response:
    if getattr(entry, "recommender", False) or getattr(entry, "kind", "predict") != "predict":
        what = ("a recommender" if getattr(entry, "recommender", False) else
                "a generative model" if getattr(entry, "kind", "") in ("generate", "answer") else "a search index")
        raise ApiError(409, f"model '{entry.name}' is {what}, which has no per-column predictions to explain; only "
                       "models that predict a target answer explain", code="wrong_task")
    runtime = getattr(entry.model, "runtime", "native")
    if runtime != "native":
        raise ApiError(409, f"model '{entry.name}' predicts through an exported {runtime} graph; explanations need "
                       "the bundle it was exported from (serve that one to explain)", code="wrong_task")
    require_json(request)

    async def work() -> Response:
        body = await read_body(request, ctx.settings.max_body_bytes)
        return await asyncio.to_thread(explain_body, entry, body, ctx.settings.strict)  # not event-loop work

    return await ctx.within_deadline(work(), "explanation", "raise --timeout", request)
