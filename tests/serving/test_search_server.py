"""Search indexes behind `takeoff serve`: a real server on 127.0.0.1 over a directory holding a
FAQ search index (``faq``) next to a tabular bundle (``cancer``, the committed
``tests/fixtures/bundle-v1``), real HTTP."""

from __future__ import annotations

import shutil

import httpx
import pandas as pd
import pytest

import takeoff
from api_client import TIMEOUT, assert_error, post
from takeoff.pipelines.search import build_index

FAQ = pd.DataFrame({
    "question": ["How do I reset my password?", "How can I get a refund for my order?", "How long does shipping take?",
                 "How do I cancel my subscription?", "Where can I download my invoices?",
                 "How can I change the email address on my account?"],
    "answer": ["Use 'Forgot password' on the sign-in page.", "Refunds reach your card within 5 days.",
               "3 to 5 working days.", "Account > Subscription > Cancel plan.", "Account > Billing > Invoices.",
               "Edit it in Account settings."],
    "url": [f"https://help.example.com/{i}" for i in range(6)],
})


@pytest.fixture(scope="module")
def models(fixtures, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving-search") / "models"
    build_index(FAQ, text="question", answer="answer", out=root / "faq", embed_encoder=False)
    shutil.copytree(fixtures / "bundle-v1", root / "cancer")
    return root


@pytest.fixture(scope="module")
def index(models):
    return takeoff.load(models / "faq")


@pytest.fixture(scope="module")
def url(start_server, models) -> str:
    return start_server(models, max_records=5)  # no --default: each route takes the only model of its task


def test_search_matches_the_python_api(url, index):
    body = post(f"{url}/v1/search", json={"query": "I forgot my login secret", "k": 3}).json()
    assert body["model"] == "faq" and body["version"] == index.version
    [result] = body["results"]
    assert result["query"] == "I forgot my login secret"
    assert result["hits"] == index.search("I forgot my login secret", k=3)
    assert result["hits"][0]["answer"] == FAQ["answer"][0] and result["hits"][0]["url"].endswith("/0")

    queries = ["I want my money back", "when will my parcel arrive?"]
    named = post(f"{url}/v1/models/faq/search", json={"queries": queries}).json()
    assert [r["query"] for r in named["results"]] == queries
    assert [r["hits"] for r in named["results"]] == index.search_batch(queries, k=5)
    assert [r["hits"][0]["row"] for r in named["results"]] == [1, 2]


def test_the_index_is_listed_next_to_the_table_model(url):
    listed = {m["name"]: m for m in httpx.get(f"{url}/v1/models", timeout=TIMEOUT).json()["models"]}
    assert listed["faq"]["task"] == "search" and listed["faq"]["rows"] == len(FAQ)
    assert listed["faq"]["encoder"] == "sentence-transformers/all-MiniLM-L6-v2" and listed["faq"]["default"]
    assert listed["cancer"]["task"] == "binary" and listed["cancer"]["default"]
    detail = httpx.get(f"{url}/v1/models/faq", timeout=TIMEOUT).json()
    assert detail["columns"] == {"text": "question", "answer": "answer"} and detail["dim"] == 384
    paths = httpx.get(f"{url}/openapi.json", timeout=TIMEOUT).json()["paths"]
    assert "/v1/search" in paths and "/v1/models/{name}/search" in paths


def test_the_table_model_still_predicts(url, fixtures):
    rows = pd.read_csv(fixtures / "bundle-v1-rows.csv").head(2)
    records = [{k: v for k, v in r.items() if pd.notna(v)} for r in rows.to_dict(orient="records")]
    response = post(f"{url}/v1/predict", json={"records": records})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "cancer" and len(response.json()["predictions"]) == 2


@pytest.mark.parametrize("body, field", [
    ({}, "query"),
    ({"query": "a", "queries": ["b"]}, "queries"),
    ({"query": ""}, "query"),
    ({"query": 3}, "query"),
    ({"queries": []}, "queries"),
    ({"queries": ["ok", 5]}, "queries[1]"),
    ({"query": "refund", "k": 0}, "k"),
    ({"query": "refund", "k": "5"}, "k"),
    ({"query": "refund", "top": 5}, "top"),
])
def test_bad_bodies_name_the_field(url, body, field):
    error = assert_error(post(f"{url}/v1/search", json=body), 422)
    assert field in [f["field"] for f in error["fields"]], error


def test_unreadable_and_oversized_requests(url):
    assert_error(post(f"{url}/v1/search", content=b"{not json", headers={"content-type": "application/json"}), 400,
                 "invalid_json")
    assert_error(post(f"{url}/v1/search", content=b"query=x", headers={"content-type": "text/plain"}), 415)
    assert_error(post(f"{url}/v1/search", json=["a list"]), 422)
    assert_error(post(f"{url}/v1/search", json={"queries": ["q"] * 6}), 413, "too_many_records")
    assert_error(post(f"{url}/v1/models/nope/search", json={"query": "x"}), 404, "model_not_found")


def test_wrong_task_is_a_409(url):
    error = assert_error(post(f"{url}/v1/models/cancer/search", json={"query": "refund"}), 409, "wrong_task")
    assert "not a search index" in error["message"]
    error = assert_error(post(f"{url}/v1/models/faq/predict", json={"records": [{"x": 1}]}), 409, "wrong_task")
    assert "/v1/models/faq/search" in error["message"]
    assert_error(post(f"{url}/v1/models/faq/recommend", json={"user": 1}), 409, "wrong_task")
