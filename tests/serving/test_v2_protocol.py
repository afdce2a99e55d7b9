"""The Open Inference Protocol (KServe v2) routes on a real server: the protocol's JSON shapes
(health, server and model metadata, inference request and response, the error object), written
here from the protocol's text, answered by real bundles; the same auth, limits and metrics as /v1."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

import takeoff
from api_client import get, post


@pytest.fixture(scope="module")
def credit_model(lgb_bundle):
    return takeoff.load(lgb_bundle)


@pytest.fixture(scope="module")
def cancer(fixtures, datasets):
    """The committed all-numeric bundle (breast cancer) and three rows of its table."""
    rows = pd.read_csv(datasets / "breast_cancer.csv").drop(columns=["diagnosis"]).iloc[[0, 1, 300]].reset_index(drop=True)
    return takeoff.load(fixtures / "bundle-v1"), rows


def v2_error(response, status: int) -> str:
    """The protocol's error object: ``{"error": "<message>"}`` and nothing else."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def column_tensors(model, rows: pd.DataFrame) -> list[dict]:
    """One tensor per input field, datatype by the field's kind, as the metadata lists them."""
    tensors = []
    for field in model.input_fields():
        values = json.loads(rows[field["name"]].to_json(orient="values"))
        datatype = {"numeric": "FP64", "boolean": "BOOL"}.get(field["kind"], "BYTES")
        if datatype == "BYTES":
            values = [None if v is None else str(v) for v in values]
        if datatype == "BOOL":  # the table says yes/no
            values = [None if v is None else str(v).lower() in ("yes", "true", "1") for v in values]
        tensors.append({"name": field["name"], "shape": [len(values)], "datatype": datatype, "data": values})
    return tensors


def test_health_and_metadata(server_url, credit_model):
    assert get(f"{server_url}/v2/health/live").json() == {"live": True}
    assert get(f"{server_url}/v2/health/ready").json() == {"ready": True}
    server = get(f"{server_url}/v2").json()
    assert server["name"] == "takeoff" and server["version"] == takeoff.__version__ and server["extensions"] == []
    assert get(f"{server_url}/v2/models/credit/ready").json() == {"name": "credit", "ready": True}

    meta = get(f"{server_url}/v2/models/credit").json()
    assert set(meta) == {"name", "versions", "platform", "inputs", "outputs"}
    assert meta["name"] == "credit" and meta["versions"] == [credit_model.version]
    assert [t["name"] for t in meta["inputs"]] == [f["name"] for f in credit_model.input_fields()]
    kinds = {f["name"]: f["kind"] for f in credit_model.input_fields()}
    assert {t["name"]: t["datatype"] for t in meta["inputs"]} == {
        n: {"numeric": "FP64", "boolean": "BOOL"}.get(k, "BYTES") for n, k in kinds.items()}
    assert all(t["shape"] == [-1] for t in meta["inputs"])
    assert meta["outputs"] == [{"name": "prediction", "datatype": "BYTES", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
                               {"name": "classes", "datatype": "BYTES", "shape": [2]}]
    versioned = get(f"{server_url}/v2/models/credit/versions/{credit_model.version}").json()
    assert versioned == meta

    assert "no model named 'nope'" in v2_error(get(f"{server_url}/v2/models/nope"), 404)
    assert "no route GET /v2/nothing" in v2_error(get(f"{server_url}/v2/nothing"), 404)
    assert "no version 'v9'" in v2_error(get(f"{server_url}/v2/models/credit/versions/v9/ready"), 404)


def test_not_ready_without_models(start_server):
    url = start_server({})
    response = get(f"{url}/v2/health/ready")
    assert response.status_code == 400 and response.json() == {"ready": False}  # the protocol: 4xx is false
    assert get(f"{url}/v2/health/live").json() == {"live": True}


def test_infer_named_columns_matches_the_python_api(server_url, credit_model, credit_rows):
    rows = credit_rows.head(5)
    request = {"id": "42", "inputs": column_tensors(credit_model, rows)}
    response = post(f"{server_url}/v2/models/credit/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "credit" and body["model_version"] == credit_model.version and body["id"] == "42"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert list(outputs) == ["prediction", "probabilities", "classes"]
    assert outputs["prediction"]["shape"] == [5] and outputs["prediction"]["datatype"] == "BYTES"
    assert outputs["prediction"]["data"] == credit_model.predict(rows).tolist()
    classes = outputs["classes"]["data"]
    assert outputs["classes"]["shape"] == [2] and sorted(classes) == ["bad", "good"]
    probabilities = outputs["probabilities"]
    assert probabilities["shape"] == [5, 2] and probabilities["datatype"] == "FP64"
    expected = credit_model.predict_proba(rows)[classes].to_numpy()
    np.testing.assert_allclose(np.reshape(probabilities["data"], (5, 2)), expected, rtol=1e-9, atol=1e-9)

    # nested data ([N, 1] columns) and only the requested output, as in the protocol's example
    for tensor in request["inputs"]:
        tensor["shape"], tensor["data"] = [5, 1], [[v] for v in tensor["data"]]
    request["outputs"] = [{"name": "probabilities"}]
    body = post(f"{server_url}/v2/models/credit/infer", json=request).json()
    assert [o["name"] for o in body["outputs"]] == ["probabilities"]
    np.testing.assert_allclose(np.reshape(body["outputs"][0]["data"], (5, 2)), expected, rtol=1e-9, atol=1e-9)


def test_infer_one_tensor_fp32_and_bytes(start_server, cancer, credit_model, credit_rows, server_url):
    model, rows = cancer
    url = start_server({"cancer": model})
    names = [f["name"] for f in model.input_fields()]
    values = rows[names].to_numpy(dtype=np.float32)
    # the shape of the protocol's sample request: one "input-0" tensor of FP32 rows
    request = {"inputs": [{"name": "input-0", "shape": list(values.shape), "datatype": "FP32", "data": values.tolist()}]}
    body = post(f"{url}/v2/models/cancer/infer", json=request).json()
    outputs = {o["name"]: o for o in body["outputs"]}
    expected = model.predict(pd.DataFrame(values.astype(float), columns=names)).tolist()
    assert outputs["prediction"]["data"] == expected and len(body["id"]) > 0

    # a table of mixed kinds as one BYTES tensor, values as strings, in the metadata's order
    fields = [f["name"] for f in credit_model.input_fields()]
    table = credit_rows.head(3)[fields]
    data = [[None if pd.isna(v) else str(v) for v in row] for row in table.itertuples(index=False)]
    request = {"inputs": [{"name": "rows", "shape": [3, len(fields)], "datatype": "BYTES", "data": data}]}
    body = post(f"{server_url}/v2/models/credit/infer", json=request).json()
    assert body["outputs"][0]["data"] == credit_model.predict(credit_rows.head(3)).tolist()

    wrong = {"inputs": [{"name": "rows", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    message = v2_error(post(f"{url}/v2/models/cancer/infer", json=wrong), 400)
    assert f"takes {len(names)} inputs" in message and names[0] in message


def test_the_protocols_own_example_gets_its_error_object(server_url, credit_model, credit_rows):
    # the example request of the protocol's text, verbatim: its tensors are not this model's
    example = {"id": "42", "inputs": [{"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
                                      {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]}],
               "outputs": [{"name": "output0"}]}
    assert "has 1 values; its shape [3] needs 3" in v2_error(post(f"{server_url}/v2/models/credit/infer", json=example), 400)
    example["inputs"][1]["data"] = [True, False, True]
    assert "shape [2, 2]" in v2_error(post(f"{server_url}/v2/models/credit/infer", json=example), 400)

    inputs = column_tensors(credit_model, credit_rows.head(2))
    missing = v2_error(post(f"{server_url}/v2/models/credit/infer", json={"inputs": inputs[1:]}), 400)
    assert repr(inputs[0]["name"]) in missing and "missing" in missing
    unknown = v2_error(post(f"{server_url}/v2/models/credit/infer",
                            json={"inputs": inputs, "outputs": [{"name": "output0"}]}), 400)
    assert "'output0'" in unknown and "prediction, probabilities, classes" in unknown
    numeric = next(t for t in inputs if t["datatype"] == "FP64")
    numeric["data"] = ["a lot", 1.0]
    assert "holds \"a lot\"" in v2_error(post(f"{server_url}/v2/models/credit/infer", json={"inputs": inputs}), 400)
    numeric["datatype"], numeric["data"] = "BYTES", ["a lot", "1.0"]
    assert f"records[0].{numeric['name']}" in v2_error(post(f"{server_url}/v2/models/credit/infer", json={"inputs": inputs}), 422)
    assert v2_error(post(f"{server_url}/v2/models/credit/infer", content=b"{", headers={"content-type": "application/json"}), 400)
    odd = {"inputs": [{"name": "", "shape": [], "datatype": {}, "parameters": None, "data": []}]}  # found by schemathesis
    assert "datatype {}" in v2_error(post(f"{server_url}/v2/models/credit/infer", json=odd), 400)


def test_neural_model_auth_limits_and_metrics(start_server, model_dir, credit_rows, credit_model):
    url = start_server(model_dir, default_model="credit", api_key="k", max_records=4, max_cells=60)
    key = {"Authorization": "Bearer k"}
    inputs = column_tensors(credit_model, credit_rows.head(3))
    assert "API key" in v2_error(post(f"{url}/v2/models/credit-mlp/infer", json={"inputs": inputs}), 401)
    assert get(f"{url}/v2/health/live").status_code == 200 and get(f"{url}/v2/health/ready").status_code == 200
    assert get(f"{url}/v2/models/credit", headers={}).status_code == 401

    before = _count(get(f"{url}/metrics", headers=key).text, "takeoff_rows_predicted_total", model="credit-mlp")
    body = post(f"{url}/v2/models/credit-mlp/infer", json={"inputs": inputs}, headers=key).json()
    assert body["outputs"][0]["shape"] == [3]  # micro-batched: the MLP's requests go through the batcher
    text = get(f"{url}/metrics", headers=key).text
    assert _count(text, "takeoff_rows_predicted_total", model="credit-mlp") - before == 3
    assert _count(text, "takeoff_http_requests_total", method="POST", route="/v2/models/{name}/infer", status="200") == 1

    many = column_tensors(credit_model, credit_rows.head(5))
    assert "limit is 4" in v2_error(post(f"{url}/v2/models/credit/infer", json={"inputs": many}, headers=key), 413)
    wide = column_tensors(credit_model, credit_rows.head(4))  # 4 rows x 13 fields = 52 values: under 60
    assert post(f"{url}/v2/models/credit/infer", json={"inputs": wide}, headers=key).status_code == 200
    wide.append({"name": "extra", "shape": [4, 3], "datatype": "FP64", "data": [1.0] * 12})
    assert "max_cells" in v2_error(post(f"{url}/v2/models/credit/infer", json={"inputs": wide}, headers=key), 413)


def _count(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0
