"""auto's choices: the candidates and fold plan, the run's metric deciding the decision rule,
and the log target's round trip through a bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

import takeoff
from takeoff.config import default_config
from takeoff.data.schema import Task
from takeoff.errors import UnknownNameError
from takeoff.models.target_transform import LogTarget, skewed_positive
from takeoff.pipelines.prediction.candidates import candidates, fold_plan


@pytest.fixture(scope="module")
def diamonds(datasets) -> pd.DataFrame:
    return pd.read_csv(datasets / "diamonds.csv").sample(3000, random_state=0).reset_index(drop=True)


def test_candidates_take_each_familys_first_choice_first_and_keep_the_users_params():
    config = default_config(models={"lightgbm": {"num_leaves": 8}})
    task = Task("regression", "price")
    pool = candidates(config, task, ["linear", "lightgbm"], np.random.default_rng(0).lognormal(8, 1, 500))
    ids = [c.id for c in pool]
    assert ids[:4] == ["linear", "linear.log", "lightgbm", "lightgbm.log"]  # skewed positive: a log twin each
    assert "lightgbm.2" in ids and ids.index("lightgbm.2") > ids.index("lightgbm.log")
    assert all(c.params["num_leaves"] == 8 for c in pool if c.family == "lightgbm")  # the user's setting wins
    assert len({(c.family, repr(sorted(c.params.items())), c.transform) for c in pool}) == len(pool)
    named = candidates(default_config(family="lightgbm", target_transform="none"), task, ["lightgbm"], np.ones(10))
    assert [c.id for c in named] == ["lightgbm"]


def test_fold_plan_cross_validates_small_tables_and_keeps_the_holdout_otherwise():
    task = Task("binary", "y", [0, 1])
    y = np.array([0] * 700 + [1] * 300)
    folds = fold_plan(default_config(), task, y, 800, ["lightgbm"], images=False)
    assert len(folds) == 5
    scored = np.sort(np.concatenate([va for _, va in folds]))
    assert np.array_equal(scored, np.arange(1000))  # every row scored once
    assert all(abs(y[va].mean() - 0.3) < 0.02 for _, va in folds)  # stratified
    holdout = [(np.arange(800), np.arange(800, 1000))]
    for config, images in ((default_config(family="lightgbm"), False), (default_config(), True),
                           (default_config(folds=1), False)):
        plan = fold_plan(config, task, y, 800, ["lightgbm"], images)
        assert len(plan) == 1 and np.array_equal(plan[0][1], holdout[0][1])
    rare = np.array([0] * 97 + [1] * 3)
    assert len(fold_plan(default_config(), task, rare, 80, ["lightgbm"], images=False)) == 3


def test_a_metric_that_does_not_apply_is_refused_with_the_valid_ones(diamonds):
    with pytest.raises(UnknownNameError, match="macro_f1.*rmse|rmse.*macro_f1"):
        takeoff.train(diamonds, "price", time_budget=10, config={"metric": "macro_f1"})


def test_macro_f1_makes_auto_predict_the_classes_argmax_never_does(diamonds, tmp_path):
    """Diamond colour from four weak columns: the most probable class is rarely a small class.
    Judged by macro-F1, the decision weighs rarer classes up: each class gets predicted on
    held-out rows, and held-out macro-F1 rises."""
    df = diamonds[["carat", "depth", "table", "price", "color"]]
    train, test = df.iloc[:2000], df.iloc[2000:]
    plain = takeoff.train(train, "color", time_budget=15, family="linear", seed=0, config={"folds": 3})
    tuned = takeoff.train(train, "color", time_budget=15, family="linear", seed=0, config={"folds": 3, "metric": "macro_f1"})
    assert plain.threshold is None and tuned.manifest["training"]["metric"] == "macro_f1"
    weights = dict(zip(tuned.classes, tuned.threshold))
    counts = train["color"].value_counts()
    assert weights[counts.idxmin()] == 1.0 and weights[counts.idxmax()] < 1.0  # the rarest class weighs most
    plain_pred, tuned_pred = plain.predict(test), tuned.predict(test)
    assert set(tuned_pred) == set(test["color"])
    never = set(test["color"]) - set(plain_pred)
    assert never, "the test needs a class plain argmax does not predict"
    assert f1_score(test["color"], tuned_pred, average="macro") > f1_score(test["color"], plain_pred, average="macro") + 0.03
    tuned.save(tmp_path / "tuned")  # the decision is the bundle's: a loaded model decides the same
    assert takeoff.load(tmp_path / "tuned").predict(test).tolist() == tuned_pred.tolist()


def test_a_log_target_round_trips_through_the_bundle(diamonds, tmp_path):
    assert skewed_positive(diamonds["price"].to_numpy())
    assert not skewed_positive(diamonds["depth"].to_numpy())
    train, rows = diamonds.iloc[:2500], diamonds.iloc[2500:]
    model = takeoff.train(train, "price", time_budget=20, family="lightgbm", seed=0, out=tmp_path / "m",
                          config={"target_transform": "log", "models": {"lightgbm": {"max_rounds": 200}}})
    (member,) = model.manifest["members"]
    assert member["target_transform"] == "log1p" and member["id"] == "lightgbm.log"
    assert isinstance(model.blend.members[0], LogTarget)
    pred = model.predict(rows)
    # on the target's scale: close to the prices, never negative
    assert pred.min() > 0 and np.sqrt(np.mean((pred - rows["price"]) ** 2)) < 0.25 * rows["price"].std()
    loaded = takeoff.load(tmp_path / "m")
    assert isinstance(loaded.blend.members[0], LogTarget)
    np.testing.assert_array_equal(loaded.predict(rows), pred)
    # the exported graph appends exp(z) - 1: same values as the native bundle
    from takeoff.compression.onnx import write_onnx_bundle

    exported = write_onnx_bundle(loaded, tmp_path / "onnx", frame=rows.head(200))
    got = exported.predict(rows.head(200))
    np.testing.assert_allclose(got, pred[:200], rtol=1e-4)
