"""What a probe of the server found to hold, kept as tests (issue 26): authentication covers every
API route, 200 concurrent requests are all answered, an oversized body is refused from its
headers, and malformed framing or JSON is a 400, never a crash. A real server on 127.0.0.1, over
the committed format-1 bundle (nothing is trained here).
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
import pandas as pd
import pytest

import takeoff

OPEN = {"/healthz", "/readyz", "/", "/favicon.ico", "/v2/health/live", "/v2/health/ready"}  # what answers without the key (and /static/*)


@pytest.fixture(scope="module")
def cancer(fixtures):
    return takeoff.load(fixtures / "bundle-v1")


@pytest.fixture(scope="module")
def record(fixtures) -> dict:
    return pd.read_csv(fixtures / "bundle-v1-rows.csv").iloc[0].to_dict()


@pytest.fixture(scope="module")
def url(start_server, cancer) -> str:
    return start_server({"cancer": cancer}, default_model="cancer")


def raw(url: str, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` as is and return the start of the answer (status line and headers)."""
    parts = urlparse(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_the_api_key_covers_every_api_route(start_server, cancer, record):
    url = start_server({"cancer": cancer}, default_model="cancer", api_key="s3cret")
    spec = httpx.get(f"{url}/openapi.json", headers={"Authorization": "Bearer s3cret"}, timeout=30).json()
    assert httpx.get(f"{url}/openapi.json", timeout=30).status_code == 401
    checked = 0
    for path, methods in spec["paths"].items():
        if path in OPEN or path.startswith("/static"):
            continue
        concrete = path.replace("{name}", "cancer").replace("{model}", "cancer")
        for method in methods:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                answer = httpx.request(method.upper(), f"{url}{concrete}", json=record, headers=headers, timeout=30)
                assert answer.status_code == 401, (method, path, headers, answer.status_code)
            checked += 1
    assert checked >= 5  # predict, models, metrics, ... every one of them behind the key
    for path in ("/docs", "/metrics"):
        assert httpx.get(f"{url}{path}", timeout=30).status_code == 401
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200


def test_200_concurrent_requests_are_all_answered(url, record):
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=200)) as client, ThreadPoolExecutor(200) as pool:
        answers = list(pool.map(lambda _: client.post(f"{url}/v1/predict", json=record), range(200)))
    assert [a.status_code for a in answers] == [200] * 200
    first = answers[0].json()["predictions"][0]
    for answer in answers:  # micro-batched or not, the same answer (to float32 rounding)
        got = answer.json()["predictions"][0]
        assert got["prediction"] == first["prediction"]
        assert got["probabilities"] == pytest.approx(first["probabilities"], abs=1e-6)


def test_a_50_mb_body_is_refused_from_its_headers(url):
    started = time.monotonic()
    answer = raw(url, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 52428800\r\n\r\n")  # and no body at all
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("headers", [
    b"Content-Length: abc\r\n",
    b"Content-Length: -5\r\n",
    b"Content-Length: 10\r\nContent-Length: 12\r\n",
    b"Content-Length: 12\r\nTransfer-Encoding: chunked\r\n",
], ids=["not a number", "negative", "twice", "with Transfer-Encoding"])
def test_malformed_framing_is_a_400(url, headers):
    answer = raw(url, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + headers
                 + b"\r\n{\"records\": []}")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("body", [
    b'{"mean radius": NaN}', b'{"mean radius": Infinity}', b'{"mean radius": -Infinity}',
    b'{"records": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
], ids=["NaN", "Infinity", "-Infinity", "deep list", "deep object"])
def test_nan_infinity_and_deep_nesting_are_a_400(url, body):
    answer = httpx.post(f"{url}/v1/predict", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert answer.status_code == 400, answer.text[:200]
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
