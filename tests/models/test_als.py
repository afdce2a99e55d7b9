"""The als recommender on real MovieLens data: quality against popularity, shapes,
determinism, save/load, similar items, the deadline, tiny histories, the missing library."""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import pytest

from takeoff.data.interactions import interactions_from_frame
from takeoff.errors import BudgetError, BundleError, MissingDependencyError
from takeoff.models.als import ALSRecommender
from takeoff.models.popular import PopularRecommender
from takeoff.registry import get_recommender
from takeoff.testing.recommenders import hit_rate
from takeoff.training.context import FitContext


def _ctx(**kwargs) -> FitContext:
    return FitContext(seed=kwargs.pop("seed", 0), progress=False, **kwargs)


@pytest.fixture(scope="module")
def split(movielens_split):
    return movielens_split


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    model = ALSRecommender()
    model.fit(train, _ctx())
    return model


def test_registered():
    assert get_recommender("als") is ALSRecommender


def test_beats_popularity_on_held_out_ratings(split, fitted):
    train, test = split
    popular = PopularRecommender()
    popular.fit(train, _ctx())
    als, base = hit_rate(fitted, train, test), hit_rate(popular, train, test)
    # measured: als 0.060 (8 of 133 users; 0.06-0.08 over seeds 0-4), popularity 0.015 (2)
    assert als >= base + 0.02, (als, base)


def test_scores_shape_and_dtype(split, fitted):
    train, _ = split
    users = np.arange(train.n_users)
    scores = fitted.score(train, users)
    assert scores.shape == (train.n_users, train.n_items)
    assert scores.dtype == np.float32 and np.isfinite(scores).all()
    assert fitted.report.best_iteration == fitted.params.iterations and fitted.report.stopped_by == "max"


def test_same_seed_same_model(split):
    train, _ = split
    users, small = np.arange(train.n_users), {"factors": 16, "iterations": 3}
    runs = []
    for seed in (0, 0, 1):
        model = ALSRecommender(small)
        model.fit(train, _ctx(seed=seed))
        runs.append(model.score(train, users))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_save_load_round_trip(split, fitted, tmp_path):
    train, _ = split
    fitted.save(tmp_path)
    assert {p.suffix for p in tmp_path.iterdir()} == {".json", ".safetensors"}
    loaded = ALSRecommender.load(tmp_path, fitted.params.model_dump(), train)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(loaded.score(train, users), fitted.score(train, users))
    np.testing.assert_array_equal(loaded.similar(np.array([1, 2])), fitted.similar(np.array([1, 2])))
    other, _ = interactions_from_frame(pd.DataFrame({"u": [1, 2], "i": [1, 1]}), "u", "i")
    with pytest.raises(BundleError, match="4721 items"):
        ALSRecommender.load(tmp_path, fitted.params.model_dump(), other)


def test_similar_ranks_the_item_itself_first(split, fitted):
    train, _ = split
    assert fitted.item_vectors().shape == (train.n_items, fitted.params.factors)
    popular = np.argsort(-np.bincount(train.item_codes, minlength=train.n_items))[:5]
    similar = fitted.similar(popular)
    assert similar.shape == (5, train.n_items)
    np.testing.assert_array_equal(similar.argmax(axis=1), popular)


def test_user_with_one_interaction_gets_scores(split):
    train, _ = split
    first = np.flatnonzero(train.user_codes == 0)[:1]  # user 0 keeps a single rating
    log = train.take(np.concatenate([first, np.flatnonzero(train.user_codes != 0)]))
    model = ALSRecommender({"factors": 16, "iterations": 5})
    model.fit(log, _ctx())
    scores = model.score(log, np.array([0]))[0]
    assert np.isfinite(scores).all() and scores.std() > 0


class _Countdown(FitContext):
    """A context whose time runs out after ``calls`` looks at the clock."""

    def __init__(self, calls: int, **kwargs):
        super().__init__(seed=0, progress=False, **kwargs)
        self.calls = calls

    def remaining(self) -> float:
        self.calls -= 1
        return 1e9 if self.calls >= 0 else -1.0


def test_deadline_stops_iterations_early_with_a_usable_model(split):
    train, _ = split
    warnings = []
    model = ALSRecommender({"factors": 16, "iterations": 10})
    # one look before starting, then one before each further iteration: three iterations fit
    report = model.fit(train, _Countdown(3, warn=warnings.append))
    assert report.best_iteration == 3 and report.stopped_by == "time_budget"
    assert len(warnings) == 1 and "3 of 10" in warnings[0]
    assert np.isfinite(model.score(train, np.arange(5))).all()


def test_past_deadline_is_a_budget_error(split):
    train, _ = split
    with pytest.raises(BudgetError, match="time budget"):
        ALSRecommender().fit(train, _ctx(deadline=time.monotonic() - 1.0))


def test_missing_implicit_names_the_package(split, monkeypatch):
    train, _ = split
    monkeypatch.setitem(sys.modules, "implicit.cpu.als", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match="pip install implicit"):
        ALSRecommender().fit(train, _ctx())
