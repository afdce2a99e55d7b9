"""The linear family on real tables: quality against scikit-learn's own tuned linear models on
the same splits, the C chosen on validation and reused by the refit, one-hot codes (capped,
unseen), save/load, ONNX parity (the family's graph and a whole exported bundle), the budget."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff import registry
from takeoff.data.conform import conform
from takeoff.data.schema import infer_schema, infer_task
from takeoff.errors import BundleError, DataError
from takeoff.features.pipeline import FeaturePipeline
from takeoff.models.base import Dataset
from takeoff.models.linear import C_GRID, LinearFamily
from takeoff.training.context import FitContext


def _prepare(train: pd.DataFrame, test: pd.DataFrame, target: str, kind: str | None = None):
    """(task, pipeline, fit part, valid, test): features fitted on the first 80% of ``train``."""
    schema = infer_schema(train, target)
    task = infer_task(train[target], target, kind)
    frame, _ = conform(train, schema, target=target)
    cut = int(len(frame) * 0.8)
    pipeline = FeaturePipeline(schema).fit(frame.iloc[:cut])
    X, y = pipeline.transform(frame), task.encode(train[target])
    test_frame, _ = conform(test, schema, target=target)
    return (task, pipeline, Dataset(X.take(np.arange(cut)), y[:cut]),
            Dataset(X.take(np.arange(cut, len(frame))), y[cut:]),
            Dataset(pipeline.transform(test_frame), task.encode(test[target])))


def _ctx(**kwargs) -> FitContext:
    return FitContext(seed=0, progress=False, **kwargs)


def _split(datasets, name: str, rows: int | None = None):
    folder = datasets / "splits"
    train, test = pd.read_csv(folder / f"{name}.train.csv"), pd.read_csv(folder / f"{name}.test.csv")
    if rows:
        train = train.sample(rows, random_state=0).reset_index(drop=True)
    return train, test


def _sklearn(train: pd.DataFrame, test: pd.DataFrame, target: str, regression: bool) -> np.ndarray:
    """scikit-learn's own: median imputation, scaling, one-hot, C (alpha) by 5-fold CV on all
    the training rows; probabilities in sorted class order, or values."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), make_column_selector(dtype_include="number")),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="NA"), OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_exclude="number")),
    ])
    X, X_test = train.drop(columns=[target]), test.drop(columns=[target])
    if regression:
        return make_pipeline(columns, RidgeCV(alphas=np.logspace(-2, 3, 11))).fit(X, train[target]).predict(X_test)
    model = LogisticRegressionCV(Cs=np.logspace(-3, 2, 11), max_iter=2000, scoring="neg_log_loss", l1_ratios=(0.0,),
                                 use_legacy_attributes=False)
    return make_pipeline(columns, model).fit(X, train[target]).predict_proba(X_test)


@pytest.fixture(scope="module")
def cancer(datasets):
    """The family fitted on the breast-cancer split (30 numbers), C chosen on validation."""
    train, test = _split(datasets, "breast_cancer")
    task, pipeline, fit_part, valid, test_set = _prepare(train, test, "diagnosis")
    model = LinearFamily(task)
    model.fit(fit_part, valid, _ctx())
    return train, test, task, pipeline, fit_part, valid, test_set, model


@pytest.fixture(scope="module")
def credit_split(datasets):
    """The credit-risk split: numbers with missing values and four categorical columns."""
    train, test = _split(datasets, "credit_risk")
    return (train, test, *_prepare(train, test, "Status"))


def test_binary_quality_matches_sklearn_on_breast_cancer(cancer):
    from sklearn.metrics import roc_auc_score

    train, test, task, _, _, _, test_set, model = cancer
    auc = roc_auc_score(test_set.y, model.predict(test_set.X)[:, 1])
    theirs = _sklearn(train, test, "diagnosis", regression=False)  # columns: benign, malignant (sorted)
    their_auc = roc_auc_score(test["diagnosis"] == task.classes[1], theirs[:, sorted(task.classes).index(task.classes[1])])
    # measured 0.9907 against 0.9934 (theirs sees all the training rows, ours 80% of them)
    assert auc >= 0.985 and auc >= their_auc - 0.01, (auc, their_auc)


def test_credit_quality_matches_sklearn_with_categories(credit_split):
    from sklearn.metrics import roc_auc_score

    train, test, task, _, fit_part, valid, test_set = credit_split
    model = LinearFamily(task)
    model.fit(fit_part, valid, _ctx())
    auc = roc_auc_score(test_set.y, model.predict(test_set.X)[:, 1])
    theirs = _sklearn(train, test, "Status", regression=False)
    their_auc = roc_auc_score(test["Status"] == task.classes[1], theirs[:, sorted(task.classes).index(task.classes[1])])
    assert auc >= their_auc - 0.01 and auc >= 0.82, (auc, their_auc)  # measured 0.8367 and 0.8367


def test_regression_matches_sklearn_ridge_on_diamonds(datasets, tmp_path):
    train, test = _split(datasets, "diamonds", rows=4000)
    test = test.head(2000)
    task, _, fit_part, valid, test_set = _prepare(train, test, "price", "regression")
    model = LinearFamily(task)
    report = model.fit(fit_part, valid, _ctx())
    assert model.refit_params(1.0) == {"C": model.spec["C"]} and "valid_loss_per_C" in report.history
    pred = model.predict(test_set.X)
    rmse = float(np.sqrt(((pred - test_set.y) ** 2).mean()))
    theirs = _sklearn(train, test, "price", regression=True)
    their_rmse = float(np.sqrt(((theirs - test["price"]) ** 2).mean()))
    assert rmse <= 1.03 * their_rmse, (rmse, their_rmse)  # measured 1118 against 1126
    model.save(tmp_path)
    np.testing.assert_array_equal(LinearFamily.load(tmp_path, task, {}).predict(test_set.X), pred)


def test_the_C_chosen_on_validation_is_the_refit_C(cancer):
    from sklearn.linear_model import LogisticRegression

    _, _, task, _, fit_part, valid, test_set, model = cancer
    losses, chosen = model.report.history["valid_loss_per_C"], model.spec["C"]
    assert chosen == C_GRID[model.report.best_iteration - 1] and losses[model.report.best_iteration - 1] == min(losses)
    assert C_GRID[0] < chosen < C_GRID[-1] and len(losses) < len(C_GRID)  # stopped past the best
    overrides = model.refit_params(1.25)
    assert overrides == {"C": chosen}
    full = Dataset(fit_part.X.concat([fit_part.X, valid.X]), np.concatenate([fit_part.y, valid.y]))
    refit = LinearFamily(task, {**model.params.model_dump(), **overrides})
    report = refit.fit(full, None, _ctx())
    assert report.history == {} and report.best_iteration == 1 and refit.spec["C"] == chosen
    # the refit is the solver's model at that C on all the rows
    direct = LogisticRegression(C=chosen, max_iter=1000).fit(refit._design(full.X), full.y)
    np.testing.assert_allclose(refit.arrays["coef_num"], direct.coef_, rtol=1e-3, atol=1e-4)


def test_unseen_and_rare_codes_share_one_column(credit_split):
    train, _, task, pipeline, fit_part, valid, test_set = credit_split
    model = LinearFamily(task, {"max_one_hot": 4})
    model.fit(fit_part, valid, _ctx())
    assert model.spec["widths"] == [min(4, c) for c in fit_part.X.cardinalities]
    job = fit_part.X.categorical_names.index("Job")
    assert fit_part.X.cardinalities[job] > 4  # fixed, freelance, partime, others, + missing and rare
    rows = test_set.X.take(np.arange(20))
    rare, tail = rows.take(np.arange(20)), rows.take(np.arange(20))
    rare.categorical[:, job], tail.categorical[:, job] = 1, fit_part.X.cardinalities[job] - 1
    np.testing.assert_array_equal(model.predict(rare), model.predict(tail))
    # an unseen category through the pipeline: code 1, a finite prediction
    frame, _ = conform(train.head(3).assign(Job=["astronaut", "fixed", None]), pipeline.schema, target="Status")
    X = pipeline.transform(frame)
    assert X.categorical[0, job] == 1 and X.categorical[1, job] >= 2 and X.categorical[2, job] == 0
    proba = model.predict(X)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)
    bad = rows.take(np.arange(1))
    bad.categorical[0, job] = fit_part.X.cardinalities[job]
    with pytest.raises(DataError, match="Job"):
        model.predict(bad)


def test_absurd_numbers_are_clipped_to_the_training_range(credit_split):
    _, _, task, _, fit_part, valid, test_set = credit_split
    model = LinearFamily(task)
    model.fit(fit_part, valid, _ctx())
    rows = test_set.X.take(np.arange(5))
    at_max = rows.take(np.arange(5))
    rows.numeric[:] = 1e6  # what the pipeline makes of 1e300 (and NaN, which it imputes)
    rows.numeric[0] = np.nan
    at_max.numeric[:] = np.nanmax(fit_part.X.numeric, axis=0)
    got = model.predict(rows)
    np.testing.assert_allclose(got[1:], model.predict(at_max)[1:], atol=1e-12)
    assert np.isfinite(got).all()


def test_balanced_class_weight_predicts_the_minority_more(credit_split):
    _, _, task, _, fit_part, valid, test_set = credit_split
    plain, balanced = LinearFamily(task), LinearFamily(task, {"class_weight": "balanced"})
    for model in (plain, balanced):
        model.fit(fit_part, valid, _ctx())
    minority = int(np.argmin(np.bincount(fit_part.y)))
    recall = [(m.predict(test_set.X).argmax(axis=1)[test_set.y == minority] == minority).mean() for m in (plain, balanced)]
    # measured 0.50 and 0.75: the balanced loss moves the 0.5 boundary toward the minority
    assert recall[1] >= recall[0] + 0.15, recall


def test_save_load_identical_and_refusals(cancer, tmp_path):
    _, _, task, _, _, _, test_set, model = cancer
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["linear.json", "linear.safetensors"]
    document = json.loads((tmp_path / "linear.json").read_text(encoding="utf-8"))
    assert document["layout"]["C"] == model.spec["C"]
    loaded = LinearFamily.load(tmp_path, task, model.params.model_dump())
    np.testing.assert_array_equal(loaded.predict(test_set.X), model.predict(test_set.X))
    assert loaded.refit_params(1.0) == model.refit_params(1.0)
    with pytest.raises(BundleError, match="regression"):
        LinearFamily.load(tmp_path, type(task)("regression", "diagnosis", []), {})
    (tmp_path / "linear.safetensors").unlink()
    with pytest.raises(BundleError, match="linear.safetensors"):
        LinearFamily.load(tmp_path, task, {})
    with pytest.raises(DataError, match="fitted"):
        LinearFamily(task).predict(test_set.X)


def test_feature_importance_ranks_a_noise_column_low(datasets):
    train, test = _split(datasets, "credit_risk")
    rng = np.random.default_rng(0)
    train, test = (df.assign(noise=rng.normal(size=len(df))) for df in (train, test))
    task, _, fit_part, valid, _ = _prepare(train, test, "Status")
    model = LinearFamily(task)
    model.fit(fit_part, valid, _ctx())
    importance = model.feature_importance(valid.X)
    assert importance.shape == (len(valid.X.names),) and (importance >= 0).all()
    ranked = [valid.X.names[i] for i in np.argsort(-importance)]
    # measured: Amount, Seniority, Records, Income, Job first; noise 16th of 17
    assert "Records" in ranked[:5] and "Seniority" in ranked[:5]
    assert importance[valid.X.names.index("noise")] < 0.1 * np.median(importance)


class _OneFitContext(FitContext):
    """Time enough for one fit, then none."""

    def remaining(self) -> float:
        return 0.0

    def expired(self) -> bool:
        return False


def test_a_short_budget_stops_the_grid_after_one_fit(cancer):
    _, _, task, _, fit_part, valid, _, _ = cancer
    model = LinearFamily(task)
    report = model.fit(fit_part, valid, _OneFitContext(seed=0, progress=False))
    assert report.stopped_by == "time_budget" and report.best_iteration == 1 and model.spec["C"] == C_GRID[0]


def test_onnx_graph_matches_predict_for_multiclass_with_an_absent_class(credit_split):
    import onnxruntime as ort

    from takeoff.data.schema import Task

    _, _, task, _, fit_part, valid, test_set = credit_split
    amount = fit_part.X.numeric_names.index("Amount")
    four = Task("multiclass", "size", ["small", "medium", "large", "huge"])  # "huge" never seen in training
    edges = np.quantile(fit_part.X.numeric[:, amount], [1 / 3, 2 / 3])
    size = [np.digitize(d.X.numeric[:, amount], edges) for d in (fit_part, valid)]  # three classes of the amount
    model = LinearFamily(four, {"max_one_hot": 3})
    model.fit(Dataset(fit_part.X, size[0]), Dataset(valid.X, size[1]), _ctx())
    assert model.arrays["coef_num"].shape[0] == 3  # a softmax over the classes seen
    X = test_set.X.take(np.arange(200))
    expected = model.predict(X)
    assert (expected[:, 3] == 0).all() and np.allclose(expected.sum(axis=1), 1.0)
    session = ort.InferenceSession(model.to_onnx(X).SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(["outputs"], {"numeric": X.numeric, "categorical": X.categorical})
    assert np.abs(got - expected).max() < 1e-5


def test_train_export_and_serve_through_onnx(datasets, tmp_path):
    """takeoff.train with the family, then a whole ONNX bundle (pipeline in the graph) on rows
    with unseen and missing categories and missing and absurd numbers."""
    from takeoff.compression.onnx import write_onnx_bundle

    train, test = _split(datasets, "credit_risk")
    model = takeoff.train(train.head(1500), target="Status", family="linear", time_budget=30, seed=0)
    assert [m.name for m in model.blend.members] == ["linear"]
    rows = test.head(200).astype({"Home": object, "Job": object, "Amount": float, "Income": float})
    rows.loc[0, "Home"], rows.loc[1, "Job"] = "castle", None
    rows.loc[2, ["Income", "Amount"]] = [np.nan, 1e300]
    exported = write_onnx_bundle(model, tmp_path / "onnx", frame=rows)
    assert exported.manifest["onnx"]["max_abs_diff"] <= 1e-5
    np.testing.assert_allclose(exported.predict_proba(rows).to_numpy(), model.predict_proba(rows).to_numpy(), atol=1e-5)
    assert registry.auto()[:2] == ["lightgbm", "linear"]  # auto tries it right after LightGBM


def test_the_sparse_design_gives_the_dense_model(credit_split, monkeypatch):
    """Wide one-hot blocks go to the solver as a sparse matrix: the same model."""
    import scipy.sparse

    from takeoff.models import linear

    _, _, task, _, fit_part, _, test_set = credit_split
    dense = LinearFamily(task, {"C": 0.1})
    dense.fit(fit_part, None, _ctx())
    monkeypatch.setattr(linear, "DENSE_CELLS", 0)
    sparse = LinearFamily(task, {"C": 0.1})
    sparse.fit(fit_part, None, _ctx())
    assert scipy.sparse.issparse(sparse._design(fit_part.X))
    np.testing.assert_allclose(sparse.predict(test_set.X), dense.predict(test_set.X), atol=1e-4)
