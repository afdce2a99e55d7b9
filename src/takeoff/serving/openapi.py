"""The OpenAPI document: FastAPI's, plus each model's input schema, the recommend, search and
Open Inference Protocol (v2) schemas, and, when a key is required, the bearer security scheme
(FastAPI's :class:`~fastapi.security.HTTPBearer`) on every operation that needs the key, so that
Swagger's "Authorize" button and generated clients send it (built once, on first request)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from takeoff.serving.entries import kind_of
from takeoff.serving.middleware import BEARER, PUBLIC_PATHS
from takeoff.serving.openai import components as openai_components
from takeoff.serving.recommend import components as recommend_components
from takeoff.serving.search import components as search_components
from takeoff.serving.settings import ServeSettings
from takeoff.serving.v2 import components as v2_components

BEARER_DESCRIPTION = ("The server's API key (`takeoff serve --api-key`, or TAKEOFF_API_KEY), sent as "
                      "'Authorization: Bearer KEY'. Not needed by the health checks.")


def install_openapi(app: FastAPI, entries: dict[str, Any], settings: ServeSettings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for entry in entries.values():
                if kind_of(entry) == "predict":
                    schemas.update(entry.schema.components(settings.max_records))
            schemas.update(recommend_components(settings.max_records))
            schemas.update(search_components(settings.max_records))
            schemas.update(v2_components())
            schemas.update(openai_components())
            if settings.api_key:
                add_bearer(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def add_bearer(schema: dict[str, Any]) -> None:
    """Declare the bearer scheme and require it on every operation but the public ones."""
    scheme = BEARER.model.model_dump(by_alias=True, exclude_none=True, mode="json")
    schema["components"]["securitySchemes"] = {BEARER.scheme_name: {**scheme, "description": BEARER_DESCRIPTION}}
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            if path in PUBLIC_PATHS:
                operation["security"] = []
                continue
            operation["security"] = [{BEARER.scheme_name: []}]
            operation.setdefault("responses", {}).setdefault(
                "401", {"description": "API key missing or wrong (with WWW-Authenticate: Bearer)"})
