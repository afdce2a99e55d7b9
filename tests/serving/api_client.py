"""HTTP helpers shared by the server tests: requests with a generous timeout, and the check of
the JSON error format every 4xx/5xx answer uses."""

from __future__ import annotations

import httpx

TIMEOUT = httpx.Timeout(60.0)


def post(url: str, **kwargs) -> httpx.Response:
    return httpx.post(url, timeout=TIMEOUT, **kwargs)


def get(url: str, **kwargs) -> httpx.Response:
    return httpx.get(url, timeout=TIMEOUT, **kwargs)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The answer is ``status`` with ``{"error": {"code", "message", "fields"}}``; returns the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "fields"} and error["message"]
    if code:
        assert error["code"] == code
    return error
