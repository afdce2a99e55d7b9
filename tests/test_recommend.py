"""Recommendation end to end: train on a real interaction log, the bundle, the answers, and
every kind of bad input the issue names."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.data.interactions import id_key, interactions_from_frame, leave_last_out
from takeoff.errors import ColumnNotFoundError, ConfigError, DataError
from takeoff.evaluation.ranking import ranking_metrics, top_k
from takeoff.pipelines.recommendation import RecommenderModel

COLUMNS = dict(task="recommend", user="userId", item="movieId", rating="rating", time_column="timestamp")


@pytest.fixture(scope="module")
def ratings(datasets) -> pd.DataFrame:
    """MovieLens ratings of the 120 most active users (~60k interactions), titles and genres."""
    df = pd.read_csv(datasets / "movielens_ratings.csv")
    active = df["userId"].value_counts().head(120).index
    return df[df["userId"].isin(active)].reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(ratings, tmp_path_factory):
    """auto over every recommender; two-tower (its epochs are the slow part, and it does not
    win here) trains two epochs so that the run ends well before its budget."""
    out = tmp_path_factory.mktemp("recs") / "bundle"
    model = takeoff.train(ratings, **COLUMNS, time_budget=40, out=out, family="auto", seed=0,
                          config={"recommenders": {"two-tower": {"max_epochs": 2}}})
    return model, out


# ----------------------------------------------------------------------------- data
def test_ids_are_keyed_by_their_text_and_duplicates_merge():
    df = pd.DataFrame({"u": [1, "1", 2, 2, 3, 1.0], "i": ["a", "b", "a", "c", "a", "a"],
                       "r": [5, 4, 3, None, 2, 1], "t": [1, 2, 3, 4, 5, 6]})
    log, notes = interactions_from_frame(df, "u", "i", "r", "t")
    assert log.users == ["1", "2", "3"] and log.items == ["a", "b", "c"]
    assert len(log) == 5  # (1, a) twice: merged, largest rating and latest time kept
    merged = np.flatnonzero((log.user_codes == 0) & (log.item_codes == 0))[0]
    assert log.weights[merged] == 5 and log.times[merged] == 6
    assert any("duplicate" in n for n in notes) and any("without a rating" in n for n in notes)
    assert id_key(7) == id_key(7.0) == id_key(" 7 ") == id_key(np.int64(7)) == "7"


def test_leave_last_out_holds_out_each_users_latest():
    df = pd.DataFrame({"u": [1, 1, 1, 2, 2, 3], "i": [1, 2, 3, 1, 4, 5], "t": [3, 1, 2, 5, 9, 1]})
    log, _ = interactions_from_frame(df, "u", "i", time="t")
    train, held = leave_last_out(log)
    pairs = {(log.users[u], log.items[i]) for u, i in zip(held.user_codes, held.item_codes)}
    assert pairs == {("1", "1"), ("2", "4")}  # user 3 has one interaction: kept for training
    assert len(train) + len(held) == len(log)


def test_ranking_metrics_by_hand():
    top = np.array([[3, 1, 2], [0, 2, 1], [1, 0, 3]])
    metrics = ranking_metrics(top, [{1}, {4}, {1}], n_items=5, k=3)
    assert metrics["hr@3"] == pytest.approx(2 / 3)
    assert metrics["ndcg@3"] == pytest.approx((1 / np.log2(3) + 0 + 1) / 3)
    assert metrics["map@3"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert metrics["coverage@3"] == pytest.approx(4 / 5)
    assert top_k(np.array([[0.1, 0.9, 0.5, 0.9]]), 3).tolist() == [[1, 3, 2]]


# ----------------------------------------------------------------------------- train and answer
def test_auto_keeps_the_family_that_ranks_best(trained):
    model, out = trained
    board = model.manifest["leaderboard"]
    assert model.manifest["family"] in board and {"popular", "itemknn"} <= set(board)
    best = max(board.values(), key=lambda m: m["ndcg@10"])
    assert board[model.manifest["family"]]["ndcg@10"] == best["ndcg@10"]
    assert board[model.manifest["family"]]["ndcg@10"] > board["popular"]["ndcg@10"]
    assert (out / "report.html").is_file() and "NDCG@10" in (out / "report.html").read_text()
    assert model.manifest["by_activity"] and model.items is not None  # title and genres were picked up
    assert set(model.items.categorical) == {"genres"} and set(model.items.text) == {"title"}


def test_bundle_round_trip_and_answers(trained, ratings):
    model, out = trained
    loaded = takeoff.load(out)
    assert isinstance(loaded, RecommenderModel) and loaded.version == model.version
    user = int(ratings["userId"].iloc[0])
    first, again = model.recommend(user, k=10), loaded.recommend(user, k=10)
    assert first.items == again.items and np.allclose(first.scores, again.scores)
    assert len(first) == 10 and first.scores == sorted(first.scores, reverse=True)
    seen = set(ratings.loc[ratings["userId"] == user, "movieId"])
    assert not seen & set(first.items)
    with_seen = loaded.recommend(user, k=10, exclude_seen=False)
    assert len(with_seen) == 10
    batch = loaded.recommend_batch([user, str(user), "no-such-user"], k=5)
    assert batch[0].items == batch[1].items == first.items[:5]  # "42" and 42 are the same user
    assert batch[2].notes and "not in the training data" in batch[2].notes[0]
    assert batch[2].items == loaded.recommend("someone-else", k=5).items  # popularity for everyone new
    similar = loaded.similar_items(ratings["movieId"].iloc[0], k=5)
    assert len(similar) == 5 and ratings["movieId"].iloc[0] not in similar.items
    assert json.dumps(similar.to_json())


def test_evaluate_on_held_out_rows_with_ids_as_strings(trained, ratings):
    model, _ = trained
    held = ratings.sort_values("timestamp").groupby("userId").tail(1).head(30)
    as_text = held.assign(userId=held["userId"].astype(str) + " ", movieId=held["movieId"].astype(str))
    metrics = model.evaluate(as_text)
    assert metrics["users"] == 30 and metrics["unknown_users"] == 0
    assert 0 <= metrics["ndcg@10"] <= metrics["hr@10"] <= 1


# ----------------------------------------------------------------------------- bad input
def test_edge_users_and_k(trained, ratings):
    model, _ = trained
    user = int(ratings["userId"].iloc[0])
    many = model.recommend(user, k=model.n_items + 50)
    assert len(many) < model.n_items and "only" in many.notes[0]
    with pytest.raises(DataError, match="k must be"):
        model.recommend(user, k=0)
    with pytest.raises(DataError, match="not in the training data"):
        model.similar_items("no-such-movie")


def test_a_user_who_has_seen_everything(tmp_path):
    df = pd.DataFrame({"u": [1, 1, 1, 2, 2, 3, 3], "i": ["a", "b", "c", "a", "b", "b", "c"]})
    model = takeoff.train(df, task="recommend", user="u", item="i", family="popular", time_budget=10)
    done = model.recommend(1, k=3)
    assert done.items == [] and "every item has been seen" in done.notes[0]
    assert len(model.recommend(1, k=3, exclude_seen=False)) == 3


@pytest.mark.parametrize("change, error, match", [
    (lambda d: d.assign(rating=d["rating"].where(d.index != 3, -1.0)), DataError, r"non-negative.*rows 3 with values -1.0"),
    (lambda d: d.assign(userId=d["userId"].where(d.index != 5)), DataError, r"user column .userId. is empty.*rows 5"),
    (lambda d: d.assign(timestamp=d["timestamp"].astype(object).where(d.index != 2, "soon")), DataError, "time column"),
    (lambda d: d.drop(columns=["movieId"]), ColumnNotFoundError, "movieId"),
])
def test_bad_interaction_tables_are_refused_and_nothing_is_written(ratings, tmp_path, change, error, match):
    bad = change(ratings.head(300).copy())
    out = tmp_path / "never"
    with pytest.raises(error, match=match):
        takeoff.train(bad, **COLUMNS, time_budget=10, out=out)
    assert not out.exists()


def test_missing_ratings_count_as_one_and_every_user_needs_history(ratings):
    df = ratings.head(400).assign(rating=lambda d: d["rating"].where(d.index % 7 != 0))
    model = takeoff.train(df, **COLUMNS, family="popular", time_budget=10)
    assert any("without a rating" in n for n in model.manifest["training"]["notes"])
    single = pd.DataFrame({"userId": [1, 2, 3], "movieId": [10, 11, 12]})
    with pytest.raises(DataError, match="more than one interaction"):
        takeoff.train(single, task="recommend", user="userId", item="movieId", time_budget=10)


def test_recommend_needs_user_and_item_columns(ratings):
    with pytest.raises(ConfigError, match="--user COLUMN --item COLUMN"):
        takeoff.train(ratings.head(50), task="recommend", time_budget=10)
    with pytest.raises(ConfigError, match="unknown recommender family|valid"):
        takeoff.train(ratings.head(50), **COLUMNS, family="lightgbm", time_budget=10)


def test_item_table_joins_across_id_types(ratings, tmp_path):
    items = ratings[["movieId", "title", "genres"]].drop_duplicates("movieId").head(200)
    items = items.assign(movieId=items["movieId"].astype(str))  # strings here, integers in the log
    path = tmp_path / "items.csv"
    items.to_csv(path, index=False)
    log = ratings[["userId", "movieId", "rating", "timestamp"]].head(2000)
    model = takeoff.train(log, **COLUMNS, items=path, family="popular", time_budget=10)
    titles = model.items.text["title"]
    known = sum(bool(t) for t in titles)
    assert known == len(set(items["movieId"].astype(int)) & set(log["movieId"]))
