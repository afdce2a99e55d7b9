"""The itemknn recommender on real MovieLens data: quality against popularity, shapes,
save/load, similar items, recency weighting, the deadline, tiny histories, speed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from takeoff.data.interactions import Interactions, interactions_from_frame
from takeoff.errors import BudgetError, BundleError
from takeoff.models.itemknn import ItemKNNRecommender
from takeoff.models.popular import PopularRecommender
from takeoff.registry import get_recommender
from takeoff.testing.recommenders import hit_rate
from takeoff.training.context import FitContext


def _ctx(**kwargs) -> FitContext:
    return FitContext(seed=0, progress=False, **kwargs)


@pytest.fixture(scope="module")
def split(movielens_split):
    return movielens_split


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    model = ItemKNNRecommender()
    model.fit(train, _ctx())
    return model


def test_registered():
    assert get_recommender("itemknn") is ItemKNNRecommender


def test_beats_popularity_on_held_out_ratings(split, fitted):
    train, test = split
    popular = PopularRecommender()
    popular.fit(train, _ctx())
    knn, base = hit_rate(fitted, train, test), hit_rate(popular, train, test)
    # measured: itemknn 0.068 (9 of 133 users), popularity 0.015 (2)
    assert knn >= base + 0.03, (knn, base)


def test_scores_shape_dtype_and_rows(split, fitted):
    train, _ = split
    scores = fitted.score(train, np.arange(train.n_users))
    assert scores.shape == (train.n_users, train.n_items)
    assert scores.dtype == np.float32 and np.isfinite(scores).all()
    some = np.array([5, 0, 42])
    np.testing.assert_array_equal(fitted.score(train, some), scores[some])
    assert (scores.max(axis=1) > 0).all()  # every user with history gets some signal


def test_save_load_round_trip(split, fitted, tmp_path):
    train, _ = split
    fitted.save(tmp_path)
    assert {p.suffix for p in tmp_path.iterdir()} == {".json", ".safetensors"}
    loaded = ItemKNNRecommender.load(tmp_path, fitted.params.model_dump(), train)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(loaded.score(train, users), fitted.score(train, users))
    items = np.array([0, 3, 100])
    np.testing.assert_array_equal(loaded.similar(items), fitted.similar(items))
    with pytest.raises(BundleError, match="4721 items"):
        ItemKNNRecommender.load(tmp_path, fitted.params.model_dump(), _toy_log())


def test_similar_ranks_the_closest_item_first(split, fitted):
    train, _ = split
    X = train.matrix().toarray().astype(np.float64)  # users × items, ratings (use_weights)
    norms = np.linalg.norm(X, axis=0)
    popular = np.argsort(-(X > 0).sum(axis=0))[:5]
    similar = fitted.similar(popular)
    assert similar.shape == (5, train.n_items) and similar.dtype == np.float32
    for row, item in zip(similar, popular):
        assert row[item] == 0.0  # an item is not its own neighbour
        cosine = X[:, item] @ X / (norms[item] * norms + fitted.params.shrink)
        cosine[item] = -np.inf
        assert int(np.argmax(row)) == int(np.argmax(cosine))
        assert (row > 0).sum() <= fitted.params.neighbors
        seen = (X > 0).astype(np.float64)
        co_counts = seen[:, item] @ seen
        co_counts[item] = -1
        strongest = int(np.argmax(co_counts))  # the item most often rated together with it
        assert strongest in np.argsort(-row)[:5]


def _toy_log() -> Interactions:
    """Items 0,1 always go together, and so do 2,3; user 10 watched 2 long ago, then 0."""
    rows = [(u, m, t) for u in range(10) for m, t in ((0, 1), (1, 2))]
    rows += [(u, m, t) for u in range(10, 20) for m, t in ((2, 1), (3, 2))]
    rows += [(20, 2, 1), (20, 0, 100)]
    df = pd.DataFrame(rows, columns=["user", "item", "time"])
    log, _ = interactions_from_frame(df, "user", "item", None, "time")
    return log


def test_recent_history_counts_more():
    log = _toy_log()
    user = log.codes_of_users([20])
    item_1, item_3 = log.codes_of_items([1, 3])
    recent = ItemKNNRecommender({"recency_half_life": 1.0, "shrink": 0.0})
    recent.fit(log, _ctx())
    scores = recent.score(log, user)[0]
    assert scores[item_1] > 1.5 * scores[item_3] > 0  # latest item 0 → 1 beats older item 2 → 3
    flat = ItemKNNRecommender({"recency_half_life": None, "shrink": 0.0})
    flat.fit(log, _ctx())
    scores = flat.score(log, user)[0]
    assert scores[item_1] == pytest.approx(scores[item_3], rel=0.1)


def test_user_with_one_interaction_gets_scores(split, fitted):
    train, _ = split
    one = train.take(np.flatnonzero(train.user_codes == 0)[:1])  # user 0 keeps a single rating
    rest = train.take(np.flatnonzero(train.user_codes != 0))
    log = Interactions(train.users, train.items, np.concatenate([one.user_codes, rest.user_codes]),
                       np.concatenate([one.item_codes, rest.item_codes]),
                       np.concatenate([one.weights, rest.weights]), np.concatenate([one.times, rest.times]))
    model = ItemKNNRecommender()
    model.fit(log, _ctx())
    scores = model.score(log, np.array([0]))[0]
    assert np.isfinite(scores).all() and (scores > 0).sum() >= 10
    # each scored item has the user's one item among its neighbours: rating × similarity
    scored = np.flatnonzero(scores > 0)
    to_history = model.similar(scored)[:, int(one.item_codes[0])]
    np.testing.assert_allclose(scores[scored], one.weights[0] * to_history, rtol=1e-5)


def test_past_deadline_is_a_budget_error(split):
    train, _ = split
    with pytest.raises(BudgetError, match="time budget"):
        ItemKNNRecommender().fit(train, _ctx(deadline=time.monotonic() - 1.0))


def test_one_user_scores_fast(split, fitted):
    train, _ = split
    fitted.score(train, np.array([0]))
    times = []
    for user in range(30):
        start = time.perf_counter()
        fitted.score(train, np.array([user]))
        times.append(time.perf_counter() - start)
    assert np.median(times) < 0.010, times
