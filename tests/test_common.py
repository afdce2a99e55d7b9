"""Every discovered model family passes the same contract, automatically
(:func:`takeoff.testing.check_family`).

Fit on tiny real data for each task it declares, predict the right shapes, round-trip through
save/load with identical predictions, refit without a validation split, the same seed gives the
same model, bad input raises our errors, and an ONNX graph (where declared) predicts the same.
The families that read text get real tweets, those that read images real digits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from takeoff import registry
from takeoff.errors import MissingDependencyError
from takeoff.models.base import Family
from takeoff.testing import check_family
from takeoff.testing.data import split


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
        "multilabel": split(tweets[["text", "hour", "labels"]], "labels", "multilabel"),
        "binary": split(base, "source"),
        "multiclass": split(tweets[["text", "hour", "kind"]], "kind", "multiclass"),
        "regression": split(tweets[["text", "hour", "likes"]], "likes", "regression"),
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
        "multilabel": split(df[["image", "x", "shape"]], "shape", "multilabel"),
        "binary": split(df[df["digit"] != 7][["image", "x", "digit"]].reset_index(drop=True), "digit"),
        "multiclass": split(df[["image", "x", "digit"]], "digit", "multiclass"),
        "regression": split(df[["image", "x", "value"]], "value", "regression"),
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
        "multilabel": split(labels.drop(columns=["Status", "Records", "Home"]), "flags", "multilabel"),
        "binary": split(sample, "Status"),
        "multiclass": split(multi, "Home", "multiclass"),
        "regression": split(sample, "Amount", "regression"),
    }


# Over a family's own fast_params: what keeps its contract to seconds on two cores. The contract
# checks shapes, round trips and determinism, not accuracy, so two epochs (one frozen, one
# fine-tuning the backbone) on 32-pixel digits check all of image-finetune's paths.
SUITE_PARAMS = {
    "image-finetune": {"max_epochs": 2, "input_size": 32, "batch_size": 32},
    # the contract holds a restored model to 1e-6 of the saved one; on a CPU with AMX, bf16 embeddings move by
    # ~4e-4 with the batch they are computed in (tests/models/test_text_embed.py covers bf16 itself)
    "text-embed": {"precision": "fp32"},
}


def _check(request, name: str, **options) -> list[str]:
    cls = registry.get(name)
    assert issubclass(cls, Family) and cls.name == name
    problem = cls.unavailable(cls.Params().model_dump())
    if problem is not None:
        pytest.skip(f"{name} cannot train here: {problem}")
    fixture = "text_tasks" if cls.needs_text else "image_tasks" if cls.needs_images else "tasks"
    try:
        return check_family(cls, data=request.getfixturevalue(fixture), params=SUITE_PARAMS.get(name), **options)
    except MissingDependencyError as missing:
        pytest.skip(str(missing))


@pytest.mark.parametrize("name", registry.names())
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
def test_family_contract(name, kind, request, tmp_path):
    if not registry.get(name).supports(kind):
        pytest.skip(f"{name} does not declare {kind}")
    passed = _check(request, name, kinds=[kind], checks=["tasks"], directory=tmp_path)
    assert {f"{kind}: fit", f"{kind}: outputs", f"{kind}: save/load"} <= set(passed)


@pytest.mark.parametrize("name", registry.names())
def test_family_contract_once(name, request, tmp_path):
    """Same seed → same model, bad input raises our errors, ONNX parity where declared."""
    passed = _check(request, name, checks=["same_seed", "bad_input", "onnx"], directory=tmp_path)
    assert "bad input" in passed and any(p.endswith(": same seed") for p in passed)
    assert any(p.endswith(": onnx") for p in passed) == registry.get(name).exports_onnx


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


def test_the_registry_keeps_the_declared_orders():
    def kept(names, today):  # families added later may sit anywhere; these keep their order
        return [n for n in names if n in today] == today

    assert kept(registry.names(), ["lightgbm", "mlp", "tfidf", "text-embed", "text-finetune", "image-cnn",
                                   "image-finetune"])
    assert kept(registry.auto(), ["lightgbm", "mlp", "tfidf", "text-embed"])
    assert kept(registry.auto(images=True), ["image-cnn", "image-finetune"])
    assert kept(registry.auto_recommenders(), ["popular", "itemknn", "als", "two-tower"])
    assert kept(registry.recommender_names(), ["popular", "itemknn", "als", "two-tower"])
