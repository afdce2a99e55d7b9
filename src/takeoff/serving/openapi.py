"""The OpenAPI document: FastAPI's, plus each model's input schema, the recommend and search
request schemas, and the bearer scheme when a key is required (built once, on first request)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from takeoff.serving.entries import kind_of
from takeoff.serving.middleware import BEARER, PUBLIC_PATHS
from takeoff.serving.recommend import components as recommend_components
from takeoff.serving.search import components as search_components
from takeoff.serving.settings import ServeSettings


def install_openapi(app: FastAPI, entries: dict[str, Any], settings: ServeSettings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {})
            for entry in entries.values():
                if kind_of(entry) == "predict":
                    components.setdefault("schemas", {}).update(entry.schema.components(settings.max_records))
            components.setdefault("schemas", {}).update(recommend_components(settings.max_records))
            components.setdefault("schemas", {}).update(search_components(settings.max_records))
            if settings.api_key:
                components["securitySchemes"] = {
                    BEARER.scheme_name: BEARER.model.model_dump(by_alias=True, exclude_none=True, mode="json")}
                schema["security"] = [{BEARER.scheme_name: []}]
                for path in PUBLIC_PATHS:  # the page is not in the document
                    for operation in schema["paths"].get(path, {}).values():
                        operation["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
