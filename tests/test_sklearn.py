"""takeoff.sklearn: scikit-learn's own estimator checks, and the estimators inside a Pipeline,
cross_val_score and GridSearchCV on the real credit-risk table."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

import takeoff
from takeoff.errors import DataError
from takeoff.sklearn import SKIPPED_CHECKS, TakeoffClassifier, TakeoffRegressor


@pytest.fixture(autouse=True)
def _quiet():
    """Dozens of tiny fits: keep their INFO lines out of the test log."""
    logger = logging.getLogger("takeoff")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


# family "linear" (the cheapest: about 10 s of CPU for all the checks of both) with a generous
# budget: these fits take well under a second, and a budget that a loaded machine could run short
# of would make two fits of the same data differ (refit skipped for lack of time)
@parametrize_with_checks([TakeoffClassifier(family="linear", time_budget=60),
                          TakeoffRegressor(family="linear", time_budget=60)],
                         expected_failed_checks=lambda est: SKIPPED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def credit_xy(credit_small):
    X = credit_small.drop(columns=["Status"])
    return X, credit_small["Status"]


def test_cross_val_score_matches_takeoffs_own_k_fold(credit_small, credit_xy):
    """Five folds scored by scikit-learn against takeoff's own 5-fold out-of-fold roc_auc."""
    X, y = credit_xy
    clf = TakeoffClassifier(family="linear", time_budget=20, config={"folds": 1})  # one fit per fold
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    scores = cross_val_score(clf, X, y, cv=cv, scoring="roc_auc")
    own = takeoff.train(credit_small, target="Status", family="linear", time_budget=20,
                        config={"folds": 5}).metrics["roc_auc"]
    assert len(scores) == 5 and scores.min() > 0.7
    assert abs(scores.mean() - own) < 0.03, (scores, own)


def test_in_a_pipeline_and_grid_search(credit_xy):
    X, y = credit_xy
    # a DataFrame with text categories goes through as it is (takeoff reads it)
    pipe = Pipeline([("keep", FunctionTransformer(lambda d: d.drop(columns=["Price"]))),
                     ("model", TakeoffClassifier(family="lightgbm", time_budget=10))])
    pipe.fit(X, y)
    assert set(pipe.predict(X.head(20))) <= {"good", "bad"}
    assert pipe.score(X, y) > 0.75
    assert pipe.named_steps["model"].model_.leaderboard()["family"].tolist() == ["lightgbm"]
    grid = GridSearchCV(TakeoffClassifier(time_budget=5), {"family": ["linear", "lightgbm"]}, cv=2,
                        scoring="roc_auc")
    grid.fit(X, y)
    assert grid.best_params_["family"] in ("linear", "lightgbm")
    assert grid.best_score_ > 0.75 and len(grid.cv_results_["mean_test_score"]) == 2
    proba = grid.predict_proba(X.head(5))
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(grid.classes_) == ["bad", "good"]


def test_regressor_with_a_column_transformer_and_pickle(datasets):
    diamonds = pd.read_csv(datasets / "diamonds.csv").sample(800, random_state=0)
    X, y = diamonds.drop(columns=["price"]), diamonds["price"]
    numeric = ["carat", "depth", "table", "x", "y", "z"]
    pipe = Pipeline([("cols", ColumnTransformer([("num", "passthrough", numeric)])),
                     ("model", TakeoffRegressor(family="lightgbm", time_budget=10))])
    pipe.fit(X.iloc[:600], y.iloc[:600])
    assert pipe.score(X.iloc[600:], y.iloc[600:]) > 0.8
    again = pickle.loads(pickle.dumps(pipe))  # the model travels as its bundle's files
    np.testing.assert_allclose(again.predict(X.iloc[600:]), pipe.predict(X.iloc[600:]))


def test_bad_input_is_named(credit_xy):
    X, y = credit_xy
    clf = TakeoffClassifier(family="linear", time_budget=5).fit(X.head(200), y.head(200))
    with pytest.raises(DataError, match="the estimator was fitted with"):
        clf.predict(X.head(3)[list(reversed(X.columns))])
    with pytest.raises(DataError, match="only one class"):
        TakeoffClassifier().fit(X.head(10), ["good"] * 10)
