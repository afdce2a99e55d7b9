"""Every registered recommender passes the shared contract (takeoff.testing.recommenders) on a
small slice of real MovieLens ratings, with item and user features for the families that use them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from takeoff import registry
from takeoff.data.interactions import id_key, interactions_from_frame
from takeoff.models.recommender import ItemFeatures, UserFeatures
from takeoff.testing.recommenders import check_recommender

# small settings so that each family's checks take seconds
SMALL = {
    "als": {"factors": 16, "iterations": 3},
    "two-tower": {"embedding_dim": 16, "hidden_dim": 32, "history_length": 10, "batch_size": 256,
                  "negatives": 256, "hash_buckets": 1024, "max_epochs": 2},
}


@pytest.fixture(scope="module")
def movielens(datasets):
    """The first 3,000 MovieLens ratings (about 20 users, 1,500 movies): (log, items, users)."""
    df = pd.read_csv(datasets / "movielens_ratings.csv", nrows=3000)
    log, _ = interactions_from_frame(df, "userId", "movieId", "rating", "timestamp")
    first = df.drop_duplicates("movieId")
    meta = first.set_index(first["movieId"].map(id_key)).reindex(log.items)
    items = ItemFeatures({"genres": []}, {"title": []}).like({"genres": list(meta["genres"]),
                                                             "title": list(meta["title"])})
    genre = df.assign(g=df["genres"].str.split("|").str[0]).groupby("userId")["g"].agg(lambda g: g.mode()[0])
    by_user = {id_key(u): g for u, g in genre.items()}
    users = UserFeatures({"top_genre": []}).like({"top_genre": [by_user[u] for u in log.users]})
    return log, items, users


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a busy 2-core machine, two threads wait on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", registry.recommender_names())
def test_recommender_passes_the_contract(name, movielens):
    log, items, users = movielens
    cls = registry.get_recommender(name)
    assert cls.name == name
    check_recommender(cls, log, params=SMALL.get(name), items=items, users=users, seed=0)


def test_the_contract_catches_a_broken_family(movielens):
    """A family whose scores ignore the user codes asked fails, naming itself."""
    from takeoff.models.popular import PopularRecommender

    class Shuffled(PopularRecommender):
        name = "shuffled"

        def score(self, log, users):
            scores = super().score(log, users)
            return scores + np.asarray(users, dtype=np.float32)[::-1, None]

    log, _, _ = movielens
    with pytest.raises(AssertionError, match="shuffled: score rows"):
        check_recommender(Shuffled, log)
