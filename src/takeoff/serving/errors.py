"""HTTP error responses: one JSON shape for every 4xx and 5xx.

``{"error": {"code": "...", "message": "...", "fields": [{"field": "records[3].Income", "problem": "..."}]}}``
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response

from takeoff.errors import DataError, SchemaMismatchError

MAX_FIELDS = 50  # field problems listed in one response; the message gives the total

CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 408: "request_timeout", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "validation_error", 429: "too_many_requests", 500: "internal_error", 503: "not_ready", 504: "timeout",
}


class ApiError(Exception):
    """An error answered to the client as JSON (raised anywhere below a route)."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 fields: Sequence[Mapping[str, str]] = (), headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, Any] | None = None):
        self.status, self.message = status, message
        self.code = code or CODES.get(status, "error")
        self.fields, self.headers, self.extra = list(fields), dict(headers or {}), dict(extra or {})
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        shown = self.fields[:MAX_FIELDS]
        message = self.message
        if len(self.fields) > len(shown):
            message += f" ({len(self.fields)} problems; the first {len(shown)} are listed)"
        return {"error": {"code": self.code, "message": message, "fields": shown, **self.extra}}


def error_response(scope: Mapping[str, Any], error: ApiError) -> Response:
    """The JSON response for ``error``; counts it in the app's metrics."""
    app = scope.get("app")
    metrics = getattr(getattr(app, "state", None), "metrics", None)
    if metrics is not None:
        metrics.errors.labels(error.code).inc()
    path = scope.get("path", "")
    body = error.body()
    if path == "/v2" or path.startswith("/v2/"):  # the Open Inference Protocol's error shape: one string
        body = {"error": body["error"]["message"]}
    return Response(json.dumps(body), status_code=error.status, headers=error.headers, media_type="application/json")


def field_path(row: int | None, column: str | None, single: bool) -> str:
    """``records[3].Income`` for batch requests, ``Income`` for single-record ones."""
    if single or row is None:
        return column or ""
    return f"records[{row}]" + (f".{column}" if column is not None else "")


def from_data_error(exc: DataError, single: bool, kinds: Mapping[str, str] | None = None) -> ApiError:
    """Takeoff's data errors (missing columns, unparseable values) as a 422 naming the columns.

    ``kinds`` maps column names to their kind (numeric, datetime, ...) for the problem text.
    """
    if isinstance(exc, SchemaMismatchError):
        fields = [{"field": m, "problem": "required field is missing"} for m in exc.missing]
    elif exc.column is not None and exc.rows:
        kind = (kinds or {}).get(exc.column)
        problem = f"value does not parse as {kind}" if kind else "value does not parse"
        fields = [{"field": field_path(r, exc.column, single), "problem": problem} for r in exc.rows]
    elif exc.column is not None:
        fields = [{"field": exc.column, "problem": str(exc)}]
    else:
        fields = []
    return ApiError(422, str(exc), fields=fields)
