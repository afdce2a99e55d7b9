"""The Python API end to end on real data: train → bundle → load → predict / evaluate."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.errors import BundleError, DataError, SchemaMismatchError


@pytest.fixture(scope="module")
def trained(credit_small, tmp_path_factory):
    """An `auto` model (linear, LightGBM, MLP) on 1,200 credit rows, saved as a bundle."""
    out = tmp_path_factory.mktemp("runs") / "credit"
    model = takeoff.train(credit_small, target="Status", time_budget=40, out=out, seed=0)
    return model, out


def test_train_writes_a_complete_bundle(trained):
    model, out = trained
    manifest = json.loads((out / "takeoff.json").read_text())
    assert manifest["format"] == "takeoff-bundle" and manifest["format_version"] == 1
    assert manifest["task"]["kind"] == "binary" and manifest["task"]["classes"] == ["good", "bad"]
    assert set(manifest["files"]) >= {"features.json", "metrics.json", "report.html"}
    assert {m["family"] for m in manifest["members"]} <= {"linear", "lightgbm", "mlp"}
    assert not (out / "run.json").exists() and not (out / "checkpoints").exists()
    assert 0 < manifest["threshold"] < 1
    assert manifest["metrics"]["roc_auc"] > 0.75
    assert not list(out.parent.glob(".*tmp*"))
    assert not list(out.rglob("*.pkl")) and not list(out.rglob("*.pt"))


def test_loaded_model_predicts_identically(trained, credit):
    model, out = trained
    rows = credit.drop(columns=["Status"]).tail(300)
    loaded = takeoff.load(out)
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))
    pd.testing.assert_frame_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    assert list(loaded.predict_proba(rows).columns) == ["good", "bad"]
    assert set(loaded.predict(rows)) <= {"good", "bad"}


def test_evaluate_on_holdout(trained, credit):
    model, out = trained
    holdout = credit.tail(800)
    metrics = model.evaluate(holdout, report=out.parent / "holdout.html")
    assert metrics["roc_auc"] > 0.75
    assert {"pr_auc", "accuracy", "f1", "log_loss", "brier"} <= set(metrics)
    html = (out.parent / "holdout.html").read_text()
    assert "roc_auc" in html.lower() or "ROC" in html


def test_single_record_and_records(trained, credit):
    model, _ = trained
    record = credit.drop(columns=["Status"]).iloc[0].to_dict()
    assert model.predict(record).shape == (1,)
    assert model.predict([record, record]).shape == (2,)


def test_predict_time_input_problems(trained, credit):
    model, _ = trained
    rows = credit.drop(columns=["Status"]).head(50).copy()
    # missing columns are named, with the full expected list
    with pytest.raises(SchemaMismatchError, match="'Income'.*trained with"):
        model.predict(rows.drop(columns=["Income"]))
    # extra columns are ignored and noted
    extra = rows.assign(note="x")
    _, notes = model.predict_frame(extra)
    assert notes.extra_columns == ["note"]
    # unseen categories are handled (the 'other' code), not errors
    unseen = rows.assign(Home="castle")
    assert len(model.predict(unseen)) == 50
    # wrong types: coerced with a count ...
    wrong = rows.astype({"Income": object})
    wrong.loc[wrong.index[:3], "Income"] = "lots"
    frame, notes = model.predict_frame(wrong)
    assert notes.coerced == {"Income": 3} and len(frame) == 50
    # ... or, in strict mode, an error naming the rows
    with pytest.raises(DataError, match=r"column 'Income'.*rows 0, 1, 2"):
        model.predict(wrong, strict=True)


def test_same_seed_gives_identical_predictions(datasets):
    """Identical as long as the budget neither cuts a fit short nor decides which candidates run:
    on 455 rows, 120 s leaves every candidate its fit (the run ends when extra seeds stop
    helping, well before the budget). The whole of auto runs (cross-validation, reseeds, the
    blend, the refit); the MLP's epochs are capped so that its fits take seconds."""
    df = pd.read_csv(datasets / "splits" / "breast_cancer.train.csv")
    config = {"models": {"mlp": {"max_epochs": 8}}}
    a = takeoff.train(df, target="diagnosis", time_budget=120, seed=3, config=config)
    b = takeoff.train(df, target="diagnosis", time_budget=120, seed=3, config=config)
    np.testing.assert_array_equal(a.predict_proba(df).to_numpy(), b.predict_proba(df).to_numpy())
    assert a.manifest["members"] == b.manifest["members"]


def test_regression_and_multiclass_heads(credit_small):
    reg = takeoff.train(credit_small, target="Amount", time_budget=20, family="lightgbm")
    assert reg.task.kind == "regression" and {"rmse", "mae", "r2"} <= set(reg.metrics)
    assert reg.predict(credit_small.head(5)).dtype.kind == "f"
    multi = takeoff.train(credit_small.dropna(subset=["Home"]), target="Home", time_budget=20, family="mlp")
    assert multi.task.kind == "multiclass"
    proba = multi.predict_proba(credit_small.head(20))
    assert proba.shape == (20, len(multi.classes)) and len(multi.classes) > 2
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert "per_class" in multi.metrics


def test_time_budget_is_honoured_on_larger_data(datasets):
    df = pd.read_csv(datasets / "diamonds.csv")
    budget = 12
    started = time.monotonic()
    model = takeoff.train(df, target="price", time_budget=budget)
    elapsed = time.monotonic() - started
    # the contract: within 10% of the budget, or 15 s, whichever is larger
    assert elapsed <= budget + max(0.1 * budget, 15), elapsed
    assert model.metrics["r2"] > 0.9


def test_tampered_bundle_is_refused(trained, tmp_path):
    import shutil

    _, out = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    takeoff.load(copy)
    with open(copy / "features.json", "a") as handle:
        handle.write(" ")
    with pytest.raises(BundleError, match="features.json does not match its recorded sha256"):
        takeoff.load(copy)


def test_unknown_format_version_is_refused(trained, tmp_path):
    import shutil

    _, out = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "takeoff.json").read_text())
    manifest["format_version"] = 99
    (copy / "takeoff.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 99.*upgrade"):
        takeoff.load(copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        takeoff.load(tmp_path / "nope")
    with pytest.raises(BundleError, match="no takeoff.json"):
        takeoff.load(tmp_path)


def test_failed_run_leaves_nothing(credit_small, tmp_path):
    out = tmp_path / "bad"
    with pytest.raises(DataError):
        takeoff.train(credit_small, target="Statsu", out=out)
    assert not out.exists()
    const = credit_small.assign(Status="good")
    with pytest.raises(DataError, match="constant"):
        takeoff.train(const, target="Status", out=out)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_save_refuses_to_clobber_a_foreign_directory(trained, tmp_path):
    model, _ = trained
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(BundleError, match="neither a takeoff bundle"):
        model.save(foreign)
    assert (foreign / "cat.jpg").read_bytes() == b"meow"
    # saving over an existing bundle replaces it completely
    again = model.save(tmp_path / "b")
    model.save(again)
    assert takeoff.load(again).predict(pd.DataFrame([{}]).reindex(columns=model.schema.names())).shape == (1,)
