"""The MLP family: heads per task, determinism, save/load, resume, budget, quality."""

from __future__ import annotations

import time

import numpy as np
import pytest

from takeoff.data.schema import Task
from takeoff.errors import BundleError, DataError
from takeoff.features.block import Features
from takeoff.models.base import Dataset
from takeoff.models.mlp import MLPFamily, MLPParams
from takeoff.training.callbacks import Callback
from takeoff.training.context import FitContext

FAST = {"hidden_sizes": (32,), "max_epochs": 15, "batch_size": 64, "patience": 3, "learning_rate": 1e-2}


def _features(n: int, seed: int, d: int = 6, cards: tuple[int, ...] = (5, 12)) -> Features:
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, d)).astype(np.float32)
    categorical = np.stack([rng.integers(0, c, n) for c in cards], axis=1).astype(np.int64)
    num_names = [f"x{i}" for i in range(d)]
    cat_names = [f"c{j}" for j in range(len(cards))]
    return Features(numeric, categorical, num_names, cat_names, list(cards), num_names + cat_names)


def _signal(X: Features, rng) -> np.ndarray:
    return X.numeric[:, 0] + 0.5 * X.numeric[:, 1] + (X.categorical[:, 0] == 2) + 0.3 * rng.normal(size=len(X))


def _problem(kind: str, n: int = 400, seed: int = 0, n_classes: int = 3, d: int = 6):
    """(task, train, valid) with a learnable signal."""
    rng = np.random.default_rng(seed + 100)
    X = _features(n, seed, d=d)
    s = _signal(X, rng)
    if kind == "binary":
        task, y = Task("binary", "y", [0, 1]), (s > 0.3).astype(np.int64)
    elif kind == "multiclass":
        edges = np.quantile(s, np.linspace(0, 1, n_classes + 1)[1:-1])
        task, y = Task("multiclass", "y", list(range(n_classes))), np.digitize(s, edges).astype(np.int64)
    else:
        task, y = Task("regression", "y"), 3.0 * s + 10.0
    cut = int(n * 0.75)
    train = Dataset(X.take(np.arange(cut)), y[:cut])
    valid = Dataset(X.take(np.arange(cut, n)), y[cut:])
    return task, train, valid


def _ctx(**kwargs) -> FitContext:
    return FitContext(seed=kwargs.pop("seed", 0), progress=False, **kwargs)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_outputs_and_report_per_task(kind):
    task, train, valid = _problem(kind)
    model = MLPFamily(task, FAST)
    report = model.fit(train, valid, _ctx())
    pred = model.predict(valid.X)
    assert pred.dtype == np.float32
    if task.is_classification:
        assert pred.shape == (len(valid), len(task.classes))
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-5)
        assert (pred >= 0).all()
        assert (pred.argmax(axis=1) == valid.y).mean() > 0.7
    else:
        assert pred.shape == (len(valid),)
        r2 = 1 - ((pred - valid.y) ** 2).sum() / ((valid.y - valid.y.mean()) ** 2).sum()
        assert r2 > 0.8
    assert set(report.history) == {"train_loss", "valid_loss"}
    assert len(report.history["train_loss"]) == len(report.history["valid_loss"]) >= 1
    assert 1 <= report.best_iteration <= len(report.history["train_loss"])
    assert report.stopped_by in ("early_stopping", "max") and report.seconds > 0
    assert model.predict(valid.X.take(np.arange(0))).shape[0] == 0


def test_ten_classes_get_a_ten_logit_softmax_head():
    task, train, valid = _problem("multiclass", n=600, n_classes=10)
    model = MLPFamily(task, {**FAST, "max_epochs": 2})
    model.fit(train, valid, _ctx())
    assert model._net.head.out_features == 10
    pred = model.predict(valid.X)
    assert pred.shape == (len(valid), 10)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-5)
    binary_task, train2, valid2 = _problem("binary")
    binary = MLPFamily(binary_task, {**FAST, "max_epochs": 1})
    binary.fit(train2, valid2, _ctx())
    assert binary._net.head.out_features == 2  # softmax over 2 logits, never a sigmoid


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    task, train, valid = _problem("multiclass")
    model = MLPFamily(task, FAST)
    model.fit(train, valid, _ctx())
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.json", "mlp.safetensors"]
    loaded = MLPFamily.load(tmp_path, task, model.params.model_dump())
    np.testing.assert_array_equal(loaded.predict(valid.X), model.predict(valid.X))
    assert loaded.refit_params(1.0) == model.refit_params(1.0)

    (tmp_path / "mlp.safetensors").unlink()
    with pytest.raises(BundleError, match="mlp.safetensors"):
        MLPFamily.load(tmp_path, task, {})


def test_regression_round_trip_undoes_the_target_scaling(tmp_path):
    task, train, valid = _problem("regression")
    model = MLPFamily(task, FAST)
    model.fit(train, valid, _ctx())
    model.save(tmp_path)
    loaded = MLPFamily.load(tmp_path, task, model.params.model_dump())
    pred = loaded.predict(valid.X)
    np.testing.assert_array_equal(pred, model.predict(valid.X))
    assert abs(pred.mean() - valid.y.mean()) < 1.0  # in the target's units (mean 10)


def test_same_seed_same_predictions():
    task, train, valid = _problem("binary")
    preds = []
    for seed in (0, 0, 1):
        model = MLPFamily(task, FAST)
        model.fit(train, valid, _ctx(seed=seed))
        preds.append(model.predict(valid.X))
    np.testing.assert_array_equal(preds[0], preds[1])
    assert not np.array_equal(preds[0], preds[2])


class InterruptAt(Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_batch_end(self, trainer, step, loss):
        if trainer.epoch == self.epoch and step == 1:
            raise KeyboardInterrupt


def test_resume_after_interrupt_matches_the_uninterrupted_fit(tmp_path):
    task, train, valid = _problem("binary")
    params = {**FAST, "patience": 50}
    full = MLPFamily(task, params)
    full_report = full.fit(train, valid, _ctx(checkpoint_dir=tmp_path / "full"))

    cut = MLPFamily(task, params)
    cut.callbacks.append(InterruptAt(3))
    with pytest.raises(KeyboardInterrupt):
        cut.fit(train, valid, _ctx(checkpoint_dir=tmp_path / "cut"))

    warnings: list[str] = []
    resumed = MLPFamily(task, params)
    report = resumed.fit(train, valid, _ctx(checkpoint_dir=tmp_path / "cut", warn=warnings.append))
    assert warnings == []
    assert report.history == full_report.history
    assert report.best_iteration == full_report.best_iteration
    np.testing.assert_array_equal(resumed.predict(valid.X), full.predict(valid.X))

    # another seed is another fit: the checkpoint is not reused
    other = MLPFamily(task, params)
    other.fit(train, valid, _ctx(seed=1, checkpoint_dir=tmp_path / "cut", warn=warnings.append))
    assert len(warnings) == 1 and "another fit" in warnings[0]


def test_time_budget_is_honoured():
    task = Task("binary", "y", [0, 1])
    X = _features(200_000, 0, d=40)
    y = (X.numeric[:, 0] > 0).astype(np.int64)
    model = MLPFamily(task, {"hidden_sizes": (256, 128)})
    start = time.monotonic()
    report = model.fit(Dataset(X, y), None, _ctx(deadline=start + 2.0))
    elapsed = time.monotonic() - start
    assert elapsed < 2.6, elapsed
    assert report.stopped_by == "time_budget"
    assert model.predict(X.take(np.arange(10))).shape == (10, 2)


def test_early_stopping_keeps_the_best_epoch():
    task, train, valid = _problem("binary")
    # validation labels flipped: the validation loss gets worse as training learns
    flipped = Dataset(valid.X, 1 - valid.y)
    model = MLPFamily(task, {**FAST, "max_epochs": 30, "patience": 2})
    report = model.fit(train, flipped, _ctx())
    assert report.stopped_by == "early_stopping"
    losses = report.history["valid_loss"]
    assert report.best_iteration == int(np.argmin(losses)) + 1 < len(losses)


def test_refit_runs_the_fixed_epoch_count_without_validation():
    task, train, valid = _problem("binary")
    model = MLPFamily(task, FAST)
    model.fit(train, valid, _ctx())
    overrides = model.refit_params(1.25)
    assert set(overrides) == {"epochs"} and overrides["epochs"] >= 1
    full = Dataset(train.X.concat([train.X, valid.X]), np.concatenate([train.y, valid.y]))
    refit = MLPFamily(task, {**model.params.model_dump(), "epochs": 3})
    report = refit.fit(full, None, _ctx())
    assert len(report.history["train_loss"]) == 3 and report.stopped_by == "max"
    assert "valid_loss" not in report.history


def test_no_validation_holds_out_rows_for_early_stopping():
    task, train, _ = _problem("regression")
    model = MLPFamily(task, FAST)
    report = model.fit(train, None, _ctx())
    assert len(report.history["valid_loss"]) >= 1


def test_class_weights_keep_probabilities_calibrated():
    rng = np.random.default_rng(3)
    X = _features(1500, 3)
    y = (rng.random(1500) < 0.1 + 0.1 * (X.numeric[:, 0] > 0)).astype(np.int64)  # ~15% positive
    task = Task("binary", "y", [0, 1])
    model = MLPFamily(task, {**FAST, "class_weights": True})
    model.fit(Dataset(X.take(np.arange(1200)), y[:1200]), Dataset(X.take(np.arange(1200, 1500)), y[1200:]), _ctx())
    assert model.predict(X)[:, 1].mean() == pytest.approx(y.mean(), abs=0.05)


def test_bad_input_raises_data_errors():
    task, train, valid = _problem("binary")
    model = MLPFamily(task, FAST)
    with pytest.raises(DataError, match="not been fitted"):
        model.predict(valid.X)
    model.fit(train, valid, _ctx())
    narrow = Features(valid.X.numeric[:, :3], valid.X.categorical, [], [], [5, 12], [])
    with pytest.raises(DataError, match="6 numeric"):
        model.predict(narrow)
    codes = valid.X.categorical.copy()
    codes[4, 1] = 12
    with pytest.raises(DataError, match="'c1' has code 12 in row 4"):
        model.predict(Features(valid.X.numeric, codes, valid.X.numeric_names, ["c0", "c1"], [5, 12], []))
    numbers = valid.X.numeric.copy()
    numbers[2, 0] = np.nan
    with pytest.raises(DataError, match="nan"):
        model.predict(Features(numbers, valid.X.categorical, [], ["c0", "c1"], [5, 12], []))


def test_params_are_validated():
    assert MLPParams().hidden_sizes == (256, 128)
    assert MLPParams(hidden_sizes=[64, 32]).hidden_sizes == (64, 32)
    for bad in ({"dropout": 1.0}, {"hidden_sizes": []}, {"learning_rate": 0}, {"hidden": 3}):
        with pytest.raises(ValueError):
            MLPParams(**bad)


def test_breast_cancer_scores_like_a_real_model():
    pd = pytest.importorskip("pandas")
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from takeoff.data.conform import conform
    from takeoff.data.schema import infer_schema, infer_task
    from takeoff.features.pipeline import FeaturePipeline

    raw = load_breast_cancer(as_frame=True)
    df = raw.data.copy()
    df["diagnosis"] = np.where(raw.target == 0, "M", "B")
    rest, test = train_test_split(df, test_size=0.2, stratify=df["diagnosis"], random_state=0)
    train, valid = train_test_split(rest, test_size=0.2, stratify=rest["diagnosis"], random_state=0)
    schema = infer_schema(train, "diagnosis")
    task = infer_task(train["diagnosis"], "diagnosis")
    pipeline = FeaturePipeline(schema).fit(conform(train, schema)[0])

    def dataset(frame: pd.DataFrame) -> Dataset:
        return Dataset(pipeline.transform(conform(frame, schema)[0]), task.encode(frame["diagnosis"]))

    model = MLPFamily(task)
    model.fit(dataset(train), dataset(valid), _ctx())
    test_set = dataset(test)
    assert roc_auc_score(test_set.y, model.predict(test_set.X)[:, 1]) >= 0.99
