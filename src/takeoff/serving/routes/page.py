"""``GET /`` (the web page) and ``GET /static/{file}`` (its files), left out of the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, HTMLResponse, Response

from takeoff.serving.errors import ApiError
from takeoff.serving.routes.context import RouteContext

WEB_DIR = Path(__file__).resolve().parents[2] / "resources" / "web"
PLACEHOLDER = """<!doctype html><html><head><meta charset="utf-8"><title>takeoff</title></head>
<body><h1>takeoff</h1><p>The models are served at <a href="/v1/models">/v1/models</a>;
the API is described at <a href="/docs">/docs</a>.</p></body></html>"""


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        index = WEB_DIR / "index.html"
        return FileResponse(index, media_type="text/html") if index.is_file() else HTMLResponse(PLACEHOLDER)

    @app.get("/static/{path:path}", include_in_schema=False)
    async def static(path: str) -> Response:
        base = WEB_DIR.resolve()
        target = (base / path).resolve()
        if base not in target.parents or not target.is_file():
            raise ApiError(404, f"no static file '{path}'")
        return FileResponse(target)
