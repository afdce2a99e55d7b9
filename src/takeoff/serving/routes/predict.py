"""``POST /v1/predict`` (the default model) and ``POST /v1/models/{name}/predict``: one record,
``{"records": [...]}``, a CSV body or a multipart upload in; the predictions out."""

from __future__ import annotations

import asyncio
import re

from fastapi import FastAPI, Request
from starlette.responses import Response

from takeoff.serving.body import media_type, read_body
from takeoff.serving.entries import PredictEntry, kind_of
from takeoff.serving.errors import ApiError
from takeoff.serving.requests import Parsed, schema_name
from takeoff.serving.responses import ERRORS, PredictResponse
from takeoff.serving.routes.context import RouteContext, wrong_task
from takeoff.serving.uploads import read_upload

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
INLINE_BYTES = 16_384  # JSON bodies up to this size are answered on the event loop
DOC = "One record, `{\"records\": [...]}`, or a CSV file (multipart field `file`). "


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    default = ctx.defaults["predict"]

    def predict_route(name: str | None):
        async def predict(request: Request) -> Response:
            if name is None:
                raise ctx.no_default("predict", "predict")
            return await _predict(request, ctx.entry_for(name), ctx)
        return predict

    tags = ["predict"]
    app.add_api_route(
        "/v1/predict", predict_route(default), methods=["POST"], tags=tags, operation_id="predict_default",
        summary=f"Predict with the default model ({default})" if default else "Predict with the default model (none set)",
        description=DOC, responses={200: {"model": PredictResponse}, **ERRORS},
        openapi_extra=ctx.entries[default].schema.request_body() if default else None,
    )
    for name, entry in ctx.entries.items():
        if SAFE_NAME.fullmatch(name) and kind_of(entry) == "predict":  # documented with its own input schema
            app.add_api_route(
                f"/v1/models/{name}/predict", predict_route(name), methods=["POST"], tags=tags,
                operation_id=f"predict_{schema_name(name)}", summary=f"Predict with model '{name}'",
                description=DOC, responses={200: {"model": PredictResponse}, **ERRORS},
                openapi_extra=entry.schema.request_body(),
            )

    @app.post("/v1/models/{name}/predict", include_in_schema=False)
    async def predict_any(name: str, request: Request) -> Response:
        return await _predict(request, ctx.entry_for(name), ctx)


async def _predict(request: Request, entry: PredictEntry, ctx: RouteContext) -> Response:
    if kind_of(entry) != "predict":
        raise wrong_task(entry)
    settings = ctx.settings
    media = media_type(request)
    if media == "application/json" or media.endswith("+json"):
        kind = "json"
    elif media in ("multipart/form-data", "text/csv"):
        kind = "csv"
    else:
        raise ApiError(415, f"content type '{media or 'none'}' is not accepted; send application/json "
                       "(a record, or {\"records\": [...]}), multipart/form-data with a CSV file in field 'file', or text/csv")

    def parse(body: bytes) -> Parsed:
        if kind == "json":
            return entry.schema.parse_json(body, settings.max_records)
        return entry.schema.parse_csv(body, settings.max_records)

    def direct(body: bytes) -> Response:
        return entry.predict_direct(parse(body))

    async def work() -> Response:
        nonlocal kind
        body = await read_body(request, settings.max_body_bytes)
        if media == "multipart/form-data":
            body, is_record = await read_upload(request, body, entry.schema)
            kind = "json" if is_record else kind
        # A few JSON records take well under a millisecond: a hop to a worker thread would cost
        # more than it frees the event loop. Bigger bodies are worked on in a thread.
        inline = kind == "json" and len(body) <= INLINE_BYTES

        async def run(fn, *args):
            return fn(*args) if inline else await asyncio.to_thread(fn, *args)

        if entry.batcher is None:
            return await run(direct, body)  # one hop for the whole request
        parsed = await run(parse, body)
        if len(parsed) > settings.batch_max_size:
            return await run(entry.predict_direct, parsed)
        features, notes = await run(entry.features, parsed)
        outputs = await entry.batcher.predict(features)
        return await run(entry.respond, outputs, parsed.warnings + notes)

    return await ctx.within_deadline(work(), "prediction", "send fewer records per request, or raise --timeout", request)
