"""Recommenders behind `takeoff serve`: real servers on 127.0.0.1, real HTTP, a real bundle.

The server runs over ``rec_dir`` (conftest): ``movies``, an itemknn recommender trained on
20,000 MovieLens ratings, next to ``cancer``, a tabular bundle, so both kinds share a server.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

import takeoff
from api_client import assert_error, get, post



def listed(answer: dict) -> tuple[list, list]:
    return [i["item"] for i in answer["items"]], [i["score"] for i in answer["items"]]


@pytest.fixture(scope="module")
def model(rec_bundle):
    return takeoff.load(rec_bundle)


@pytest.fixture(scope="module")
def url(start_server, rec_dir) -> str:
    return start_server(rec_dir)  # no --default: each route takes the only model of its task


@pytest.fixture(scope="module")
def users(model) -> list[int]:
    return [int(u) for u in model.log.users[:4]]


# ----------------------------------------------------------------------------- round trips
def test_recommend_matches_the_python_api(url, model, users, ratings):
    user = users[0]
    expected = model.recommend(user, k=7)
    body = post(f"{url}/v1/recommend", json={"user": user, "k": 7}).json()
    assert body["model"] == "movies" and body["version"] == model.version
    [answer] = body["recommendations"]
    assert answer["user"] == user and answer["notes"] == expected.notes == []
    items, scores = listed(answer)
    assert items == expected.items and len(items) == 7
    assert scores == pytest.approx(expected.scores, rel=1e-12)
    seen = set(ratings.loc[ratings["userId"] == user, "movieId"])
    assert seen and not seen & set(items)  # exclude_seen is the default

    # the same user as a JSON string, by name, with the seen items allowed back in
    named = post(f"{url}/v1/models/movies/recommend", json={"user": str(user), "k": 7, "exclude_seen": False}).json()
    assert named["recommendations"][0]["user"] == str(user)
    assert listed(named["recommendations"][0])[0] == model.recommend(user, k=7, exclude_seen=False).items


def test_items_carry_their_titles(url, model, ratings, users):
    titles = ratings.drop_duplicates("movieId").set_index("movieId")["title"]
    answer = post(f"{url}/v1/recommend", json={"user": users[1], "k": 5}).json()["recommendations"][0]
    assert [i["label"] for i in answer["items"]] == [titles[i["item"]] for i in answer["items"]]
    detail = get(f"{url}/v1/models/movies").json()
    assert detail["item_label"] == "title"


def test_batch_of_users_in_request_order(url, model, users):
    asked = [users[2], str(users[0]), "someone-new", users[1]]
    body = post(f"{url}/v1/recommend", json={"users": asked, "k": 4}).json()
    assert [r["user"] for r in body["recommendations"]] == asked
    expected = model.recommend_batch(asked, k=4)
    for got, want in zip(body["recommendations"], expected):
        assert listed(got)[0] == want.items and got["notes"] == want.notes


def test_unknown_user_gets_popular_items_with_a_note(url, model):
    answer = post(f"{url}/v1/recommend", json={"user": "nobody-at-all", "k": 5}).json()["recommendations"][0]
    assert answer["user"] == "nobody-at-all"
    assert len(answer["notes"]) == 1 and "not in the training data" in answer["notes"][0]
    popular = model.recommend(10**9, k=5).items  # any unknown user gets the same list
    assert listed(answer)[0] == popular
    assert listed(answer)[1] == sorted(listed(answer)[1], reverse=True)


def test_features_of_new_users_reach_the_model(url, model):
    body = {"user": "newcomer", "k": 5, "features": {"favourite": "Horror"}}
    answer = post(f"{url}/v1/recommend", json=body)
    expected = model.recommend_batch(["newcomer"], k=5, features=[{"favourite": "Horror"}])[0]
    assert answer.status_code == 200, answer.text
    got = answer.json()["recommendations"][0]
    assert listed(got)[0] == expected.items and got["notes"] == expected.notes
    wrong = post(f"{url}/v1/recommend", json={"users": ["a", "b"], "features": [{"x": 1}]})
    assert wrong.status_code == 422 and wrong.json()["error"]["fields"][0]["field"] == "features"
    shape = post(f"{url}/v1/recommend", json={"users": ["a", "b"], "features": {"x": 1}})
    assert shape.status_code == 422 and "one dict (or null) per user" in shape.json()["error"]["message"]


def test_similar_items(url, model):
    item = int(model.log.items[0])
    expected = model.similar_items(item, k=6)
    for path, sent in ((f"{url}/v1/similar-items", item), (f"{url}/v1/models/movies/similar-items", str(item))):
        body = post(path, json={"item": sent, "k": 6}).json()
        assert body["model"] == "movies" and body["item"] == sent and body["version"] == model.version
        items, scores = listed(body)
        assert items == expected.items and item not in items and len(items) == 6
        assert scores == pytest.approx(expected.scores, rel=1e-12)
        assert all(isinstance(i["label"], str) for i in body["items"])


def test_the_largest_k(url, model, users):
    answer = post(f"{url}/v1/recommend", json={"user": users[0], "k": 1000}).json()["recommendations"][0]
    assert listed(answer)[0] == model.recommend(users[0], k=1000).items and len(answer["items"]) == 1000


# ----------------------------------------------------------------------------- bad input
RECOMMEND_BAD = [
    ({"k": 5}, "user"),
    ({"user": 1, "users": [2]}, "users"),
    ({"user": None, "users": None}, "user"),
    ({"user": 1, "k": 0}, "k"),
    ({"user": 1, "k": 1001}, "k"),
    ({"user": 1, "k": "ten"}, "k"),
    ({"user": 1, "k": 2.5}, "k"),
    ({"user": 1, "k": True}, "k"),
    ({"user": 1.5}, "user"),
    ({"user": True}, "user"),
    ({"user": ""}, "user"),
    ({"user": {"id": 1}}, "user"),
    ({"users": []}, "users"),
    ({"users": "1"}, "users"),
    ({"users": [1, None, 3]}, "users[1]"),
    ({"user": 1, "exclude_seen": "no"}, "exclude_seen"),
    ({"user": 1, "colour": "red"}, "colour"),
]


@pytest.mark.parametrize("body, field", RECOMMEND_BAD, ids=[json.dumps(b) for b, _ in RECOMMEND_BAD])
def test_bad_recommend_bodies_name_the_field(url, body, field):
    error = assert_error(post(f"{url}/v1/recommend", json=body), 422, "validation_error")
    assert field in [f["field"] for f in error["fields"]], error


SIMILAR_BAD = [({"k": 3}, "item"), ({"item": 1, "k": -1}, "k"), ({"item": None}, "item"), ({"item": [1]}, "item"),
               ({"item": 1, "user": 2}, "user")]


@pytest.mark.parametrize("body, field", SIMILAR_BAD, ids=[json.dumps(b) for b, _ in SIMILAR_BAD])
def test_bad_similar_items_bodies_name_the_field(url, body, field):
    error = assert_error(post(f"{url}/v1/similar-items", json=body), 422, "validation_error")
    assert field in [f["field"] for f in error["fields"]], error


def test_unknown_item_is_a_404_naming_the_field(url):
    error = assert_error(post(f"{url}/v1/models/movies/similar-items", json={"item": "no-such-film"}), 404, "item_not_found")
    assert error["fields"] == [{"field": "item", "problem": "not in the training data"}]
    assert "no-such-film" in error["message"]


def test_unreadable_bodies_and_methods(url):
    for path in ("/v1/recommend", "/v1/similar-items", "/v1/models/movies/recommend"):
        assert_error(post(f"{url}{path}", content=b'{"user": ', headers={"content-type": "application/json"}), 400, "invalid_json")
        assert_error(post(f"{url}{path}", content=b'{"user": NaN}', headers={"content-type": "application/json"}), 400, "invalid_json")
        assert_error(post(f"{url}{path}", json=[1, 2]), 422, "validation_error")
        assert_error(post(f"{url}{path}", content=b"user=1", headers={"content-type": "text/plain"}), 415)
        assert_error(get(f"{url}{path}"), 405, "method_not_allowed")


def test_limits_on_users_and_body(start_server, rec_dir):
    small = start_server(rec_dir, max_records=3, max_body_bytes=2_000)
    assert post(f"{small}/v1/recommend", json={"users": [1, 2, 3], "k": 2}).status_code == 200
    assert_error(post(f"{small}/v1/recommend", json={"users": [1, 2, 3, 4], "k": 2}), 413, "too_many_records")
    assert_error(post(f"{small}/v1/recommend", json={"user": "x" * 3_000}), 413, "payload_too_large")


# ----------------------------------------------------------------------------- task routing
def test_each_route_names_the_right_task(url, start_server, rec_dir, fixtures):
    error = assert_error(post(f"{url}/v1/models/movies/predict", json={"a": 1}), 409, "wrong_task")
    assert "/v1/models/movies/recommend" in error["message"]
    error = assert_error(post(f"{url}/v1/models/cancer/recommend", json={"user": 1}), 409, "wrong_task")
    assert "/v1/models/cancer/predict" in error["message"]
    assert_error(post(f"{url}/v1/models/cancer/similar-items", json={"item": 1}), 409, "wrong_task")
    assert_error(post(f"{url}/v1/models/nope/recommend", json={"user": 1}), 404, "model_not_found")

    # the tabular default still predicts beside the recommender
    csv = (fixtures / "bundle-v1-rows.csv").read_bytes()
    body = post(f"{url}/v1/predict", files={"file": ("rows.csv", csv)}).json()
    expected = pd.read_csv(fixtures / "bundle-v1-expected.csv")
    assert body["model"] == "cancer" and [p["prediction"] for p in body["predictions"]] == expected["prediction"].tolist()

    only_recs = start_server(rec_dir / "movies")
    assert "/recommend" in assert_error(post(f"{only_recs}/v1/predict", json={"a": 1}), 409, "wrong_task")["message"]
    only_table = start_server(fixtures / "bundle-v1")
    assert "/predict" in assert_error(post(f"{only_table}/v1/recommend", json={"user": 1}), 409, "wrong_task")["message"]


def test_several_recommenders_without_a_default(start_server, model):
    url = start_server({"a": model, "b": model})
    error = assert_error(post(f"{url}/v1/recommend", json={"user": 1}), 404, "no_default_model")
    assert error["models"] == ["a", "b"]
    assert post(f"{url}/v1/models/b/recommend", json={"user": 1}).status_code == 200
    chosen = start_server({"a": model, "b": model}, default_model="b")
    assert post(f"{chosen}/v1/recommend", json={"user": 1}).json()["model"] == "b"


# ----------------------------------------------------------------------------- metadata
def test_models_list_and_detail_describe_the_recommender(url, model):
    listing = {m["name"]: m for m in get(f"{url}/v1/models").json()["models"]}
    assert set(listing) == {"cancer", "movies"}
    movies = listing["movies"]
    assert movies["task"] == "recommend" and movies["family"] == "itemknn" and movies["default"] is True
    assert movies["users"] == model.n_users and movies["items"] == model.n_items
    assert listing["cancer"]["task"] == "binary" and listing["cancer"]["default"] is True
    detail = get(f"{url}/v1/models/movies").json()
    assert detail["task"] == "recommend" and detail["version"] == model.version and detail["k"] == 10
    assert detail["columns"] == {"user": "userId", "item": "movieId", "rating": "rating", "time": "timestamp"}
    assert detail["metrics"]["ndcg@10"] == pytest.approx(model.metrics["ndcg@10"])
    assert detail["example_users"] and detail["example_items"]
    report = get(url + detail["report_url"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert get(f"{url}/readyz").json() == {"status": "ready", "models": ["cancer", "movies"]}


def test_openapi_shows_the_request_models(url):
    schema = get(f"{url}/openapi.json").json()
    components = schema["components"]["schemas"]
    recommend = components["RecommendRequest"]
    assert {"user", "users", "k", "exclude_seen"} <= set(recommend["properties"])
    assert recommend["additionalProperties"] is False
    assert recommend["properties"]["k"]["maximum"] == 1000
    assert components["SimilarItemsRequest"]["required"] == ["item"]
    for path, ref in (("/v1/recommend", "RecommendRequest"), ("/v1/models/{name}/recommend", "RecommendRequest"),
                      ("/v1/similar-items", "SimilarItemsRequest"), ("/v1/models/{name}/similar-items", "SimilarItemsRequest")):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{ref}"}
    assert "RecommendResponse" in components and "SimilarItemsResponse" in components
    assert "/v1/models/cancer/predict" in schema["paths"] and "/v1/models/movies/predict" not in schema["paths"]
    assert get(f"{url}/docs").status_code == 200


def test_metrics_count_recommendations_served(url):
    def rows() -> float:
        for family in text_string_to_metric_families(get(f"{url}/metrics").text):
            for s in family.samples:
                if s.name == "takeoff_rows_predicted_total" and s.labels == {"model": "movies"}:
                    return s.value
        return 0.0

    before = rows()
    post(f"{url}/v1/recommend", json={"users": [1, 2, 3], "k": 2})
    post(f"{url}/v1/similar-items", json={"item": 1, "k": 2})
    post(f"{url}/v1/recommend", json={"user": 1, "k": 0})  # refused: not counted
    assert rows() - before == 4


def test_serving_a_recommender_never_imports_training_code(rec_bundle):
    code = f"""
import asyncio, json, sys
import httpx
from takeoff.serving import create_app

async def main():
    transport = httpx.ASGITransport(app=create_app({str(rec_bundle)!r}))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/v1/recommend", json={{"user": 1, "k": 3}})

response = asyncio.run(main())
assert response.status_code == 200, response.text
print(json.dumps(sorted(m for m in sys.modules if m.startswith("takeoff"))))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "takeoff.serving.recommend" in loaded and "takeoff.pipelines.recommendation.model" in loaded
    for forbidden in ("takeoff.pipelines.recommendation.train", "takeoff.pipelines.prediction.train",
                      "takeoff.pipelines.prediction.automl", "takeoff.pipelines.prediction.prepare",
                      "takeoff.training.loop", "takeoff.data.checks", "takeoff.evaluation.report", "takeoff.config"):
        assert forbidden not in loaded
