"""Reading a request: its media type, and its body under the size limit."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from takeoff.serving.errors import ApiError


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters ("" when none is given)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_json(request: Request) -> None:
    """Refuse (415) a request whose body is not declared as JSON."""
    media = media_type(request)
    if not (media == "application/json" or media.endswith("+json")):
        raise ApiError(415, f"content type '{media or 'none'}' is not accepted; send application/json")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) past ``limit`` bytes: by Content-Length first, then as it streams."""
    too_large = ApiError(413, f"the request body is larger than the limit of {limit:,} bytes. Fix: send "
                         "smaller batches", code="payload_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the client disconnected before sending the whole body", code="client_disconnected") from None
    return b"".join(chunks)
