"""The server's resource limits on real servers on 127.0.0.1: columns and cells per request,
JSON depth, work stopped at its deadline, and the connection limits (slow or idle connections,
oversized headers, too many connections), each bounded to a few hundred connections and seconds."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import takeoff
from api_client import assert_error, get, post


class GuardedServer:
    """A real server as ``takeoff serve`` runs it (the settings' connection limits and header
    guard, :func:`takeoff.serving.server.make_server`), in a thread, on a free port."""

    def __init__(self, source, **settings):
        from takeoff.serving import ServeSettings, create_app
        from takeoff.serving.server import make_server

        settings = ServeSettings(**{"api_key": None, **settings})
        self.server = make_server(create_app(source, settings), settings, log_level="warning", port=0)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.host, self.port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        return sock

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def guarded(lgb_bundle):
    servers = []

    def start(**settings) -> GuardedServer:
        servers.append(GuardedServer(lgb_bundle, **settings))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing ``sock`` within ``seconds``; None if it stayed open."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return received


def healthz_seconds(url: str, probes: int = 10) -> float:
    """The slowest of ``probes`` health checks, each on a new connection."""
    slowest = 0.0
    for _ in range(probes):
        started = time.perf_counter()
        assert get(f"{url}/healthz").status_code == 200
        slowest = max(slowest, time.perf_counter() - started)
        time.sleep(0.02)
    return slowest


# ----------------------------------------------------------------------------- request bounds
def test_wide_bodies_are_refused_before_parsing(server_url, credit_rows, start_server, model_dir):
    header = ",".join(f"c{i}" for i in range(200_000)).encode()  # 1.4 MB header, like the probe's 1M columns
    started = time.perf_counter()
    error = assert_error(post(f"{server_url}/v1/predict", content=header + b"\n" + b"1," * 199_999 + b"1\n",
                              headers={"content-type": "text/csv"}), 413, "too_many_columns")
    assert time.perf_counter() - started < 2
    assert "200,000 columns" in error["message"] and "max_columns" in error["message"]

    record = json.loads(credit_rows.head(1).to_json(orient="records"))[0]
    wide = {**record, **{f"x{i}": 1 for i in range(3_000)}}
    error = assert_error(post(f"{server_url}/v1/predict", json={"records": [record, wide]}), 413, "too_many_columns")
    assert "record 1 has 3,013 columns" in error["message"]

    url = start_server(model_dir, default_model="credit", max_cells=100)
    rows = credit_rows.head(8)  # 8 x 13 values
    error = assert_error(post(f"{url}/v1/predict", json={"records": json.loads(rows.to_json(orient="records"))}),
                         413, "too_many_cells")
    assert "max_cells" in error["message"]
    assert_error(post(f"{url}/v1/predict", content=rows.to_csv(index=False), headers={"content-type": "text/csv"}),
                 413, "too_many_cells")
    assert post(f"{url}/v1/predict", json={"records": json.loads(rows.head(7).to_json(orient="records"))}).status_code == 200


def test_deep_nesting_names_the_limit(server_url):
    for depth in (65, 100_000):
        body = b'{"records": ' + b"[" * depth + b"]" * depth + b"}"
        error = assert_error(post(f"{server_url}/v1/predict", content=body, headers={"content-type": "application/json"}),
                             400, "invalid_json")
        assert "nested too deeply (limit 64" in error["message"] and "recursion" not in error["message"]
    deep = b'{"inputs": ' + b"[" * 100 + b"]" * 100 + b"}"
    reply = post(f"{server_url}/v2/models/credit/infer", content=deep, headers={"content-type": "application/json"})
    assert reply.status_code == 400 and "nested too deeply (limit 64" in reply.json()["error"]


def test_work_past_its_deadline_stops(lgb_bundle, start_server, credit_rows):
    """A CSV of 10,000 rows is predicted in chunks of 2,048; with each chunk slowed to 0.3 s and
    a 0.4 s timeout, the client gets its 504 and the worker thread stops at the next chunk."""
    import pandas as pd

    model = takeoff.load(lgb_bundle)
    calls: list[float] = []
    predict = model.predict_features

    def slow(features):
        calls.append(time.monotonic())
        time.sleep(0.3)
        return predict(features)

    model.predict_features = slow
    url = start_server({"credit": model}, timeout_s=0.4)
    csv = pd.concat([credit_rows] * 50).to_csv(index=False)
    started = time.monotonic()
    assert_error(post(f"{url}/v1/predict", content=csv, headers={"content-type": "text/csv"}), 504, "timeout")
    time.sleep(1.5)  # five chunks would take 1.5 s more
    assert 1 <= len(calls) <= 3, calls
    assert calls[-1] - started < 1.2  # no chunk started long after the deadline
    assert get(f"{url}/healthz").status_code == 200


# ----------------------------------------------------------------------------- connections
def test_slow_and_idle_connections_are_closed_while_healthz_answers(guarded):
    server = guarded(header_timeout_s=1.0)
    slow, idle = [], []
    for _ in range(150):  # slowloris: a request line and one header, then nothing
        sock = server.connect()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        slow.append(sock)
    idle = [server.connect() for _ in range(150)]  # connected, never a byte
    started = time.monotonic()
    assert healthz_seconds(server.url) < 1.0  # generous: the goal (< 100 ms) is measured by benchmarks/server_abuse.py
    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(lambda s: closed_within(s, 4.0), slow + idle))
    assert time.monotonic() - started < 5
    assert all(r is not None for r in replies), "a connection stayed open past the header timeout"
    assert all(r.startswith(b"HTTP/1.1 408") and b"header_timeout_s" in r for r in replies[:150])
    assert all(r == b"" for r in replies[150:])
    for sock in slow + idle:
        sock.close()


def test_keep_alive_and_header_size(guarded):
    server = guarded(keep_alive_s=0.3, max_header_bytes=4_096)
    sock = server.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert closed_within(sock, 2.0) == b""  # idle after its answer: closed after keep_alive_s
    sock.close()

    sock = server.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 8_000 + b"\r\n\r\n")
    reply = closed_within(sock, 2.0)
    assert reply.startswith(b"HTTP/1.1 431") and b"max_header_bytes" in reply
    sock.close()


def test_connection_limit_evicts_idle_connections_not_requests(guarded):
    server = guarded(max_connections=40, header_timeout_s=5, timeout_s=5)
    held = []
    for _ in range(60):  # more than max_connections, each slow with its headers
        sock = server.connect()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        held.append(sock)
        time.sleep(0.005)
    assert get(f"{server.url}/healthz").status_code == 200  # room made by closing the longest waiting
    time.sleep(0.3)
    evicted = [closed_within(s, 0.01) is not None for s in held]
    assert sum(evicted) >= 20 and all(evicted[:20]) and not any(evicted[-15:]), evicted
    for sock in held:
        sock.close()

    time.sleep(0.3)
    body = b'{"records": []}'
    busy = []
    for _ in range(40):  # requests in flight: headers sent, the body still to come
        sock = server.connect()
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (len(body) + 10))
        busy.append(sock)
    time.sleep(0.3)
    refused = server.connect()
    reply = closed_within(refused, 2.0)
    assert reply.startswith(b"HTTP/1.1 503") and b"max_connections" in reply  # never evicts a request in flight
    assert all(closed_within(s, 0.01) is None for s in busy)
    for sock in busy + [refused]:
        sock.close()
    time.sleep(0.3)
    assert get(f"{server.url}/healthz").status_code == 200


def test_uvicorn_options_follow_the_settings():
    from takeoff.serving import ServeSettings
    from takeoff.serving.connections import uvicorn_options

    options = uvicorn_options(ServeSettings(api_key=None, max_connections=77, keep_alive_s=3, max_header_bytes=9_000))
    assert options["limit_concurrency"] == 77 and options["timeout_keep_alive"] == 3
    assert options["h11_max_incomplete_event_size"] == 9_000
    assert options["http"].endswith(":GuardedHttpToolsProtocol")
