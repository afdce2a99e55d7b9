"""Every family that ``auto`` fits keeps a short deadline within 10% (plus a start-up constant):
it checks the deadline between its batches, epochs, boosting rounds, grid points or the
encoder's batches, and either returns the best model so far or raises BudgetError.

The tables are sized so that each fit would take several times its deadline without it.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from takeoff.data.conform import conform
from takeoff.data.schema import infer_schema, infer_task
from takeoff.errors import BudgetError
from takeoff.features.pipeline import FeaturePipeline
from takeoff.models.base import Dataset
from takeoff.training.context import FitContext

SLACK = 1.10  # the deadline holds within 10%...
# ...plus the family's start-up: what it spends before its first deadline check (LightGBM's
# binned dataset and one round, the MLP's tensors and first batch, the linear model's first C,
# the tokenizing of the texts), measured in each test by a fit whose deadline has all but passed,
# and at least this many seconds. On a shared, loaded machine that start-up is what grows.
STARTUP_S = 0.5


def _prepare(df: pd.DataFrame, target: str):
    """(task, train, valid): features fitted on the first 80% of ``df``."""
    schema = infer_schema(df, target)
    task = infer_task(df[target], target)
    frame, _ = conform(df, schema, target=target)
    cut = int(len(frame) * 0.8)
    X = FeaturePipeline(schema).fit(frame.iloc[:cut]).transform(frame)
    y = task.encode(df[target])
    return task, Dataset(X.take(np.arange(cut)), y[:cut]), Dataset(X.take(np.arange(cut, len(frame))), y[cut:])


def _fit(family, train, valid, seconds: float) -> tuple[float, str]:
    """(seconds taken, what stopped it) of a fit with a deadline ``seconds`` away."""
    started = time.monotonic()
    try:
        stopped = family.fit(train, valid, FitContext(deadline=started + seconds, seed=0, progress=False)).stopped_by
    except BudgetError:
        stopped = "BudgetError"
    return time.monotonic() - started, stopped


def _timed_fit(make, train, valid, seconds: float):
    """Fit ``make()`` with a deadline ``seconds`` away and assert it holds within 10% plus the
    family's start-up; (the fitted family, what stopped it)."""
    family = make()
    family.warm_up()  # imports, as auto does before the first candidate's clock starts
    startup, _ = _fit(make(), train, valid, 1e-3)
    family = make()
    elapsed, stopped = _fit(family, train, valid, seconds)
    allowed = SLACK * seconds + max(startup, STARTUP_S)
    assert elapsed <= allowed, f"{family.name}: {elapsed:.2f}s for a {seconds}s deadline ({stopped}; start-up {startup:.2f}s)"
    return family, stopped


@pytest.fixture(scope="module")
def diamonds(datasets):
    return pd.read_csv(datasets / "splits" / "diamonds.train.csv")


@pytest.fixture(scope="module")
def tweets(datasets):
    return pd.read_csv(datasets / "splits" / "tweets_source.train.csv")


def test_lightgbm_stops_its_rounds_at_the_deadline(diamonds):
    from takeoff.models.lightgbm import LightGBMFamily

    task, train, valid = _prepare(diamonds, "price")
    # a learning rate this small never early-stops: tens of thousands of rounds without a deadline
    params = {"learning_rate": 0.001, "early_stopping_rounds": 100_000, "max_rounds": 100_000}
    family, stopped = _timed_fit(lambda: LightGBMFamily(task, params), train, valid, 2.0)
    assert stopped == "time_budget" and family.predict(valid.X).shape == (len(valid),)


def test_linear_stops_its_grid_at_the_deadline(diamonds):
    from takeoff.models.linear import LinearFamily

    task, train, valid = _prepare(diamonds.head(12_000), "cut")  # 5 classes: ~10 s for the whole grid of C
    family, stopped = _timed_fit(lambda: LinearFamily(task), train, valid, 2.0)
    assert stopped == "time_budget" and family.predict(valid.X).shape == (len(valid), len(task.classes))


def test_mlp_stops_between_batches_at_the_deadline(diamonds):
    from takeoff.models.mlp import MLPFamily

    task, train, valid = _prepare(diamonds, "price")
    family, stopped = _timed_fit(lambda: MLPFamily(task, {"max_epochs": 1000, "patience": 1000}), train, valid, 2.0)
    assert stopped == "time_budget" and np.isfinite(family.predict(valid.X)).all()


def test_tfidf_does_not_start_what_it_cannot_finish(tweets):
    from takeoff.models.tfidf import TfidfFamily

    task, train, valid = _prepare(tweets[["text", "source"]], "source")  # ~10 s without a deadline
    # 0.3 s: the vectorizers' sample says they would not finish, and nothing is started
    _, stopped = _timed_fit(lambda: TfidfFamily(task), train, valid, 0.3)
    assert stopped == "BudgetError"
    # 3 s: the n-grams are made (or refused), the grid of C stops where the next fit would overrun
    _timed_fit(lambda: TfidfFamily(task), train, valid, 3.0)


def test_text_embed_checks_the_deadline_between_the_encoders_batches(tweets):
    pytest.importorskip("transformers", reason="the text extra is not installed: pip install 'takeoff[text]'")
    from takeoff.models.text_embed import TextEmbedFamily

    task, train, valid = _prepare(tweets[["text", "source"]].head(3000), "source")  # ~40 s of embedding on 2 cores
    # warm_up loads the encoder, as auto does before the first candidate's clock starts
    _, stopped = _timed_fit(lambda: TextEmbedFamily(task), train, valid, 3.0)
    assert stopped == "BudgetError"
    with pytest.raises(BudgetError, match=r"after embedding [0-9,]+ of 2,[0-9]{3} distinct texts"):
        TextEmbedFamily(task).fit(train, valid, FitContext(deadline=time.monotonic() + 1.0, seed=0, progress=False))
