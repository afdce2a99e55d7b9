"""The app's exception handlers: every error, ours or the framework's, answered in the one JSON
shape of :mod:`takeoff.serving.errors`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from takeoff.errors import DataError, TakeoffError
from takeoff.serving.errors import ApiError, error_response, from_data_error

log = logging.getLogger("takeoff.serving")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request.scope, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; the API is described at /docs"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(request.scope, ApiError(exc.status_code, message, headers=exc.headers))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields = [{"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "problem": e["msg"]} for e in exc.errors()]
        return error_response(request.scope, ApiError(422, "the request is not valid", fields=fields))

    @app.exception_handler(TakeoffError)
    async def takeoff_error(request: Request, exc: TakeoffError) -> Response:
        if isinstance(exc, DataError):
            return error_response(request.scope, from_data_error(exc, single=False))
        log.error("unexpected takeoff error answering %s %s: %s", request.method, request.url.path, exc)
        return error_response(request.scope, ApiError(500, "internal error; the server logged the details"))
