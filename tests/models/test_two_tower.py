"""The two-tower recommender on real MovieLens data: quality, cold items and users, save/load, budget, seeds."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from takeoff.data.interactions import Interactions, id_key, interactions_from_frame, leave_last_out
from takeoff.errors import BundleError, DataError
from takeoff.models.recommender import ItemFeatures, UserFeatures
from takeoff.models.two_tower import TwoTowerRecommender
from takeoff.training.context import FitContext

FAST = {"embedding_dim": 32, "hidden_dim": 64, "history_length": 20, "batch_size": 512, "negatives": 512,
        "hash_buckets": 4096, "learning_rate": 0.01, "max_epochs": 5, "patience": 2}



def _features(frame: pd.DataFrame, item_ids: list[str]) -> ItemFeatures:
    """Genres (split on "|") and titles, aligned with the log's item codes."""
    first = frame.drop_duplicates("movieId")
    meta = first.set_index(first["movieId"].map(id_key)).reindex(item_ids)
    genres = [[] if not isinstance(g, str) or g.startswith("(") else g.split("|") for g in meta["genres"]]
    titles = [t if isinstance(t, str) else "" for t in meta["title"]]
    return ItemFeatures({"genres": genres}, {"title": titles}, "movieId")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a busy 2-core machine, two threads wait on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def movielens(datasets):
    """The 400 most active users' last 40 ratings of the 1,500 most rated movies:
    (frame, log, item features)."""
    frame = pd.read_csv(datasets / "movielens_ratings.csv")
    frame = frame[frame["movieId"].isin(frame["movieId"].value_counts().index[:1500])]
    top = frame["userId"].value_counts().index[:400]
    frame = frame[frame["userId"].isin(top)].sort_values("timestamp").groupby("userId").tail(40)
    log, _ = interactions_from_frame(frame, "userId", "movieId", "rating", "timestamp")
    return frame, log, _features(frame, log.items)


@pytest.fixture(scope="module")
def fitted(movielens):
    """A model fitted on everything but each user's last rating: (model, train, test, features)."""
    _, log, items = movielens
    train, test = leave_last_out(log)
    model = TwoTowerRecommender(FAST)
    model.fit(train, FitContext(deadline=time.monotonic() + 60.0, seed=0, progress=False), items)
    return model, train, test, items


def _hit_rate(scores: np.ndarray, train, test, k: int = 10) -> float:
    """Share of held-out items in the top ``k`` of the items each user has not seen."""
    scores = scores.copy()
    scores[train.matrix()[test.user_codes].nonzero()] = -np.inf
    target = scores[np.arange(len(test)), test.item_codes][:, None]
    return float(((scores > target).sum(1) < k).mean())


def test_beats_random_and_popularity_on_held_out_ratings(fitted):
    model, train, test, _ = fitted
    scores = model.score(train, test.user_codes)
    assert scores.shape == (len(test), train.n_items) and scores.dtype == np.float32
    hit_rate = _hit_rate(scores, train, test)
    n_unseen = train.n_items - np.bincount(train.user_codes, minlength=train.n_users)[test.user_codes]
    chance = float(np.mean(10 / n_unseen))
    popularity = np.bincount(train.item_codes, minlength=train.n_items).astype(np.float32)
    popular_rate = _hit_rate(np.tile(popularity, (len(test), 1)), train, test)
    assert hit_rate > 5 * chance, (hit_rate, chance)
    assert hit_rate > popular_rate, (hit_rate, popular_rate)
    assert model.report.history["valid_ndcg_at_10"] and model.report.best_iteration >= 1


def test_save_load_round_trip_gives_identical_scores(fitted, tmp_path):
    model, train, test, items = fitted
    model.save(tmp_path)
    loaded = TwoTowerRecommender.load(tmp_path, FAST, train)  # no item features needed to load
    users = test.user_codes[:40]
    np.testing.assert_array_equal(loaded.score(train, users), model.score(train, users))
    np.testing.assert_array_equal(loaded.item_vectors(), model.item_vectors())
    new = ItemFeatures({"genres": [["Horror"]]}, {"title": ["Night"]})
    np.testing.assert_array_equal(loaded.embed_items(new), model.embed_items(new))
    assert loaded.similar(np.array([0, 1])).shape == (2, train.n_items)


def test_load_refuses_another_log_and_a_foreign_spec(fitted, tmp_path):
    model, train, _, _ = fitted
    model.save(tmp_path)
    other = Interactions(train.users, train.items[:100], train.user_codes[:1], train.item_codes[:1] % 100,
                         train.weights[:1], None)
    with pytest.raises(BundleError, match="100 items"):
        TwoTowerRecommender.load(tmp_path, FAST, other)
    (tmp_path / "two_tower.json").write_text('{"format": "other", "version": 1}')
    with pytest.raises(BundleError, match="format"):
        TwoTowerRecommender.load(tmp_path, FAST, train)


def test_cold_items_land_near_their_genre(fitted):
    """A new item embedded from its genres alone is closer to items of those genres than to others."""
    model, train, _, items = fitted
    genres = items.categorical["genres"]
    vectors = model.item_vectors()
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    margins = []
    for genre, other in [("Horror", "Children"), ("Children", "Horror"), ("Documentary", "Action")]:
        new = model.embed_items(ItemFeatures({"genres": [[genre]]}, {"title": ["Untitled"]}))[0]
        new = new / np.linalg.norm(new)
        inside = np.array([genre in g and other not in g for g in genres])
        outside = np.array([other in g and genre not in g for g in genres])
        margins.append(float((vectors[inside] @ new).mean() - (vectors[outside] @ new).mean()))
    assert min(margins) > 0, margins
    # unknown genres and columns are ignored rather than failing
    assert model.embed_items(ItemFeatures({"genres": [["NoSuchGenre"]], "studio": [["X"]]})).shape == (1, 32)


def test_without_item_features_it_cannot_embed_new_items(movielens):
    _, log, _ = movielens
    small = log.take(np.flatnonzero(log.user_codes < 30))
    model = TwoTowerRecommender({**FAST, "max_epochs": 1})
    model.fit(small, FitContext(seed=0, progress=False))
    assert model.item_vectors().shape == (small.n_items, 32)
    with pytest.raises(DataError, match="without item features"):
        model.embed_items(ItemFeatures({"genres": [["Drama"]]}))


def test_deadline_is_honoured(movielens):
    _, log, items = movielens
    model = TwoTowerRecommender({**FAST, "max_epochs": 1000, "patience": 1000})
    start = time.monotonic()
    report = model.fit(log, FitContext(deadline=start + 1.5, seed=0, progress=False), items)
    assert time.monotonic() - start < 1.5 + 0.5
    assert report.stopped_by == "time_budget"


def test_same_seed_same_model(movielens):
    _, log, items = movielens
    small = log.take(np.flatnonzero(log.user_codes < 60))
    users = np.arange(10)

    def run(seed: int) -> np.ndarray:
        model = TwoTowerRecommender({**FAST, "max_epochs": 1})
        model.fit(small, FitContext(seed=seed, progress=False), items)
        return model.score(small, users)

    first = run(0)
    np.testing.assert_array_equal(first, run(0))
    assert not np.array_equal(first, run(1))


def test_user_features_embed_new_users_and_survive_save_load(movielens, tmp_path):
    """Mechanics: a user's most rated genre (a category) and a short text; new users are embedded
    from features, history, or both, identically after a save/load."""
    frame, log, items = movielens
    small = log.take(np.flatnonzero(log.user_codes < 100))
    genre = frame.assign(g=frame["genres"].str.split("|").str[0]).groupby("userId")["g"].agg(lambda g: g.mode()[0])
    top = [genre[int(u)] for u in small.users]
    users = UserFeatures({"top_genre": [[g] for g in top]}, {"bio": [f"likes {g.lower()} films" for g in top]})
    model = TwoTowerRecommender({**FAST, "max_epochs": 2})
    model.fit(small, FitContext(seed=0, progress=False), items, users=users)
    assert model.has_user_features and model.spec["user_text_columns"] == ["bio"]
    new = UserFeatures({"top_genre": [["Horror"], ["Comedy"], ["NoSuchGenre"]]}, {"bio": ["", "", ""]})
    vectors = model.embed_users(new)
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    assert not np.allclose(vectors[0], vectors[1])
    with_history = model.embed_users(new, [[0, 1, 2], [], [-1, 5]])
    assert not np.allclose(with_history[0], vectors[0]) and np.allclose(with_history[1], vectors[1])
    # the scale of score(): a known user's vector against the item vectors
    np.testing.assert_allclose(model.user_vectors(small, np.array([3])) @ model.item_vectors().T,
                               model.score(small, np.array([3])), rtol=1e-5, atol=1e-6)
    model.save(tmp_path)
    loaded = TwoTowerRecommender.load(tmp_path, {**FAST, "max_epochs": 2}, small)
    np.testing.assert_array_equal(loaded.embed_users(new, [[0, 1, 2], [], [-1, 5]]), with_history)
    np.testing.assert_array_equal(loaded.score(small, np.arange(5)), model.score(small, np.arange(5)))


def test_without_user_features_new_users_need_a_history(movielens):
    _, log, _ = movielens
    small = log.take(np.flatnonzero(log.user_codes < 30))
    model = TwoTowerRecommender({**FAST, "max_epochs": 1})
    model.fit(small, FitContext(seed=0, progress=False))
    assert not model.has_user_features
    with pytest.raises(DataError, match="without user features"):
        model.embed_users(UserFeatures({"top_genre": [["Drama"]]}))
    assert model.embed_users(None, [[0, 1]]).shape == (1, 32)


def test_format_1_files_still_load(movielens, tmp_path):
    """A file written before the unknown user row (format 1) loads and scores; only new users
    need a retrained model."""
    import json

    from safetensors.torch import load_file, save_file

    _, log, _ = movielens
    small = log.take(np.flatnonzero(log.user_codes < 30))
    model = TwoTowerRecommender({**FAST, "max_epochs": 1})
    model.fit(small, FitContext(seed=0, progress=False))
    model.save(tmp_path)
    document = json.loads((tmp_path / "two_tower.json").read_text())
    for key in ("unknown_user", "user_vocabulary", "user_text_columns", "n_user_tokens"):
        del document["architecture"][key]
    (tmp_path / "two_tower.json").write_text(json.dumps({**document, "version": 1}))
    tensors = load_file(str(tmp_path / "two_tower.safetensors"))
    tensors["net.user_id.weight"] = tensors["net.user_id.weight"][: small.n_users].contiguous()
    save_file(tensors, str(tmp_path / "two_tower.safetensors"))
    old = TwoTowerRecommender.load(tmp_path, FAST, small)
    np.testing.assert_array_equal(old.score(small, np.arange(5)), model.score(small, np.arange(5)))
    with pytest.raises(DataError, match="retrain"):
        old.embed_users(None, [[0, 1]])


def test_a_checkpointed_fit_resumes_where_it_stopped(movielens, tmp_path):
    """A fit stopped after its first epoch continues from its checkpoint to the same model as
    one uninterrupted fit (the extra callbacks of ``model.callbacks`` are called too)."""
    from takeoff.training.callbacks import Callback

    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            trainer.stop_reason = "time_budget"  # as the clock would: a resumable stop

    _, log, items = movielens
    small = log.take(np.flatnonzero(log.user_codes < 60))
    params = {**FAST, "max_epochs": 3, "patience": 10}
    whole = TwoTowerRecommender(params)
    whole.fit(small, FitContext(seed=0, progress=False), items)
    first = TwoTowerRecommender(params)
    first.callbacks.append(StopAfterFirstEpoch())
    ctx = FitContext(seed=0, progress=False, checkpoint_dir=tmp_path / "checkpoint")
    assert first.fit(small, ctx, items).stopped_by == "time_budget"
    assert len(first.report.history["train_loss"]) == 1
    resumed = TwoTowerRecommender(params)
    report = resumed.fit(small, ctx, items)
    assert report.history == whole.report.history and report.stopped_by == "max"
    np.testing.assert_array_equal(resumed.score(small, np.arange(10)), whole.score(small, np.arange(10)))


def test_an_epoch_cut_by_the_deadline_still_counts(movielens):
    """Small batches make one epoch longer than the budget: the part trained is validated and kept."""
    _, log, items = movielens
    model = TwoTowerRecommender({**FAST, "batch_size": 32})
    start = time.monotonic()
    report = model.fit(log, FitContext(deadline=start + 1.5, seed=0, progress=False), items)
    assert time.monotonic() - start < 1.5 + 0.5
    assert report.stopped_by == "time_budget" and report.best_iteration == 1
    assert len(report.history["train_loss"]) == len(report.history["valid_ndcg_at_10"]) == 1
