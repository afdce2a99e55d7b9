"""/metrics with the standard process and Python series, summed across worker processes; and
the bearer security scheme of the OpenAPI document."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api_client import get, post

PUBLIC = {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"}


def samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels) -> float:
    return sum(s.value for s in samples(text) if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


# ----------------------------------------------------------------------------- OpenAPI
def test_openapi_declares_the_bearer_scheme_on_the_routes_that_need_it(start_server, model_dir, server_url):
    url = start_server(model_dir, default_model="credit", api_key="k")
    schema = get(f"{url}/openapi.json", headers={"Authorization": "Bearer k"}).json()
    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and "API key" in scheme["description"]
    assert "security" not in schema  # per operation, so the public health checks say they need nothing
    operations = {(path, method): op for path, ops in schema["paths"].items() for method, op in ops.items()}
    for key in (("/v1/predict", "post"), ("/v1/models", "get"), ("/v1/models/{name}", "get"),
                ("/v2/models/{name}/infer", "post"), ("/v2/models/{name}", "get"), ("/metrics", "get"),
                ("/v1/models/{name}/explain", "post")):
        assert operations[key]["security"] == [{"bearer": []}], key
        assert "401" in operations[key]["responses"], key
    for path in PUBLIC:
        assert operations[(path, "get")]["security"] == [], path
    assert {path for (path, _), op in operations.items() if op["security"] == []} == PUBLIC
    # the key really is what the document says: required exactly where it is declared
    for (path, method), op in operations.items():
        if method == "get" and "{" not in path:
            assert (get(f"{url}{path}").status_code == 401) == bool(op["security"]), path

    open_schema = get(f"{server_url}/openapi.json").json()  # no key: no scheme to send
    assert "securitySchemes" not in open_schema["components"]
    assert all("security" not in op for ops in open_schema["paths"].values() for op in ops.values())


# ----------------------------------------------------------------------------- metrics
def test_metrics_have_process_and_python_series(server_url):
    text = get(f"{server_url}/metrics").text
    assert value(text, "process_resident_memory_bytes") > 10_000_000
    assert value(text, "process_cpu_seconds_total") > 0 and value(text, "process_open_fds") > 0
    assert any(s.name == "python_info" and s.labels["implementation"] for s in samples(text))
    assert any(s.name == "python_gc_objects_collected_total" for s in samples(text))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_answer_for_the_whole_server(lgb_bundle, credit_rows):
    """``--workers 2``: every scrape, whichever worker answers it, counts every request of both;
    process series come once per worker; the metrics directory goes when the server stops."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TAKEOFF_API_KEY", "PROMETHEUS_MULTIPROC_DIR")}
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "takeoff.cli", "serve", str(lgb_bundle), "--port", str(port),
                             "--workers", "2", "--no-access-log"], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        pids: set[str] = set()
        while len(pids) < 2:  # both workers up: each has written its process series
            assert proc.poll() is None and time.monotonic() < deadline, _log(log)
            try:
                text = httpx.get(f"{url}/metrics", timeout=5).text
                pids = {s.labels["pid"] for s in samples(text) if s.name == "process_resident_memory_bytes"}
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        record = credit_rows.head(1).to_dict("records")[0]
        with ThreadPoolExecutor(8) as pool:  # new connections, concurrent: the kernel spreads them over both
            statuses = list(pool.map(lambda _: post(f"{url}/v1/predict", json=record).status_code, range(40)))
        assert statuses == [200] * 40
        multiproc = Path(_environ(int(next(iter(pids))))["PROMETHEUS_MULTIPROC_DIR"])
        per_worker = _predict_requests_per_worker(multiproc)
        totals = set()
        for _ in range(6):
            text = httpx.get(f"{url}/metrics", timeout=10).text
            totals.add(value(text, "takeoff_http_requests_total", route="/v1/predict", status="200"))
            assert value(text, "takeoff_rows_predicted_total", model="credit") == 40
            assert {s.labels["pid"] for s in samples(text) if s.name == "process_resident_memory_bytes"} == pids
        assert totals == {40}, (totals, per_worker)
        assert sum(per_worker.values()) == 40
        assert len([n for n in per_worker.values() if n]) == 2, per_worker  # both answered: the sums are real sums
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not multiproc.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def _predict_requests_per_worker(path: Path) -> dict[str, float]:
    """Each worker's own count of answered /v1/predict requests, from its file."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for file in path.glob("counter_*.db"):
        metrics = MultiProcessCollector.merge([str(file)])
        counts[file.stem.split("_")[1]] = sum(
            s.value for m in metrics for s in m.samples
            if s.name == "takeoff_http_requests_total" and s.labels.get("route") == "/v1/predict")
    return counts


def _log(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


@pytest.fixture(autouse=True)
def _no_inherited_multiproc_dir(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
