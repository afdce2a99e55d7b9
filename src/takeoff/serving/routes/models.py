"""``GET /v1/models``, ``GET /v1/models/{name}`` and ``GET /v1/models/{name}/report``: what is
served, each model's metadata, metrics and inputs, and its HTML validation report."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, HTMLResponse, Response

from takeoff.serving.errors import ApiError
from takeoff.serving.jsonable import clean
from takeoff.serving.responses import ErrorResponse
from takeoff.serving.routes.context import RouteContext


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    @app.get("/v1/models", tags=["models"], summary="The models served")
    async def list_models() -> dict:
        defaults = tuple(ctx.defaults.values())
        # "default" per model: it answers its task's short route (/v1/predict, /v1/recommend,
        # /v1/search); the top-level "default" is the one --default named (the page opens it)
        return {"models": [e.summary(e.name in defaults) for e in ctx.entries.values()], "default": ctx.store.default}

    @app.get("/v1/models/{name}", tags=["models"], summary="A model's metadata, metrics and inputs",
             responses={404: {"model": ErrorResponse}})
    async def model_detail(name: str = ctx.model_name) -> dict:
        return clean(ctx.entry_for(name).detail())

    @app.get("/v1/models/{name}/report", tags=["models"], summary="A model's HTML validation report",
             response_class=HTMLResponse, responses={404: {"model": ErrorResponse}})
    async def model_report(name: str = ctx.model_name) -> Response:
        entry = ctx.entry_for(name)
        report = entry.model.attachments.get("report.html")
        if report is None or not Path(report).is_file():
            raise ApiError(404, f"model '{name}' has no report", code="report_not_found")
        return FileResponse(report, media_type="text/html")
