"""User features, new users and new items, end to end on real MovieLens ratings.

Each user's ratings are cut in two by time: the earlier half only makes the user's features
(their two favourite genres, by lift over the catalogue's genre shares, and how many ratings they
gave, in bands), the later half is the interaction log. The features are thus real facts about
the users that the log does not contain. 40 users are left out of the log: they are the "new"
users, known only by their features.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.errors import DataError
from takeoff.models.recommender import UserFeatures

COLUMNS = dict(task="recommend", user="userId", item="movieId", rating="rating", time_column="timestamp")
FAST = {"embedding_dim": 32, "hidden_dim": 64, "history_length": 20, "batch_size": 512, "negatives": 512,
        "hash_buckets": 4096, "max_epochs": 8, "patience": 2}
CONFIG = {"recommenders": {"two-tower": FAST}}
GENRES = ("Horror", "Children", "Romance", "War", "Sci-Fi", "Animation", "Documentary", "Musical")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a busy 2-core machine, two threads wait on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def movielens(datasets, tmp_path_factory):
    """(log with user IDs as text, users table path, the users table, the new users' IDs,
    the new users' later ratings)."""
    df = pd.read_csv(datasets / "movielens_ratings.csv")
    df = df[df["movieId"].isin(df["movieId"].value_counts().index[:1500])].sort_values("timestamp", kind="stable")
    df = df[df.groupby("userId")["movieId"].transform("size") >= 10]
    rank = df.groupby("userId").cumcount()
    size = df.groupby("userId")["movieId"].transform("size")
    early, late = df[rank < size // 2], df[rank >= size // 2]
    genres = early.assign(genre=early["genres"].str.split("|")).explode("genre")
    genres = genres[~genres["genre"].str.startswith("(")]
    share = genres["genre"].value_counts(normalize=True)
    counts = genres.groupby(["userId", "genre"]).size().rename("n").reset_index()
    counts["lift"] = counts["n"] / counts.groupby("userId")["n"].transform("sum") / counts["genre"].map(share)
    counts = counts[counts["n"] >= 3].sort_values(["userId", "lift"], ascending=[True, False])
    favourite = counts.groupby("userId").head(2).groupby("userId")["genre"].agg("|".join)
    activity = pd.qcut(early.groupby("userId").size(), 5, labels=False)  # a number with five values
    users = pd.DataFrame({"userId": favourite.index, "favourite": favourite.to_numpy(),
                          "activity": activity.reindex(favourite.index).to_numpy()})
    new = set(users["userId"].sample(40, random_state=0))
    late = late.groupby("userId").tail(40)
    log = late[~late["userId"].isin(new)][["userId", "movieId", "rating", "timestamp", "title", "genres"]]
    path = tmp_path_factory.mktemp("users") / "users.csv"
    users.to_csv(path, index=False)  # integer IDs here, text IDs in the log
    return log.assign(userId=log["userId"].astype(str)), path, users, sorted(new), late[late["userId"].isin(new)]


@pytest.fixture(scope="module")
def trained(movielens, tmp_path_factory):
    log, path, *_ = movielens
    out = tmp_path_factory.mktemp("recs") / "bundle"
    model = takeoff.train(log, **COLUMNS, users=path, family="two-tower", config=CONFIG, time_budget=30, seed=0,
                          out=out)
    return model, out


def _genres(model) -> dict:
    """Item ID → its genre tokens."""
    return {takeoff_id: set(g) for takeoff_id, g in zip(model.log.items, model.items.categorical["genres"])}


def _count(model, items, genre: str) -> int:
    genres = _genres(model)
    return sum(genre in genres[str(i)] for i in items)


# ----------------------------------------------------------------------------- the users table
def test_users_table_joins_across_id_types(trained, movielens):
    model, _ = trained
    _, _, users, new, _ = movielens
    assert model.users is not None and set(model.users.categorical) == {"favourite", "activity"}
    table = users.set_index(users["userId"].astype(str))
    for code in (0, 7, model.n_users - 1):
        user = model.log.users[code]
        assert model.users.categorical["favourite"][code] == table.loc[user, "favourite"].split("|")
        assert model.users.categorical["activity"][code] == [str(int(table.loc[user, "activity"]))]
    notes = model.manifest["training"]["notes"]
    assert any(f"{len(new)} user(s)" in n and "no interactions" in n for n in notes), notes
    assert model.family.has_user_features


def test_bundle_round_trip_keeps_user_features(trained):
    model, out = trained
    assert json.loads((out / "users.json").read_text())["user_column"] == "userId"
    loaded = takeoff.load(out)
    assert loaded.users == model.users
    first, again = (m.recommend("someone-new", k=10, features={"favourite": "Horror"}) for m in (model, loaded))
    assert first.items == again.items and np.allclose(first.scores, again.scores)
    known = model.log.users[3]
    assert loaded.recommend(known, k=10).items == model.recommend(known, k=10).items


# ----------------------------------------------------------------------------- new users
def test_a_new_users_features_choose_their_items(trained):
    model, _ = trained
    popular = model.recommend("nobody", k=20)
    assert "most popular items" in popular.notes[0]
    with_genre, in_popular = 0, 0
    lists = []
    for genre in GENRES:
        result = model.recommend("nobody", k=20, features={"favourite": genre})
        assert result.notes[0] == "user 'nobody' is new: recommended from their features (favourite)"
        assert len(result) == 20 and result.scores == sorted(result.scores, reverse=True)
        with_genre += _count(model, result.items, genre)
        in_popular += _count(model, popular.items, genre)
        lists.append(tuple(result.items))
    assert len(set(lists)) == len(GENRES) and popular.items not in [list(x) for x in lists]
    assert with_genre > 1.5 * in_popular, (with_genre, in_popular)


def test_held_out_new_users_get_their_favourite_genres(trained, movielens):
    """The 40 users the log does not hold: their top 20 lean to the genres their features name
    (which came from their earlier ratings) more than the popular items do."""
    model, _ = trained
    _, _, users, new, _ = movielens
    genres = _genres(model)
    table = users.set_index("userId")
    popular = model.recommend("nobody", k=20).items
    ours, theirs = 0.0, 0.0
    for user in new:
        favourite = set(table.loc[user, "favourite"].split("|"))
        result = model.recommend(user, k=20, features={"favourite": table.loc[user, "favourite"],
                                                       "activity": int(table.loc[user, "activity"])})
        assert "is new" in result.notes[0]
        ours += np.mean([bool(favourite & genres[str(i)]) for i in result.items])
        theirs += np.mean([bool(favourite & genres[str(i)]) for i in popular])
    assert ours > 1.2 * theirs, (ours / len(new), theirs / len(new))


def test_new_users_in_a_batch_and_when_features_cannot_help(trained):
    model, _ = trained
    known = model.log.users[0]
    batch = model.recommend_batch(
        [known, "a", "b", "c"], k=5,
        features=[{"favourite": "Horror"}, {"favourite": "Children|Animation"}, None, {"favourite": "Polka"}],
    )
    assert batch[0].items == model.recommend(known, k=5).items  # a known user's features are not needed
    assert "is new" in batch[1].notes[0]
    assert batch[2].items == batch[3].items == model.recommend("z", k=5).items
    assert "was seen in training" in batch[3].notes[0]
    with pytest.raises(DataError, match="Did you mean 'favourite'"):
        model.recommend("a", features={"favorite": "Horror"})
    with pytest.raises(DataError, match="dict"):
        model.recommend("a", features="Horror")
    with pytest.raises(DataError, match="one entry"):
        model.recommend_batch(["a", "b"], features=[None])


def test_families_without_user_features_keep_working(movielens):
    log, path, *_ = movielens
    model = takeoff.train(log.head(3000), **COLUMNS, users=path, family="itemknn", time_budget=10)
    assert model.users is not None  # kept in the bundle for the day the family can use them
    result = model.recommend("nobody", k=5, features={"favourite": "Horror"})
    assert "most popular items" in result.notes[0] and "cannot use user features" in result.notes[0]


def test_user_table_errors_and_the_cli_option(movielens, tmp_path):
    from typer.testing import CliRunner

    from takeoff.cli import app

    log, path, users, *_ = movielens
    wrong = tmp_path / "people.csv"
    users.rename(columns={"userId": "uid"}).to_csv(wrong, index=False)
    with pytest.raises(DataError, match="no column 'userId'"):
        takeoff.train(log.head(2000), **COLUMNS, users=wrong, family="popular", time_budget=10)
    data = tmp_path / "log.csv"
    log.head(2000).to_csv(data, index=False)
    out = tmp_path / "bundle"
    result = CliRunner().invoke(app, ["train", str(data), "--task", "recommend", "--user", "userId", "--item",
                                      "movieId", "--users", str(path), "--family", "popular", "--out", str(out),
                                      "--time-budget", "10"])
    assert result.exit_code == 0, result.output
    assert UserFeatures.from_json(json.loads((out / "users.json").read_text())).categorical["favourite"]


# ----------------------------------------------------------------------------- new items
def test_rank_new_items_copies_of_liked_items_beat_copies_of_disliked(trained):
    model, _ = trained
    genres, titles = model.items.categorical["genres"], model.items.text["title"]
    wins = 0
    for code in range(0, model.n_users, model.n_users // 8):
        user = model.log.users[code]
        ranked = model.recommend(user, k=model.n_items, exclude_seen=False)
        best, worst = (model.log.item_index[str(i)] for i in (ranked.items[0], ranked.items[-1]))
        new = pd.DataFrame({"movieId": [900001, 900002], "title": [titles[best], titles[worst]],
                            "genres": ["|".join(genres[best]), "|".join(genres[worst])]})
        result = model.rank_new_items(user, new, k=2)
        assert sorted(result.items) == [900001, 900002] and not result.notes
        wins += result.items[0] == 900001
    assert wins >= 7, wins


def test_rank_new_items_scores_are_on_the_scale_of_recommend(trained):
    model, _ = trained
    user = model.log.users[5]
    known = model.recommend(user, k=3, exclude_seen=False)
    code = model.log.item_index[str(known.items[0])]
    table = pd.DataFrame({"movieId": [known.items[0], "brand-new"], "title": [model.items.text["title"][code], "Tale"],
                          "genres": ["|".join(model.items.categorical["genres"][code]), "Horror"]})
    result = model.rank_new_items(user, table, k=5)
    assert result.items[0] == known.items[0] and result.scores[0] == pytest.approx(known.scores[0], abs=1e-5)
    assert "1 of these items are in the catalogue" in result.notes[0] and "only 2 item(s)" in result.notes[1]
    # a new user described by features works too
    assert len(model.rank_new_items("newbie", table, features={"favourite": "Horror"})) == 2


def test_rank_new_items_errors(trained, movielens):
    model, _ = trained
    log, *_ = movielens
    table = pd.DataFrame({"movieId": [1], "title": ["A"], "genres": ["Drama"]})
    with pytest.raises(DataError, match=r"lacks column\(s\) genres"):
        model.rank_new_items(model.log.users[0], table.drop(columns="genres"))
    with pytest.raises(DataError, match="is empty in 1 row"):
        model.rank_new_items(model.log.users[0], table.assign(movieId=[None]))
    with pytest.raises(DataError, match="not in the training data"):
        model.rank_new_items("stranger", table)
    popular = takeoff.train(log.head(2000), **COLUMNS, family="popular", time_budget=10)
    with pytest.raises(DataError, match="family 'popular' cannot score items.*two-tower"):
        popular.rank_new_items(popular.log.users[0], table)
    bare = takeoff.train(log.head(2000).drop(columns=["title", "genres"]), **COLUMNS, family="two-tower",
                         config={"recommenders": {"two-tower": {**FAST, "max_epochs": 1}}}, time_budget=10)
    with pytest.raises(DataError, match="without item features"):
        bare.rank_new_items(bare.log.users[0], table)
