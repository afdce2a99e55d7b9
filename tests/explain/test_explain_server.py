"""`POST /v1/explain` on a real server on 127.0.0.1: the top attributions of one record, the
same validation errors as predict, and a clear 4xx for models that have nothing to explain."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pandas as pd
import pytest

import takeoff

TIMEOUT = httpx.Timeout(60.0)
RECORD = {"x0": 1.3, "n1": 0.2, "n2": None, "n3": -0.4, "c": "b"}


def post(url: str, **kwargs) -> httpx.Response:
    return httpx.post(url, timeout=TIMEOUT, **kwargs)


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "fields"} and error["message"]
    return error


@pytest.fixture(scope="module")
def url(serve, lgb_one, datasets):
    ratings = pd.read_csv(datasets / "movielens_ratings.csv", nrows=3000)
    movies = takeoff.train(ratings, task="recommend", user="userId", item="movieId", rating="rating",
                           time_column="timestamp", family="itemknn", time_budget=20, seed=0)
    return serve({"lgb": lgb_one, "movies": movies}, default_model="lgb")


def test_explain_returns_the_top_attributions(url):
    response = post(f"{url}/v1/explain", json={"record": RECORD, "top": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    predicted = post(f"{url}/v1/predict", json=RECORD).json()["predictions"][0]
    assert body["model"] == "lgb" and body["task"] == "binary" and body["method"] == ["treeshap"]
    assert body["prediction"] == predicted["prediction"] == "yes"
    assert body["output"] == pytest.approx(predicted["probabilities"]["yes"])
    assert body["explained"] == "probability of 'yes'"
    assert [a["column"] for a in body["attributions"]][0] == "x0" and len(body["attributions"]) == 3
    top = body["attributions"][0]
    assert set(top) == {"column", "value", "attribution"} and top["value"] == 1.3 and top["attribution"] > 0.1


@pytest.mark.parametrize("record", [
    {k: v for k, v in RECORD.items() if k != "n3"},  # a missing field
    {**RECORD, "x0": "not a number"},                 # a value that does not parse
])
def test_a_bad_record_gets_the_same_422_as_predict(url, record):
    explained = error_of(post(f"{url}/v1/explain", json={"record": record}), 422)
    predicted = error_of(post(f"{url}/v1/predict", json=record), 422)
    assert explained == predicted and explained["fields"]


def test_bad_requests_and_wrong_models_are_clear_4xx(url):
    assert error_of(post(f"{url}/v1/explain", json={"record": RECORD, "top": 0}), 422)["fields"][0]["field"] == "top"
    assert error_of(post(f"{url}/v1/explain", json={"rows": [RECORD]}), 422)["fields"]
    assert error_of(post(f"{url}/v1/explain", content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert error_of(post(f"{url}/v1/explain", content=b"x0=1", headers={"content-type": "text/plain"}), 415)
    error = error_of(post(f"{url}/v1/models/movies/explain", json={"record": RECORD}), 409)
    assert error["code"] == "wrong_task" and "recommender" in error["message"]
    assert error_of(post(f"{url}/v1/models/nope/explain", json={"record": RECORD}), 404)["code"] == "model_not_found"


def test_explain_imports_its_code_only_when_asked(lgb_one):
    """A server that predicts never loads takeoff.explain; explaining trees loads neither torch nor Captum."""
    code = f"""
import asyncio, json, sys
import httpx
from takeoff.serving import create_app

def loaded():
    return sorted(m for m in sys.modules if m.startswith(("takeoff.explain", "captum", "torch")))

async def main():
    app = create_app({str(lgb_one.path)!r})
    steps = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for route, body in (("/v1/predict", RECORD), ("/v1/explain", {{"record": RECORD}})):
            response = await client.post(route, json=body)
            assert response.status_code == 200, response.text
            steps.append(loaded())
    return steps

RECORD = {RECORD!r}
print(json.dumps(asyncio.run(main())))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    after_predict, after_explain = json.loads(proc.stdout.strip().splitlines()[-1])
    assert after_predict == []
    assert "takeoff.explain" in after_explain and not [m for m in after_explain if m.startswith(("captum", "torch"))]
