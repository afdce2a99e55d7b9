"""`takeoff train --task recommend`, `takeoff recommend`, and the other commands on a
recommender bundle, as a user runs them: real MovieLens files, real bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app

ROWS = 12_000  # the first ratings of the file


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def ratings_csv(datasets, tmp_path_factory) -> tuple[Path, Path]:
    """(training ratings, each user's last rating held out of them)."""
    df = pd.read_csv(datasets / "movielens_ratings.csv", nrows=ROWS)
    last = df.sort_values("timestamp", kind="stable").groupby("userId").tail(1)
    folder = tmp_path_factory.mktemp("ratings")
    df.drop(index=last.index).to_csv(folder / "ratings.csv", index=False)
    last.to_csv(folder / "last.csv", index=False)
    return folder / "ratings.csv", folder / "last.csv"


@pytest.fixture(scope="module")
def bundle(ratings_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "movies"
    result = run("train", ratings_csv[0], "--task", "recommend", "--user", "userId", "--item", "movieId",
                 "--rating", "rating", "--time", "timestamp", "--family", "itemknn", "--time-budget", 20,
                 "--out", out, "--seed", 0)
    assert result.exit_code == 0, result.output
    assert "ndcg@10" in result.output and "hr@10" in result.output and f"bundle: {out}" in result.output
    assert "model: itemknn" in result.output and "users" in result.output and "items" in result.output
    return out


@pytest.fixture(scope="module")
def model(bundle):
    return takeoff.load(bundle)


def test_train_writes_a_recommender_bundle(bundle, model):
    manifest = json.loads((bundle / "takeoff.json").read_text())
    assert manifest["task"]["kind"] == "recommend" and manifest["family"] == "itemknn"
    assert manifest["recommend"] == {"user": "userId", "item": "movieId", "rating": "rating", "time": "timestamp", "k": 10}
    assert (bundle / "report.html").exists()
    assert model.n_users > 50 and model.n_items > 1000


def test_task_is_inferred_from_user_and_item_and_items_table(ratings_csv, tmp_path):
    df = pd.read_csv(ratings_csv[0])
    df[["userId", "movieId", "rating"]].to_csv(tmp_path / "log.csv", index=False)
    df[["movieId", "title", "genres"]].drop_duplicates("movieId").to_csv(tmp_path / "movies.csv", index=False)
    out = tmp_path / "popular"
    result = run("train", tmp_path / "log.csv", "--user", "userId", "--item", "movieId", "--items", tmp_path / "movies.csv",
                 "--family", "popular", "--time-budget", 10, "--out", out)
    assert result.exit_code == 0, result.output
    assert "model: popular" in result.output
    assert json.loads((out / "takeoff.json").read_text())["task"]["kind"] == "recommend"


def test_recommend_prints_a_table(bundle, model):
    user = model.log.users[0]
    result = run("recommend", bundle, "--user", user, "-k", 5)
    assert result.exit_code == 0, result.output
    assert f"top 5 for user {user}" in result.stdout and "movieId" in result.stdout and "score" in result.stdout
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.stdout.splitlines() if "│" in line]
    rows = [c for c in cells if c and c[0].isdigit()]  # a long title may wrap onto a line of its own
    expected = model.recommend(user, k=5)
    assert [(int(c[0]), int(c[1]), float(c[2])) for c in rows] == [
        (rank, item, pytest.approx(score, abs=1e-4)) for rank, (item, score) in enumerate(zip(expected.items, expected.scores), 1)]


def test_recommend_json_matches_the_python_api(bundle, model, ratings_csv):
    user = model.log.users[1]
    result = run("recommend", bundle, "--user", user, "-k", 6, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout is exactly one JSON object
    expected = model.recommend(user, k=6)
    assert data["user"] == int(user) and data["notes"] == []
    assert [i["item"] for i in data["items"]] == expected.items
    assert [i["score"] for i in data["items"]] == pytest.approx(expected.scores)
    titles = pd.read_csv(ratings_csv[0]).drop_duplicates("movieId").set_index("movieId")["title"]
    assert [i["label"] for i in data["items"]] == [titles[i] for i in expected.items]  # the title column, per item

    seen = json.loads(run("recommend", bundle, "--user", user, "-k", 6, "--json", "--include-seen").stdout)
    assert [i["item"] for i in seen["items"]] == model.recommend(user, k=6, exclude_seen=False).items

    stranger = json.loads(run("recommend", bundle, "--user", "nobody", "--json").stdout)
    assert len(stranger["items"]) == 10 and "not in the training data" in stranger["notes"][0]


def test_similar_items(bundle, model):
    item = model.log.items[0]
    data = json.loads(run("recommend", bundle, "--item", item, "-k", 4, "--json").stdout)
    assert data["item"] == int(item)
    assert [i["item"] for i in data["items"]] == model.similar_items(item, k=4).items
    result = run("recommend", bundle, "--item", item, "-k", 4)
    assert result.exit_code == 0 and f"4 items most like item {item}" in result.stdout


def test_evaluate_prints_ranking_metrics(bundle, ratings_csv, tmp_path):
    result = run("evaluate", bundle, ratings_csv[1], "--json", "--report", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["task"] == "recommend" and data["metrics"]["unknown_users"] == 0
    assert 0 <= data["metrics"]["ndcg@10"] <= data["metrics"]["hr@10"] <= 1
    assert (tmp_path / "r.html").stat().st_size > 1_000
    table = run("evaluate", bundle, ratings_csv[1])
    assert table.exit_code == 0 and "ndcg@10" in table.stdout and "hr@10" in table.stdout


def test_errors_are_one_clear_line(bundle, fixtures, ratings_csv, tmp_path):
    cases = [
        (("recommend", bundle), "--user ID", 2),
        (("recommend", bundle, "--user", 1, "--item", 2), "both were given", 2),
        (("recommend", bundle, "--item", "no-such-film"), "not in the training data", 3),
        (("recommend", fixtures / "bundle-v1", "--user", 1), "not a recommender", 2),
        (("recommend", tmp_path, "--user", 1), "takeoff.json", 4),
        (("predict", bundle, ratings_csv[1], "-o", tmp_path / "out.csv"), "takeoff recommend", 2),
        (("train", ratings_csv[0], "--task", "recommend", "--user", "userId", "--out", tmp_path / "x"), "--item", 2),
        (("train", ratings_csv[0], "--user", "userID", "--item", "movieId", "--out", tmp_path / "y"), "userId", 3),
    ]
    for args, needle, code in cases:  # 2 usage, 3 data, 4 bundle (docs/cli.md)
        result = run(*args)
        assert result.exit_code == code, (args, result.output)
        assert needle in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert run("recommend", bundle, "--user", 1, "-k", 0).exit_code == 2  # k below 1: a usage error
