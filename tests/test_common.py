"""Every registered model family passes the same contract, automatically.

Fit on tiny real data for each task it declares, predict the right shapes, round-trip through
save/load with identical predictions, and refit without a validation split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from takeoff import registry
from takeoff.data.conform import conform
from takeoff.data.schema import infer_schema, infer_task
from takeoff.features.pipeline import FeaturePipeline
from takeoff.models.base import Dataset, Family, FitReport
from takeoff.training.context import FitContext

# Small, fast settings per family so the contract runs in seconds.
FAST = {"lightgbm": {"max_rounds": 30}, "mlp": {"max_epochs": 3, "hidden_sizes": [16]},
        "text-finetune": {"max_epochs": 1, "max_length": 32, "batch_size": 16, "fusion_dim": 32},
        "image-cnn": {"max_epochs": 2, "width": 8}}


def _dataset(df: pd.DataFrame, target: str, task_kind: str | None = None):
    schema = infer_schema(df, target)
    task = infer_task(df[target], target, task_kind)
    frame, _ = conform(df, schema)
    features = FeaturePipeline(schema).fit(frame).transform(frame)
    y = task.encode(df[target])
    n = len(df)
    cut = int(n * 0.8)
    return task, Dataset(features.take(np.arange(cut)), y[:cut]), Dataset(features.take(np.arange(cut, n)), y[cut:])


@pytest.fixture(scope="module")
def text_tasks(datasets):
    """Tweets with a free-text column, for the families that read text (``needs_text``)."""
    tweets = pd.read_csv(datasets / "splits" / "tweets_source.train.csv").sample(300, random_state=1).reset_index(drop=True)
    tweets["hour"] = pd.to_datetime(tweets["created_at"]).dt.hour
    tweets["kind"] = np.where(tweets["favorite_count"] > tweets["favorite_count"].median(), "popular", "quiet")
    tweets["kind"] = np.where(tweets["retweet_count"] < 500, "rare", tweets["kind"])
    tweets["likes"] = np.log1p(tweets["favorite_count"])
    base = tweets[["text", "hour", "source"]]
    tweets["labels"] = [  # three labels read off each tweet: its phone, a link, an exclamation
        "|".join(x for x in ("android" if s == "Twitter for Android" else "", "link" if "http" in t else "",
                             "exclaims" if "!" in t else "") if x) for s, t in zip(tweets["source"], tweets["text"])]
    return {
        "multilabel": _dataset(tweets[["text", "hour", "labels"]], "labels", "multilabel"),
        "binary": _dataset(base, "source"),
        "multiclass": _dataset(tweets[["text", "hour", "kind"]], "kind", "multiclass"),
        "regression": _dataset(tweets[["text", "hour", "likes"]], "likes", "regression"),
    }


@pytest.fixture(scope="module")
def image_tasks(datasets):
    """Real digit images with a numeric column beside them, for the families that read
    images (``needs_images``)."""
    paths = {d: sorted((datasets / "digits" / d).glob("*.png"))[:40] for d in ("0", "1", "7")}
    rows = [(str(p), int(d)) for d, ps in paths.items() for p in ps]
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rows, columns=["image", "digit"]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    df["x"] = rng.normal(size=len(df))
    df["value"] = df["digit"] + df["x"]
    df["shape"] = df["digit"].map({0: "round", 1: "straight", 7: "straight|corner"})
    return {
        "multilabel": _dataset(df[["image", "x", "shape"]], "shape", "multilabel"),
        "binary": _dataset(df[df["digit"] != 7][["image", "x", "digit"]].reset_index(drop=True), "digit"),
        "multiclass": _dataset(df[["image", "x", "digit"]], "digit", "multiclass"),
        "regression": _dataset(df[["image", "x", "value"]], "value", "regression"),
    }


@pytest.fixture(scope="module")
def tasks(credit):
    sample = credit.sample(400, random_state=1).reset_index(drop=True)
    multi = sample.copy()
    multi["Home"] = multi["Home"].fillna("other")
    labels = sample.copy()  # three labels from the table's own columns, which then leave the inputs
    labels["flags"] = ["|".join(x for x in ("bad" if s == "bad" else "", "records" if r == "yes" else "",
                                            "owner" if h == "owner" else "") if x)
                       for s, r, h in zip(labels["Status"], labels["Records"], labels["Home"])]
    return {
        "multilabel": _dataset(labels.drop(columns=["Status", "Records", "Home"]), "flags", "multilabel"),
        "binary": _dataset(sample, "Status"),
        "multiclass": _dataset(multi, "Home", "multiclass"),
        "regression": _dataset(sample, "Amount", "regression"),
    }


def _params(cls, name):
    fields = cls.Params.model_fields
    return {k: v for k, v in FAST.get(name, {}).items() if k in fields}


@pytest.mark.parametrize("name", registry.names())
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
def test_family_contract(name, kind, request, tmp_path):
    cls = registry.get(name)
    assert issubclass(cls, Family) and cls.name == name
    if not cls.supports(kind):
        pytest.skip(f"{name} does not declare {kind}")
    if name == "text-embed":
        pytest.importorskip("transformers", reason="the text extra is not installed")
    fixture = "text_tasks" if cls.needs_text else "image_tasks" if cls.needs_images else "tasks"
    task, train, valid = request.getfixturevalue(fixture)[kind]
    family = cls.create(task, _params(cls, name))  # multilabel: natively, or one model per label
    report = family.fit(train, valid, FitContext(seed=0, progress=False))
    assert isinstance(report, FitReport) and report.best_iteration and report.best_iteration >= 1

    pred = family.predict(valid.X)
    if task.is_classification:
        assert pred.shape == (len(valid), len(task.classes))
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-5)
        assert (pred >= 0).all()
    elif task.is_multilabel:
        assert pred.shape == (len(valid), len(task.classes))
        assert ((pred >= 0) & (pred <= 1)).all()
    else:
        assert pred.shape == (len(valid),)
        assert np.isfinite(pred).all()

    family.save(tmp_path)
    loaded = cls.restore(tmp_path, task, family.params.model_dump())
    np.testing.assert_allclose(loaded.predict(valid.X), pred, rtol=1e-6, atol=1e-6)

    overrides = family.refit_params(1.25)
    if overrides is not None:
        refit = cls.create(task, {**family.params.model_dump(), **overrides})
        refit.fit(train, None, FitContext(seed=0, progress=False))
        assert refit.predict(valid.X).shape == pred.shape


@pytest.mark.parametrize("name", registry.names())
def test_family_params_are_declared_once_with_descriptions(name):
    cls = registry.get(name)
    for field_name, field in cls.Params.model_fields.items():
        assert field.description, f"{name}.{field_name} has no description"
    with pytest.raises(Exception):
        cls.Params(not_a_param=1)


def test_unknown_family_lists_valid_names():
    from takeoff.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="lightgbm") as info:
        registry.get("lightgbn")
    assert "Did you mean 'lightgbm'" in str(info.value)
