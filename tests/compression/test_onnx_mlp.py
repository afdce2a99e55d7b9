"""ONNX export of networks and blends: the MLP (classification with its logit offset and
softmax, regression with its target scaling undone) and a LightGBM + MLP blend trained by
takeoff.train, each checked against the bundle's own predictions on real rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

import takeoff
from takeoff.compression.onnx import write_onnx_bundle

TOLERANCE = 1e-4


def _gap(original, exported, rows) -> float:
    expected, _ = original.predict_outputs(rows)
    got, _ = exported.predict_outputs(rows)
    return float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))


def test_mlp_classifier(onnx_mlp, onnx_mlp_bundle, onnx_rows):
    exported = takeoff.load(onnx_mlp_bundle)
    assert exported.manifest["onnx"]["max_abs_diff"] <= TOLERANCE
    assert _gap(onnx_mlp, exported, onnx_rows) <= TOLERANCE
    assert exported.predict(onnx_rows).tolist() == onnx_mlp.predict(onnx_rows).tolist()
    records = [{c: None for c in onnx_mlp.schema.names()}]  # every value missing
    np.testing.assert_allclose(exported.predict_proba(records).to_numpy(), onnx_mlp.predict_proba(records).to_numpy(),
                               atol=TOLERANCE)


def test_mlp_regression_undoes_the_target_scaling(datasets, tmp_path):
    df = pd.read_csv(datasets / "diamonds.csv").sample(1000, random_state=1).reset_index(drop=True)
    config = {"refit": False, "models": {"mlp": {"max_epochs": 3, "hidden_sizes": [32]}}}
    model = takeoff.train(df.iloc[:800], target="price", family="mlp", time_budget=30, seed=0, config=config)
    rows = df.iloc[800:]
    exported = write_onnx_bundle(model, tmp_path / "onnx", frame=rows)
    assert exported.manifest["onnx"]["difference"] <= TOLERANCE
    values = exported.predict(rows)
    assert values.shape == (len(rows),) and values.std() > 100  # prices, not standardised values
    assert _gap(model, exported, rows) <= TOLERANCE


def test_a_trained_blend_bundle(fixtures, tmp_path):
    """tests/fixtures/bundle-v1: breast cancer, LightGBM and MLP blended by takeoff.train."""
    model = takeoff.load(fixtures / "bundle-v1")
    rows = pd.read_csv(fixtures / "bundle-v1-rows.csv")
    exported = write_onnx_bundle(model, tmp_path / "onnx", frame=rows)
    assert exported.manifest["onnx"]["max_abs_diff"] <= TOLERANCE
    expected = pd.read_csv(fixtures / "bundle-v1-expected.csv")
    assert exported.predict(rows).tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(exported.predict_proba(rows).to_numpy(), expected[["benign", "malignant"]].to_numpy(),
                               atol=TOLERANCE)
