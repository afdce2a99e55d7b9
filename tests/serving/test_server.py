"""`takeoff serve` as a client sees it: real servers on 127.0.0.1, real HTTP, real bundles."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

import takeoff
from api_client import TIMEOUT, assert_error, get, post
from takeoff.serving.batching import MicroBatcher



def records(df: pd.DataFrame) -> list[dict]:
    return json.loads(df.to_json(orient="records"))


def assert_matches(body: dict, model, rows: pd.DataFrame, rtol: float = 1e-9) -> None:
    assert body["task"] == "binary" and body["version"] == model.version
    labels = [p["prediction"] for p in body["predictions"]]
    assert labels == model.predict(rows).tolist()
    expected = model.predict_proba(rows)
    got = pd.DataFrame([p["probabilities"] for p in body["predictions"]])[list(expected.columns)]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=rtol, atol=1e-7)


@pytest.fixture(scope="module")
def models(lgb_bundle, mlp_bundle):
    return {"credit": takeoff.load(lgb_bundle), "credit-mlp": takeoff.load(mlp_bundle)}


@pytest.fixture(scope="module")
def record(credit_rows) -> dict:
    return records(credit_rows.head(1))[0]


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", ["credit", "credit-mlp"])
def test_batch_and_single_records_match_the_python_api(server_url, models, credit_rows, name):
    model = models[name]
    response = post(f"{server_url}/v1/models/{name}/predict", json={"records": records(credit_rows)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == name and body["warnings"] == [] and len(body["predictions"]) == 200
    assert_matches(body, model, credit_rows)
    for i in range(3):  # single-record bodies (through the micro-batcher for the MLP)
        one = post(f"{server_url}/v1/models/{name}/predict", json=records(credit_rows.iloc[[i]])[0]).json()
        assert_matches(one, model, credit_rows.iloc[[i]], rtol=1e-5)


def test_default_model_and_csv_upload(server_url, models, credit_rows):
    by_json = post(f"{server_url}/v1/predict", json={"records": records(credit_rows.head(20))}).json()
    assert by_json["model"] == "credit"
    csv = credit_rows.head(20).assign(applicant="x").to_csv(index=False).encode()
    response = post(f"{server_url}/v1/predict", files={"file": ("rows.csv", csv, "text/csv")})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == by_json["predictions"]
    assert response.json()["warnings"] == ["ignored column(s) the model does not use: applicant"]
    raw = post(f"{server_url}/v1/predict", content=csv, headers={"content-type": "text/csv"})
    assert raw.json()["predictions"] == by_json["predictions"]


def test_single_bundle_served_as_default(start_server, fixtures):
    """The committed format-1 bundle (breast cancer, lightgbm + mlp blend) served on its own."""
    url = start_server(fixtures / "bundle-v1")
    listing = get(f"{url}/v1/models").json()["models"]
    assert [(m["name"], m["default"]) for m in listing] == [("bundle-v1", True)]
    csv = (fixtures / "bundle-v1-rows.csv").read_bytes()
    body = post(f"{url}/v1/predict", files={"file": ("rows.csv", csv)}).json()
    expected = pd.read_csv(fixtures / "bundle-v1-expected.csv")
    assert [p["prediction"] for p in body["predictions"]] == expected["prediction"].tolist()
    got = [[p["probabilities"]["benign"], p["probabilities"]["malignant"]] for p in body["predictions"]]
    np.testing.assert_allclose(got, expected[["benign", "malignant"]].to_numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- bad input
def test_bad_json_content_type_and_routes(server_url):
    url = f"{server_url}/v1/predict"
    assert "not valid JSON" in assert_error(post(url, content=b'{"Income": ', headers={"content-type": "application/json"}), 400, "invalid_json")["message"]
    assert_error(post(url, content=b'{"Income": NaN}', headers={"content-type": "application/json"}), 400, "invalid_json")
    assert_error(post(url, content=b"Income=3", headers={"content-type": "application/x-www-form-urlencoded"}), 415, "unsupported_media_type")
    assert_error(post(url, content=b"{}"), 415)  # no content type at all
    assert_error(post(url, json=[1, 2]), 422)
    assert_error(get(url), 405, "method_not_allowed")
    assert_error(get(f"{server_url}/v0/nothing"), 404, "not_found")  # (under /v2, the v2 protocol's error shape)


def test_missing_wrong_and_unknown_fields(server_url, record):
    url = f"{server_url}/v1/predict"
    missing = {k: v for k, v in record.items() if k != "Income"}
    error = assert_error(post(url, json=missing), 422, "validation_error")
    assert error["fields"] == [{"field": "Income", "problem": "required field is missing (send null when the value is unknown)"}]
    error = assert_error(post(url, json={"records": [record, missing, {**record, "Age": "old", "Records": "maybe"}]}), 422)
    fields = {f["field"]: f["problem"] for f in error["fields"]}
    assert set(fields) == {"records[1].Income", "records[2].Age", "records[2].Records"}
    assert "number" in fields["records[2].Age"] and "boolean" in fields["records[2].Records"]
    nulls = post(url, json={**{k: None for k in record}, "shoe_size": 44, "Status": "good"})
    assert nulls.status_code == 200, nulls.text  # all-null is allowed (imputed); the target is not "unknown"
    assert nulls.json()["warnings"] == ["ignored field(s) the model does not use: shoe_size"]
    assert_error(post(url, json={"records": []}), 422)["fields"][0]["field"] == "records"
    assert_error(post(url, json={"records": [record, 7]}), 422)["fields"][0]["field"] == "records[1]"


def test_bad_csv_uploads(server_url, credit_rows):
    url = f"{server_url}/v1/predict"
    assert_error(post(url, files={"file": ("x.csv", b"\x89PNG\x00\xff\xfe")}), 400, "invalid_csv")
    no_income = credit_rows.head(3).drop(columns=["Income"]).to_csv(index=False).encode()
    assert assert_error(post(url, files={"file": ("x.csv", no_income)}), 422)["fields"][0]["field"] == "Income"
    bad_value = credit_rows.head(3).astype({"Income": object})
    bad_value.loc[2, "Income"] = "lots"
    error = assert_error(post(url, files={"file": ("x.csv", bad_value.to_csv(index=False).encode())}), 422)
    assert error["fields"] == [{"field": "records[2].Income", "problem": "value does not parse as numeric"}]
    assert_error(post(url, files={"other": ("x.csv", no_income)}), 422)["fields"][0]["field"] == "file"
    assert_error(post(url, content=b"--x\r\ngarbage", headers={"content-type": "multipart/form-data"}), 400)


def test_unknown_model_and_no_default(server_url, start_server, model_dir, record):
    error = assert_error(post(f"{server_url}/v1/models/nope/predict", json=record), 404, "model_not_found")
    assert error["models"] == ["credit", "credit-mlp"] and "credit-mlp" in error["message"]
    assert_error(get(f"{server_url}/v1/models/nope"), 404, "model_not_found")
    url = start_server(model_dir)  # two models, none chosen as default
    assert_error(post(f"{url}/v1/predict", json=record), 404, "no_default_model")
    assert post(f"{url}/v1/models/credit-mlp/predict", json=record).status_code == 200


def test_limits_records_body_and_timeout(start_server, model_dir, credit_rows, record):
    url = start_server(model_dir, default_model="credit", max_records=5, max_body_bytes=20_000)
    assert_error(post(f"{url}/v1/predict", json={"records": [record] * 6}), 413, "too_many_records")
    csv = credit_rows.head(6).to_csv(index=False).encode()
    assert_error(post(f"{url}/v1/predict", files={"file": ("x.csv", csv)}), 413, "too_many_records")
    big = json.dumps({"records": [record] * 5, "padding": "x" * 30_000}).encode()
    assert_error(post(f"{url}/v1/predict", content=big, headers={"content-type": "application/json"}), 413, "payload_too_large")
    chunked = post(f"{url}/v1/predict", content=iter([big[:10_000], big[10_000:]]), headers={"content-type": "application/json"})
    assert_error(chunked, 413, "payload_too_large")  # no Content-Length: counted as it streams
    assert post(f"{url}/v1/predict", json={"records": [record] * 5}).status_code == 200

    slow = start_server(model_dir, default_model="credit-mlp", timeout_s=0.0005)
    rows = records(pd.concat([credit_rows] * 5))
    assert_error(post(f"{slow}/v1/predict", json={"records": rows}), 504, "timeout")
    assert get(f"{slow}/healthz").json() == {"status": "ok"}


# ----------------------------------------------------------------------------- auth and CORS
def test_api_key_and_cors(start_server, model_dir, record):
    url = start_server(model_dir, default_model="credit", api_key="s3cret", cors_origins=["http://app.example"])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        response = get(f"{url}/v1/models", headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    assert_error(post(f"{url}/v1/predict", json=record), 401)
    assert_error(get(f"{url}/metrics"), 401)
    key = {"Authorization": "Bearer s3cret"}
    assert get(f"{url}/v1/models", headers=key).status_code == 200
    assert post(f"{url}/v1/predict", json=record, headers=key).status_code == 200
    for public in ("/healthz", "/readyz", "/"):
        assert get(f"{url}{public}").status_code == 200
    preflight = httpx.options(f"{url}/v1/predict", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://app.example"
    schema = get(f"{url}/openapi.json", headers=key).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_cors_is_off_by_default(server_url):
    response = get(f"{server_url}/healthz", headers={"Origin": "http://app.example"})
    assert "access-control-allow-origin" not in response.headers


# ----------------------------------------------------------------------------- operations
def _samples(url: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(get(f"{url}/metrics").text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_rows_and_errors(server_url, record):
    before = _samples(server_url)
    post(f"{server_url}/v1/predict", json={"records": [record] * 7})
    post(f"{server_url}/v1/models/credit-mlp/predict", json=record)
    post(f"{server_url}/v1/models/nope/predict", json=record)
    after = _samples(server_url)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("takeoff_http_requests_total", method="POST", route="/v1/predict", status="200") == 1
    assert delta("takeoff_http_requests_total", method="POST", route="/v1/models/{name}/predict", status="404") == 1
    assert delta("takeoff_rows_predicted_total", model="credit") == 7
    assert delta("takeoff_rows_predicted_total", model="credit-mlp") == 1
    assert delta("takeoff_errors_total", code="model_not_found") == 1
    assert delta("takeoff_http_request_duration_seconds_count", route="/v1/predict") == 1
    assert delta("takeoff_batch_rows_count", model="credit-mlp") == 1


def test_health_readiness_and_model_metadata(server_url, models):
    assert get(f"{server_url}/healthz").json() == {"status": "ok"}
    assert get(f"{server_url}/readyz").json() == {"status": "ready", "models": ["credit", "credit-mlp"]}
    answer = get(f"{server_url}/v1/models").json()
    listing = answer["models"]
    assert answer["default"] == "credit"  # the model --default named; the page opens it
    assert [m["name"] for m in listing] == ["credit", "credit-mlp"] and [m["default"] for m in listing] == [True, False]
    assert set(listing[0]) == {"name", "task", "target", "classes", "version", "created", "default"}
    assert listing[0]["target"] == "Status" and sorted(listing[0]["classes"]) == ["bad", "good"]
    detail = get(f"{server_url}/v1/models/credit-mlp").json()
    assert set(detail) == {"name", "version", "task", "target", "classes", "threshold", "created", "format_version",
                           "takeoff_version", "metrics", "inputs", "members", "report_url"}
    assert detail["members"] == [{"family": "mlp", "weight": 1.0}] and detail["format_version"] == 1
    assert detail["inputs"] == json.loads(json.dumps(models["credit-mlp"].input_fields()))
    assert detail["metrics"]["roc_auc"] > 0.6
    report = get(server_url + detail["report_url"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert get(f"{server_url}/").status_code == 200
    assert_error(get(f"{server_url}/static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml"), 404)


def test_readyz_is_503_without_models():
    from takeoff.serving import create_app

    async def check():
        transport = httpx.ASGITransport(app=create_app({}))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/readyz")

    assert_error(asyncio.run(check()), 503, "not_ready")


def test_openapi_shows_the_real_inputs(server_url):
    schema = get(f"{server_url}/openapi.json").json()
    record = schema["components"]["schemas"]["credit.Record"]
    props = record["properties"]
    assert {"Income", "Home", "Records", "Age"} <= set(props) and "Status" not in props
    assert set(record["required"]) == set(props)
    assert {"type": "number"} in props["Income"]["anyOf"] and {"type": "null"} in props["Income"]["anyOf"]
    assert {"type": "string"} in props["Home"]["anyOf"] and "rent" in props["Home"]["description"]
    assert {"type": "boolean"} in props["Records"]["anyOf"]
    body = schema["paths"]["/v1/models/credit/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    assert "/v1/predict" in schema["paths"] and "/v1/models/credit-mlp/predict" in schema["paths"]


# ----------------------------------------------------------------------------- micro-batching
def test_concurrent_single_records_are_batched(start_server, mlp_bundle, credit_rows):
    model = takeoff.load(mlp_bundle)
    calls: list[int] = []
    real = model.predict_features  # what a batch calls, once per batch

    def spy(features):
        calls.append(len(features))
        return real(features)

    model.predict_features = spy
    url = start_server({"spy": model}, batch_max_wait_ms=100, batch_max_size=64)
    rows = records(credit_rows.head(12))
    bad = {k: v for k, v in rows[0].items() if k != "Age"}
    with httpx.Client(timeout=TIMEOUT) as client, ThreadPoolExecutor(13) as pool:
        futures = [pool.submit(client.post, f"{url}/v1/predict", json=r) for r in [*rows, bad]]
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200] * 12 + [422]  # one bad request fails alone
    assert sum(calls) == 12 and len(calls) < 12 and max(calls) > 1, calls
    model.predict_features = real
    expected = model.predict_proba(credit_rows.head(12))
    for i, response in enumerate(responses[:12]):
        got = response.json()["predictions"][0]["probabilities"]
        assert got == pytest.approx(expected.iloc[i].to_dict(), rel=1e-5, abs=1e-6)


def test_batcher_isolates_a_failing_request():
    batches: list[int] = []

    def predict(parts: list[np.ndarray]) -> list[np.ndarray]:
        batches.append(len(parts))
        rows = np.concatenate(parts)
        if (rows < 0).any():
            raise ValueError("negative")
        return np.split(rows * 2, np.cumsum([len(p) for p in parts])[:-1])

    async def main():
        batcher = MicroBatcher(predict, max_size=64, max_wait_s=0.05)
        parts = [np.array([i, i + 0.5]) for i in range(4)] + [np.array([-1.0])]
        results = await asyncio.gather(*(batcher.predict(p) for p in parts), return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(main())
    for i in range(4):
        assert results[i].tolist() == [2 * i, 2 * i + 1]
    assert isinstance(results[4], ValueError)
    assert batches[0] == 5 and batches[1:] == [1] * 5  # one batch, then each part alone


# ----------------------------------------------------------------------------- processes
def test_serving_never_imports_training_code(lgb_bundle, record):
    code = f"""
import asyncio, json, sys
import httpx
from takeoff.serving import create_app

async def main():
    transport = httpx.ASGITransport(app=create_app({str(lgb_bundle)!r}))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/v1/predict", json={json.dumps(record)})

response = asyncio.run(main())
assert response.status_code == 200, response.text
print(json.dumps(sorted(m for m in sys.modules if m.startswith("takeoff"))))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "takeoff.serving.app" in loaded
    for forbidden in ("takeoff.pipelines.prediction.train", "takeoff.pipelines.prediction.automl",
                      "takeoff.pipelines.prediction.prepare", "takeoff.training.loop", "takeoff.data.checks",
                      "takeoff.evaluation.report"):
        assert forbidden not in loaded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cli(bundle, port: int, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TAKEOFF_API_KEY"}
    log = tempfile.TemporaryFile()  # not a pipe: a full pipe would block the server's logging
    proc = subprocess.Popen([sys.executable, "-m", "takeoff.cli", "serve", str(bundle), "--port", str(port), *args],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.seek(0)
            raise AssertionError(f"server did not start: {log.read().decode(errors='replace')[-2000:]}")
        time.sleep(0.2)


def test_sigterm_finishes_the_request_in_flight(mlp_bundle, credit_rows):
    port = _free_port()
    proc = _start_cli(mlp_bundle, port)
    try:
        rows = records(pd.concat([credit_rows] * 50))  # 10,000 records
        body = json.dumps({"records": rows}).encode()
        head = (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(head + body[: len(body) // 2])
            time.sleep(0.5)  # the request is in flight: headers and half the body received
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            sock.sendall(body[len(body) // 2:])
            reply = b""
            while chunk := sock.recv(1 << 16):
                reply += chunk
        status, _, payload = reply.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 200"), reply[:500]
        assert len(json.loads(payload)["predictions"]) == 10_000
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.slow
def test_workers_share_the_port_answer_fast_and_stop_cleanly(request, model_dir, record):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow (starts three processes): opt in with -m slow")
    port = _free_port()
    proc = _start_cli(model_dir, port, "--workers", "2", "--default", "credit")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as client:
            assert client.post("/v1/predict", json=record).status_code == 200
            started = time.perf_counter()
            for _ in range(20):
                assert client.get("/healthz").status_code == 200
            # ~40 ms each when the shared socket's connections lack TCP_NODELAY (see server._run_workers)
            assert (time.perf_counter() - started) / 20 < 0.02
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
