"""The text-finetune family on real tweets (text → source), kept small: 300 training rows,
32 tokens, batches of 16, one or two epochs of all-MiniLM-L6-v2 on the CPU."""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers", reason="the text extra is not installed: pip install 'takeoff[text]'")

from takeoff.data.conform import conform  # noqa: E402
from takeoff.data.schema import infer_schema, infer_task  # noqa: E402
from takeoff.errors import BudgetError, MissingDependencyError  # noqa: E402
from takeoff.features.pipeline import FeaturePipeline  # noqa: E402
from takeoff.models.base import Dataset  # noqa: E402
from takeoff.models.text_finetune import TextFinetuneFamily  # noqa: E402
from takeoff.training.context import FitContext  # noqa: E402

SMALL = {"max_length": 32, "batch_size": 16, "fusion_dim": 32}


def _split(df: pd.DataFrame, target: str, kind: str, n_train: int):
    schema = infer_schema(df, target)
    task = infer_task(df[target], target, kind)
    frame, _ = conform(df, schema)
    features = FeaturePipeline(schema).fit(frame).transform(frame)
    y = task.encode(df[target])
    rows = np.arange(len(df))
    return (task, Dataset(features.take(rows[:n_train]), y[:n_train]),
            Dataset(features.take(rows[n_train:]), y[n_train:]))


@pytest.fixture(scope="module")
def tweets(datasets) -> pd.DataFrame:
    df = pd.read_csv(datasets / "splits" / "tweets_source.train.csv").sample(400, random_state=0).reset_index(drop=True)
    df["hour"] = pd.to_datetime(df["created_at"]).dt.hour
    df["likes"] = np.log1p(df["favorite_count"])
    return df


@pytest.fixture(scope="module")
def binary(tweets):
    return _split(tweets[["text", "hour", "source"]], "source", "binary", 300)


@pytest.fixture(scope="module")
def fitted(binary):
    task, train, valid = binary
    model = TextFinetuneFamily(task, {**SMALL, "max_epochs": 2, "patience": 2})
    model.fit(train, valid, FitContext(seed=0, progress=False, device="cpu"))
    return model


def test_fine_tuning_lowers_the_validation_loss(fitted, binary):
    _, _, valid = binary
    history = fitted.report.history
    assert len(history["valid_loss"]) == 2 and fitted.report.best_iteration in (1, 2)
    assert min(history["valid_loss"]) < history["valid_loss_initial"][0] - 0.02, history
    probs = fitted.predict(valid.X)
    assert probs.shape == (len(valid), 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    majority = np.bincount(valid.y.astype(int)).max() / len(valid)
    assert (probs.argmax(axis=1) == valid.y).mean() >= majority - 0.05  # not worse than guessing
    assert fitted.refit_params(1.3) == {"epochs": fitted.report.best_iteration}


def test_save_and_load_give_identical_probabilities(fitted, binary, tmp_path):
    task, _, valid = binary
    fitted.save(tmp_path)
    assert (tmp_path / "encoder" / "model.safetensors").is_file() and (tmp_path / "encoder" / "tokenizer.json").is_file()
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))
    loaded = TextFinetuneFamily.load(tmp_path, task, fitted.params.model_dump())
    np.testing.assert_allclose(loaded.predict(valid.X), fitted.predict(valid.X), atol=1e-5)


def test_regression_on_log_likes_predicts_finite_values(tweets):
    task, train, valid = _split(tweets[["text", "hour", "likes"]].iloc[:200], "likes", "regression", 160)
    model = TextFinetuneFamily(task, {**SMALL, "max_epochs": 1})
    model.fit(train, valid, FitContext(seed=0, progress=False, device="cpu"))
    pred = model.predict(valid.X)
    assert pred.shape == (len(valid),) and np.isfinite(pred).all()
    assert abs(pred.mean() - train.y.mean()) < 3 * train.y.std()  # on the target's scale, not standardised


def test_multilabel_head_gives_one_probability_per_label(tweets, tmp_path):
    # three labels read off real tweets: the phone it came from, a link, an exclamation
    labels = np.where(tweets["source"] == "Twitter for Android", "android", "")
    df = pd.DataFrame({"text": tweets["text"], "hour": tweets["hour"], "labels": [
        "|".join(x for x in (a, "link" if "http" in t else "", "exclaims" if "!" in t else "") if x)
        for a, t in zip(labels, tweets["text"])]})
    task, train, valid = _split(df.iloc[:220], "labels", "multilabel", 170)
    assert task.classes == ["android", "exclaims", "link"] and train.y.shape == (170, 3)
    model = TextFinetuneFamily(task, {**SMALL, "max_epochs": 2, "patience": 2})
    model.fit(train, valid, FitContext(seed=0, progress=False, device="cpu"))
    history = model.report.history
    assert min(history["valid_loss"]) < history["valid_loss_initial"][0], history
    probs = model.predict(valid.X)
    assert probs.shape == (len(valid), 3) and ((probs >= 0) & (probs <= 1)).all()
    assert not np.allclose(probs.sum(axis=1), 1)  # independent sigmoids, not a softmax
    from takeoff.evaluation.metrics import compute_metrics

    assert compute_metrics(task, valid.y, probs)["roc_auc"] > 0.6
    model.save(tmp_path)
    loaded = TextFinetuneFamily.load(tmp_path, task, model.params.model_dump())
    np.testing.assert_allclose(loaded.predict(valid.X), probs, atol=1e-5)


def test_lora_trains_only_adapters_and_saves_a_merged_model(binary, fitted, tmp_path, monkeypatch):
    pytest.importorskip("peft")
    task, train, valid = binary
    model = TextFinetuneFamily(task, {**SMALL, "max_epochs": 1, "lora_r": 4})
    model.fit(Dataset(train.X.take(np.arange(128)), train.y[:128]), None, FitContext(seed=0, progress=False, device="cpu"))
    # r=4 adapters on query and value of 6 layers (2·4·384 each) plus the head, not 22M weights
    head = fitted.n_trainable - sum(t.numel() for t in fitted._net.encoder.parameters())
    assert model.n_trainable == head + 6 * 2 * (2 * 4 * 384), (model.n_trainable, head)
    assert model.n_trainable < fitted.n_trainable / 50
    pred = model.predict(valid.X)
    model.save(tmp_path)
    assert not (tmp_path / "encoder" / "adapter_config.json").exists()
    monkeypatch.setitem(sys.modules, "peft", None)  # loading must not need peft
    loaded = TextFinetuneFamily.load(tmp_path, task, model.params.model_dump())
    np.testing.assert_allclose(loaded.predict(valid.X), pred, atol=1e-5)


def test_lora_without_peft_names_the_package(binary, monkeypatch):
    task, train, valid = binary
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(MissingDependencyError, match="peft"):
        TextFinetuneFamily(task, {**SMALL, "lora_r": 4}).fit(train, valid, FitContext(seed=0, progress=False))


def test_an_expired_deadline_raises_budget_error(binary):
    task, train, valid = binary
    with pytest.raises(BudgetError):
        TextFinetuneFamily(task, SMALL).fit(train, valid, FitContext(deadline=time.monotonic() - 1, progress=False))


def test_a_loss_that_turns_nan_stops_the_fit_with_the_fix(binary):
    """The running loss is read every few batches (not each one, which would stall a GPU); a
    nan in it still ends the fit within the epoch."""
    from takeoff.errors import DataError

    task, train, _ = binary
    weight = np.ones(len(train), dtype=np.float32)
    weight[5] = np.nan  # one row's weight: its batch's loss is nan
    bad = Dataset(train.X, train.y, weight)
    with pytest.raises(DataError, match="nan or infinite.*lower learning_rate"):
        TextFinetuneFamily(task, {**SMALL, "epochs": 1}).fit(bad, None, FitContext(seed=0, progress=False, device="cpu"))


def test_auto_tries_it_only_when_the_fit_fits_the_time_left():
    assert TextFinetuneFamily.auto_order is not None and not TextFinetuneFamily.cross_validates
    assert TextFinetuneFamily.needs_text
    small, large = TextFinetuneFamily.fit_seconds(600), TextFinetuneFamily.fit_seconds(6000)
    assert small < large and TextFinetuneFamily.fit_seconds(600, {"max_epochs": 6}) > small
    assert TextFinetuneFamily.auto_skip(600, 600) is None  # the 600 reviews with 600 s
    reason = TextFinetuneFamily.auto_skip(6000, 600)
    assert reason is not None and "6,000 rows" in reason and "--time-budget" in reason
    assert TextFinetuneFamily.auto_skip(600, small / 0.6 - 1) is not None
    assert TextFinetuneFamily.auto_skip(600, small / 0.6 + 1) is None
    missing = TextFinetuneFamily.auto_skip(100, 1e6, {"encoder": "/nonexistent/encoder"})
    assert missing is not None and "not found" in missing


def test_classes_weigh_alike_in_the_loss(tweets):
    import torch

    df = tweets[["text", "source"]].copy()
    rare = df["source"] == "Twitter for iPhone"
    df = pd.concat([df[~rare].head(90), df[rare].head(10)]).reset_index(drop=True)
    task, train, _ = _split(df, "source", "binary", 100)
    weighted = TextFinetuneFamily(task, SMALL)
    weighted.spec = weighted._make_spec(train)
    counts = np.bincount(train.y, minlength=2)
    assert np.allclose(np.asarray(weighted._class_weight) * counts, len(train.y) / 2)  # each class in total alike
    outputs, target = torch.zeros(4, 2), torch.tensor([0, 0, 0, 1])
    outputs[:, 0] = 2.0  # confident in the common class: wrong on the rare row
    loss_weighted = weighted._loss(torch.device("cpu"))(outputs, target, None)
    plain = TextFinetuneFamily(task, {**SMALL, "class_weights": False})
    plain.spec = plain._make_spec(train)
    assert plain._class_weight is None
    loss_plain = plain._loss(torch.device("cpu"))(outputs, target, None)
    assert float(loss_weighted) > float(loss_plain)  # the rare row's mistake counts for more
