"""``GET /v1/models``, ``GET /v1/models/{name}`` and ``GET /v1/models/{name}/report``: what is
served, each model's metadata, metrics and inputs, and its HTML validation report.

``GET /v1/models`` answers takeoff's shape (``models``, ``default``) and OpenAI's beside it
(``object: "list"``, ``data: [{"id", "object": "model", "created", "owned_by"}]``), so that
OpenAI clients list the models too (``client.models.list()``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

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
        summaries = [e.summary(e.name in defaults) for e in ctx.entries.values()]
        return {"models": summaries, "default": ctx.store.default,
                "object": "list", "data": [_openai_model(s) for s in summaries]}

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


def _openai_model(summary: dict[str, Any]) -> dict[str, Any]:
    """One model as OpenAI lists it; ``created`` in Unix seconds (0 when the bundle does not say)."""
    created = 0
    if isinstance(summary.get("created"), str):
        try:
            created = int(datetime.fromisoformat(summary["created"].replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    return {"id": summary["name"], "object": "model", "created": created, "owned_by": "takeoff", "task": summary["task"]}
