"""A multilabel bundle (telco add-on services, four 0/1 columns) behind a real HTTP server:
each prediction is a list of labels with every label's own probability."""

from __future__ import annotations

import pandas as pd
import pytest

import takeoff
from api_client import post

SERVICES = ["online_security", "tech_support", "streaming_tv", "streaming_movies"]


@pytest.fixture(scope="module")
def services(datasets, tmp_path_factory):
    df = pd.read_csv(datasets / "telco_churn.csv")
    df = df[df["internet_service"] != "No"].sample(600, random_state=1).reset_index(drop=True)
    for column in SERVICES:
        df[column] = (df[column] == "Yes").astype(int)
    df = df[["tenure", "monthly_charges", "contract", "internet_service"] + SERVICES]
    out = tmp_path_factory.mktemp("multilabel-server") / "services"
    takeoff.train(df.iloc[:500], target=SERVICES, family="lightgbm", time_budget=15, seed=0, out=out)
    return out, df.iloc[500:].drop(columns=SERVICES)


def test_server_answers_label_lists(services, start_server):
    out, rows = services
    base = start_server(out)
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows.head(5).to_dict("records")]
    answer = post(base + "/v1/predict", json={"records": records})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["task"] == "multilabel"
    expected = takeoff.load(out).predict(records)
    for prediction, want in zip(body["predictions"], expected):
        assert isinstance(prediction["prediction"], list)
        assert prediction["prediction"] == (want.split("|") if want else [])
        assert set(prediction["probabilities"]) == set(SERVICES)
    info = post(base + "/v1/explain", json={"record": records[0]})
    assert info.status_code == 200, info.text
    attributions = info.json()
    assert attributions["task"] == "multilabel" and attributions["prediction"] == body["predictions"][0]["prediction"]

    # the Open Inference Protocol: one BOOL column per label, in the order of `classes`
    fields = [f["name"] for f in takeoff.load(out).input_fields()]
    tensors = [{"name": n, "shape": [5], "datatype": "BYTES" if isinstance(records[0][n], str) else "FP64",
                "data": [r[n] for r in records]} for n in fields]
    v2 = post(base + "/v2/models/services/infer", json={"inputs": tensors})
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    classes = outputs["classes"]["data"]
    assert outputs["prediction"]["shape"] == [5, len(SERVICES)] and outputs["prediction"]["datatype"] == "BOOL"
    flags = outputs["prediction"]["data"]
    for i, prediction in enumerate(body["predictions"]):
        assert {c for j, c in enumerate(classes) if flags[i * len(classes) + j]} == set(prediction["prediction"])
    assert outputs["probabilities"]["shape"] == [5, len(SERVICES)]
