"""The lite runtime: ONNX bundles predicted and served with torch, LightGBM, scikit-learn,
matplotlib and the rest refused at import (a subprocess whose ``sys.meta_path`` says no), and
an ONNX bundle served with concurrent requests batched together."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest

import takeoff

TOLERANCE = 1e-4
REFUSED = ("torch", "lightgbm", "sklearn", "scipy", "matplotlib", "captum", "transformers", "tokenizers", "onnx",
           "onnxmltools", "onnxscript", "implicit", "peft")

@pytest.fixture(scope="module")
def models_dir(onnx_lgb_bundle, onnx_mlp_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("lite") / "models"
    shutil.copytree(onnx_lgb_bundle, root / "credit")
    shutil.copytree(onnx_mlp_bundle, root / "credit-mlp")
    return root


def test_predict_and_serve_without_the_training_libraries(models_dir, onnx_lgb, onnx_mlp, onnx_rows, run_lite, tmp_path):
    rows = onnx_rows.drop(columns=["Status"])
    rows_csv, labelled_csv = tmp_path / "rows.csv", tmp_path / "labelled.csv"
    rows.to_csv(rows_csv, index=False)
    onnx_rows.to_csv(labelled_csv, index=False)
    result = run_lite(REFUSED, models_dir, rows_csv, tmp_path, labelled_csv)
    assert result["loaded"] == [] and result["attempts"] == [], result["attempts"]  # not even tried
    assert "pip install 'takeoff[train]'" in result["train_error"]
    # `takeoff inspect` and `takeoff evaluate` need no scikit-learn either (issue 25)
    assert result["inspect"]["rows"] == len(onnx_rows) and result["inspect"]["task"]["kind"] == "binary"
    originals = {"credit": onnx_lgb, "credit-mlp": onnx_mlp}
    saved = pd.read_csv(rows_csv)  # the rows as the subprocess read them
    for name, original in originals.items():
        api = result["api"][name]
        expected = original.predict_proba(saved)
        assert api["runtime"] == "onnx"
        np.testing.assert_allclose(np.asarray(api["outputs"]), expected.to_numpy(), atol=TOLERANCE)
        assert api["labels"] == original.predict(saved.head(8)).tolist()
        for kind in ("batch", "cli"):
            written = pd.read_csv(tmp_path / f"{name}-{kind}.csv")
            assert written["prediction"].tolist() == original.predict(saved).tolist()
            np.testing.assert_allclose(written["proba_bad"], expected["bad"], atol=TOLERANCE)
        labelled = pd.read_csv(labelled_csv)
        assert result["evaluate"][name]["metrics"]["roc_auc"] == pytest.approx(
            takeoff.load(models_dir / name).evaluate(labelled)["roc_auc"], abs=1e-9)
        body = result["http"][name]
        assert body["model"] == name and [p["prediction"] for p in body["predictions"]] == api["labels"]
        got = [p["probabilities"]["bad"] for p in body["predictions"]]
        np.testing.assert_allclose(got, expected["bad"].head(8), atol=TOLERANCE)


def test_an_onnx_bundle_batches_concurrent_requests(onnx_mlp_bundle, onnx_mlp, onnx_rows):
    import uvicorn

    from takeoff.serving import ServeSettings, create_app

    model = takeoff.load(onnx_mlp_bundle)
    calls: list[int] = []
    real = model.predict_features

    def spy(raw):
        calls.append(len(raw))
        return real(raw)

    model.predict_features = spy
    app = create_app({"credit": model}, ServeSettings(api_key=None, batch_max_wait_ms=100, batch_max_size=64))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        rows = onnx_rows.drop(columns=["Status"]).head(12)
        records = json.loads(rows.to_json(orient="records"))
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda r: client.post(f"http://127.0.0.1:{port}/v1/predict", json=r), records))
            detail = client.get(f"http://127.0.0.1:{port}/v1/models/credit").json()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert [r.status_code for r in responses] == [200] * 12, [r.text for r in responses]
    assert sum(calls) == 12 and max(calls) > 1, calls  # RawInputs of several requests, concatenated
    expected = onnx_mlp.predict_proba(rows)
    for i, response in enumerate(responses):
        got = response.json()["predictions"][0]["probabilities"]
        assert got == pytest.approx(expected.iloc[i].to_dict(), abs=TOLERANCE)
    assert [m["family"] for m in detail["members"]] == ["mlp"] and detail["metrics"] == onnx_mlp.metrics
