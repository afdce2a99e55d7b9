"""Pure ASGI middleware: metrics, the catch-all for unexpected errors, and bearer-key auth.

Order, outermost first: (CORS) → metrics → catch-all → auth → the app's routes.

The key is checked here rather than as a FastAPI dependency because it guards every path, not
only the API routes: ``/docs`` and ``/openapi.json`` (which FastAPI adds as plain routes), and
paths that match no route or not with this method, which answer 401 before 404 or 405 so that
a client without the key learns nothing about the routes. The header is read by FastAPI's own
:class:`~fastapi.security.HTTPBearer`, which also describes the scheme in the OpenAPI document.
"""

from __future__ import annotations

import hmac
import logging
import time

from fastapi.security import HTTPBearer
from starlette.requests import HTTPConnection
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from takeoff.serving.errors import ApiError, error_response

log = logging.getLogger("takeoff.serving")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/", "/v2/health/live", "/v2/health/ready"})
PUBLIC_PREFIXES = ("/static/",)
BEARER = HTTPBearer(scheme_name="bearer", auto_error=False)  # reads "Authorization: Bearer KEY"


def route_template(scope: Scope) -> str:
    """The route a request matches (``/v1/models/{name}``), or "unmatched": a bounded label set."""
    route = scope.get("route")  # set by the router as it dispatches (Starlette >= 0.47)
    if route is not None and hasattr(route, "path"):
        return route.path
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", []):
        match, _ = route.matches(scope)
        if match != Match.NONE:
            return getattr(route, "path", "unmatched")
    return "unmatched"


class MetricsMiddleware:
    """Counts requests by method, route template and status code; times them by route."""

    def __init__(self, app: ASGIApp, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


class CatchAllMiddleware:
    """Logs any unexpected exception and answers a generic JSON 500: never a stack trace."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:  # noqa: BLE001 (this is the last line of defence)
            log.exception("unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            if not started:
                error = ApiError(500, "internal error; the server logged the details", code="internal_error")
                await error_response(scope, error)(scope, receive, send)


class AuthMiddleware:
    """Requires ``Authorization: Bearer KEY`` except on the health checks and the page."""

    def __init__(self, app: ASGIApp, api_key: str):
        self.app, self.expected = app, api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_public(scope["path"]):
            return await self.app(scope, receive, send)
        connection = HTTPConnection(scope)
        credentials = await BEARER(connection)
        # latin-1 gives back the header's bytes, as the client sent them
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode("latin-1"), self.expected):
            problem = "missing" if "authorization" not in connection.headers else "wrong"
            error = ApiError(401, f"{problem} API key. Fix: send the header 'Authorization: Bearer <key>'",
                             code="unauthorized", headers={"WWW-Authenticate": "Bearer"})
            return await error_response(scope, error)(scope, receive, send)
        await self.app(scope, receive, send)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
