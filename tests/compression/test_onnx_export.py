"""ONNX export of LightGBM bundles: parity on real rows (binary, multiclass, regression; with
unseen and missing categories and missing numbers), the preprocessing in the graph bit for bit,
the round trip through takeoff.load, and the refusals (parity, families, already exported)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest

import takeoff
from takeoff.compression import onnx as onnx_export
from takeoff.compression.onnx import ExportError, check_parity, export, write_onnx_bundle
from takeoff.data.conform import conform
from takeoff.data.schema import Task
from takeoff.errors import ConfigError
from takeoff.features.pipeline import RawInputs
from takeoff.runtime.onnx import MISSING

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def diamonds(datasets) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(datasets / "diamonds.csv").sample(1800, random_state=0).reset_index(drop=True)
    rows = df.iloc[1500:].reset_index(drop=True).astype({"color": object, "clarity": object, "carat": float})
    rows.loc[0, "color"] = "Z"  # unseen
    rows.loc[1, "clarity"] = None  # missing
    rows.loc[2, "carat"] = np.nan
    return df.iloc[:1500].reset_index(drop=True), rows


def _lightgbm(df, target, tmp_path_factory):
    config = {"models": {"lightgbm": {"max_rounds": 80}}}
    return takeoff.train(df, target=target, family="lightgbm", time_budget=30, seed=0, config=config,
                         out=tmp_path_factory.mktemp("lgb") / "bundle")


def _assert_same_predictions(original, exported, rows):
    expected, _ = original.predict_outputs(rows)
    got, _ = exported.predict_outputs(rows)
    scale = np.maximum(1.0, np.abs(expected))
    assert np.max(np.abs(got - expected) / scale) <= TOLERANCE
    if original.task.is_classification:  # labels may only differ where probabilities tie at the threshold
        assert (original.predict(rows) == exported.predict(rows)).mean() > 0.99


def test_binary_with_categories_and_missing_values(onnx_lgb, onnx_lgb_bundle, onnx_rows):
    exported = takeoff.load(onnx_lgb_bundle)
    assert exported.runtime == "onnx" and exported.manifest["onnx"]["max_abs_diff"] <= TOLERANCE
    _assert_same_predictions(onnx_lgb, exported, onnx_rows)
    assert exported.predict(onnx_rows).tolist() == onnx_lgb.predict(onnx_rows).tolist()


@pytest.mark.parametrize("target", ["cut", "price"])
def test_multiclass_and_regression(target, diamonds, tmp_path_factory, tmp_path):
    train, rows = diamonds
    model = _lightgbm(train, target, tmp_path_factory)
    assert model.task.kind == {"cut": "multiclass", "price": "regression"}[target]
    exported = write_onnx_bundle(model, tmp_path / "onnx", frame=rows)
    parity = exported.manifest["onnx"]
    assert parity["difference"] <= TOLERANCE and parity["rows"] == len(rows)
    _assert_same_predictions(model, exported, rows)
    if target == "price":  # float32 outputs: ~1e-3 apart on values of thousands, reported as such
        assert parity["max_abs_diff"] < 0.05 and exported.predict(rows).shape == (len(rows),)


def test_the_graph_preprocesses_exactly_as_the_pipeline(onnx_lgb, onnx_rows):
    graph = export(onnx_lgb, onnx_rows.head(4))
    for name in ("numeric", "categorical"):  # expose the blocks the members read
        graph.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.type for i in session.get_inputs()}
    assert inputs == {"numbers": "tensor(double)", "categories": "tensor(string)"}
    X, _ = onnx_lgb.features(onnx_rows)
    raw = onnx_lgb.pipeline.raw(conform(onnx_rows, onnx_lgb.schema)[0])
    categories = raw.categories.copy()
    categories[pd.isna(categories)] = MISSING
    outputs, numeric, categorical = session.run(["outputs", "numeric", "categorical"],
                                                {"numbers": raw.numbers, "categories": categories})
    np.testing.assert_array_equal(numeric, X.numeric)  # imputation, scaling, clipping, indicators, order
    np.testing.assert_array_equal(categorical, X.categorical)  # known 2.., unseen 1, missing 0
    assert set(X.categorical[:6].ravel()) >= {0, 1}
    assert np.abs(outputs - onnx_lgb.predict_outputs(onnx_rows)[0]).max() <= TOLERANCE
    assert check_parity(onnx_lgb, graph, onnx_rows) <= TOLERANCE


def test_round_trip_through_load(onnx_lgb, onnx_lgb_bundle, onnx_rows, tmp_path):
    exported = takeoff.load(onnx_lgb_bundle)
    assert isinstance(exported.features(onnx_rows)[0], RawInputs)
    records = onnx_rows.drop(columns=["Status"]).head(5).astype(object)
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in records.to_dict("records")]
    np.testing.assert_allclose(exported.predict_proba(records).to_numpy(), onnx_lgb.predict_proba(records).to_numpy(),
                               atol=TOLERANCE)
    frame, _ = exported.predict_frame(onnx_rows)
    expected, _ = onnx_lgb.predict_frame(onnx_rows)
    assert list(frame.columns) == list(expected.columns)
    np.testing.assert_allclose(frame["proba_bad"], expected["proba_bad"], atol=TOLERANCE)
    assert exported.evaluate(onnx_rows)["roc_auc"] == pytest.approx(onnx_lgb.evaluate(onnx_rows)["roc_auc"], abs=1e-3)
    assert exported.predict_outputs(onnx_rows.head(0))[0].shape == (0, 2)
    again = takeoff.load(exported.save(tmp_path / "copy"))  # an ONNX bundle saves as one
    assert again.runtime == "onnx"
    np.testing.assert_array_equal(again.predict_proba(onnx_rows).to_numpy(), exported.predict_proba(onnx_rows).to_numpy())


def test_the_bundle_keeps_what_describes_the_model(onnx_lgb, onnx_lgb_bundle):
    manifest = json.loads((onnx_lgb_bundle / "takeoff.json").read_text())
    original = onnx_lgb.manifest
    for key in ("schema", "task", "threshold", "metrics", "importance"):
        assert manifest[key] == original[key], key
    assert manifest["runtime"] == "onnx"
    assert [m["family"] for m in manifest["members"]] == ["lightgbm"]
    assert manifest["onnx"]["inputs"] == ["numbers", "categories"] and manifest["onnx"]["exported_from"] == onnx_lgb.version
    assert {"model.onnx", "features.json", "metrics.json", "report.html"} <= set(manifest["files"])
    assert not (onnx_lgb_bundle / "members").exists()


def test_an_export_that_fails_parity_is_refused_and_nothing_is_written(onnx_lgb, onnx_rows, tmp_path, monkeypatch):
    family = onnx_lgb.blend.members[0]
    real_export = onnx_export.export

    def one_round_export(model, sample=None):  # a graph of the first tree only: far from the model
        with monkeypatch.context() as patch:
            patch.setattr(family, "_best_rounds", lambda: 1)
            return real_export(model, sample)

    monkeypatch.setattr(onnx_export, "export", one_round_export)
    out = tmp_path / "refused"
    with pytest.raises(ExportError, match="above the tolerance") as caught:
        write_onnx_bundle(onnx_lgb, out, frame=onnx_rows)
    assert caught.value.difference > TOLERANCE
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_families_without_a_graph_and_exported_bundles_are_refused(onnx_lgb, onnx_lgb_bundle, onnx_rows, tmp_path):
    from takeoff import registry

    tfidf = registry.get("tfidf")(Task("binary", "y", ["a", "b"]))
    X, _ = onnx_lgb.features(onnx_rows.head(3))
    with pytest.raises(ConfigError, match="'tfidf' cannot be exported to ONNX; families that can: lightgbm, linear, mlp"):
        tfidf.to_onnx(X)
    with pytest.raises(ConfigError, match="already runs on onnx"):
        write_onnx_bundle(takeoff.load(onnx_lgb_bundle), tmp_path / "twice", frame=onnx_rows)
    assert not (tmp_path / "twice").exists()


def test_free_text_and_datetime_columns(datasets, tmp_path_factory, tmp_path):
    """Tweets: hashed text (computed in Python, fed as ``hashed_text``) and datetime parts."""
    df = pd.read_csv(datasets / "tweets_source.csv").sample(1300, random_state=0).reset_index(drop=True)
    model = _lightgbm(df.iloc[:1000], "source", tmp_path_factory)
    rows = df.iloc[1000:].reset_index(drop=True)
    rows.loc[0, "text"] = None
    rows.loc[1, "created_at"] = "not a date"
    exported = write_onnx_bundle(model, tmp_path / "onnx", frame=rows)
    assert exported.manifest["onnx"]["inputs"] == ["numbers", "hashed_text"]
    assert exported.manifest["onnx"]["max_abs_diff"] <= TOLERANCE
    _assert_same_predictions(model, exported, rows)
