"""Bundles written by earlier versions keep loading and predicting the same.

tests/fixtures/bundle-v1 was written by takeoff 0.1.0 (bundle format 1) with
tests/fixtures/make_bundle_v1.py. Never regenerate it to make this test pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import takeoff


def test_format_1_bundle_loads_and_predicts_the_same(fixtures):
    model = takeoff.load(fixtures / "bundle-v1")
    assert model.manifest["format_version"] == 1
    assert {m["family"] for m in model.manifest["members"]} == {"lightgbm", "mlp"}
    rows = pd.read_csv(fixtures / "bundle-v1-rows.csv")
    expected = pd.read_csv(fixtures / "bundle-v1-expected.csv")
    assert model.predict(rows).tolist() == expected["prediction"].tolist()
    proba = model.predict_proba(rows)
    np.testing.assert_allclose(proba.to_numpy(), expected[["benign", "malignant"]].to_numpy(), rtol=1e-5, atol=1e-6)
