"""The Open Inference Protocol (KServe v2) routes, beside ``/v1``: what KServe, Seldon and
Triton clients speak. ``GET /v2``, ``GET /v2/health/live``, ``GET /v2/health/ready``,
``GET /v2/models/{name}[/versions/{version}]``, ``GET .../ready`` and ``POST .../infer``; the
tensors are read and written in :mod:`takeoff.serving.v2`. Errors are ``{"error": "..."}``
(:func:`takeoff.serving.errors.error_response` answers that shape under ``/v2``)."""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from starlette.responses import Response

from takeoff.serving import v2
from takeoff.serving.body import read_body
from takeoff.serving.entries import kind_of
from takeoff.serving.errors import ApiError
from takeoff.serving.routes.context import RouteContext, wrong_task
from takeoff.serving.routes.predict import INLINE_BYTES

VERSION = PathParam(description="The model's version (its content hash, as in the metadata's versions).")
ERRORS = {status: {"model": v2.V2Error} for status in (400, 401, 404, 409, 413, 504)}


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    tags = ["open inference protocol (v2)"]

    def entry_for(name: str, version: str | None = None):
        entry = ctx.entry_for(name)
        if kind_of(entry) != "predict":
            raise wrong_task(entry, "infer")
        if version is not None and version != entry.model.version:
            raise ApiError(404, f"model '{name}' has no version '{version}'; it serves version {entry.model.version}",
                           code="model_not_found")
        return entry

    @app.get("/v2", tags=tags, summary="Server metadata")
    async def server_metadata() -> dict:
        return v2.server_metadata()

    @app.get("/v2/health/live", tags=tags, summary="Liveness: the process answers")
    async def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready", tags=tags, summary="Readiness: the models are loaded (400 otherwise)",
             responses={400: {"model": v2.V2Error}})
    async def ready() -> Response:
        ok = bool(ctx.entries)
        return Response(json.dumps({"ready": ok}), status_code=200 if ok else 400, media_type="application/json")

    async def model_ready(name: str = ctx.model_name) -> dict:
        entry_for(name)
        return {"name": name, "ready": True}

    async def model_ready_version(name: str = ctx.model_name, version: str = VERSION) -> dict:
        entry_for(name, version)
        return {"name": name, "ready": True}

    async def model_metadata(name: str = ctx.model_name) -> dict:
        return v2.model_metadata(entry_for(name))

    async def model_metadata_version(name: str = ctx.model_name, version: str = VERSION) -> dict:
        return v2.model_metadata(entry_for(name, version))

    async def infer(request: Request, name: str = ctx.model_name) -> Response:
        return await _infer(request, entry_for(name), ctx)

    async def infer_version(request: Request, name: str = ctx.model_name, version: str = VERSION) -> Response:
        return await _infer(request, entry_for(name, version), ctx)

    doc = ("Rows as one tensor per input field (shape [N]), or as one [N, F] tensor in the order of the model's "
           "metadata inputs. Outputs: prediction [N], probabilities [N, C] and classes [C] (classification).")
    body = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/v2.InferenceRequest"}}}}}
    for prefix, suffix, ready_fn, metadata_fn, infer_fn in (
        ("/v2/models/{name}", "", model_ready, model_metadata, infer),
        ("/v2/models/{name}/versions/{version}", "_version", model_ready_version, model_metadata_version, infer_version),
    ):
        app.add_api_route(f"{prefix}/ready", ready_fn, methods=["GET"], tags=tags, operation_id=f"v2_model_ready{suffix}",
                          summary="Model readiness", responses=ERRORS)
        app.add_api_route(prefix, metadata_fn, methods=["GET"], tags=tags, operation_id=f"v2_model_metadata{suffix}",
                          summary="Model metadata: input and output tensors",
                          responses={200: {"model": v2.ModelMetadata}, **ERRORS})
        app.add_api_route(f"{prefix}/infer", infer_fn, methods=["POST"], tags=tags, operation_id=f"v2_infer{suffix}",
                          summary="Inference (Open Inference Protocol)", description=doc, openapi_extra=body,
                          responses={200: {"model": v2.InferenceResponse}, **ERRORS})


async def _infer(request: Request, entry, ctx: RouteContext) -> Response:
    if "inference-header-content-length" in request.headers:
        raise ApiError(400, "the binary tensor data extension is not supported; send the tensors as JSON")
    settings = ctx.settings

    async def work() -> Response:
        body = await read_body(request, settings.max_body_bytes)
        inline = len(body) <= INLINE_BYTES  # as /v1: a few rows are answered on the event loop

        async def run(fn, *args):
            return fn(*args) if inline else await asyncio.to_thread(fn, *args)

        parsed, data = await run(v2.parse_infer, entry, body)
        if entry.batcher is not None and len(parsed) <= settings.batch_max_size:
            features, notes = await run(entry.features, parsed)
            outputs = await entry.batcher.predict(features)
        else:
            outputs, notes = await run(entry.predict_rows, parsed)

        def answer() -> Response:
            content = v2.infer_response(entry, outputs, parsed.warnings + notes, data)
            return Response(json.dumps(content, allow_nan=False), media_type="application/json")

        return await run(answer)

    return await ctx.within_deadline(work(), "inference", "send fewer rows per request, or raise --timeout", request)
