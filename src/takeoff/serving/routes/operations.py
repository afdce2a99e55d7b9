"""``GET /healthz`` (liveness), ``GET /readyz`` (readiness) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import Response

from takeoff.serving.errors import ApiError
from takeoff.serving.responses import ErrorResponse
from takeoff.serving.routes.context import RouteContext


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: models are loaded (503 otherwise)",
             responses={503: {"model": ErrorResponse}})
    async def readyz() -> dict:
        if not ctx.entries:
            raise ApiError(503, "no models are loaded", code="not_ready")
        return {"status": "ready", "models": list(ctx.entries)}

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics of this process",
             response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
