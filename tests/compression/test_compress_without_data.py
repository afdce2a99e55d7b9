"""`takeoff compress --onnx` needs no --data: the export fits nothing, so its parity check and
latencies run on rows drawn from what the bundle keeps (ranges, vocabularies); the metrics are
not compared then, and the bundle keeps its own."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app
from takeoff.compression import compress
from takeoff.errors import ConfigError

pytest.importorskip("onnxruntime")


def test_onnx_export_without_data(onnx_lgb, onnx_rows, tmp_path):
    out = tmp_path / "onnx"
    result = CliRunner().invoke(app, ["compress", str(onnx_lgb.path), "--onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "256 rows drawn from the bundle's training ranges and categories" in said and "metrics not compared" in said
    manifest = json.loads((out / "takeoff.json").read_text())
    assert manifest["runtime"] == "onnx" and manifest["onnx"]["difference"] <= 1e-4
    assert manifest["metrics"] == onnx_lgb.metrics  # the bundle's own, not re-measured
    # the graph predicts what the original predicts on real rows it never saw
    exported = takeoff.load(out)
    np.testing.assert_allclose(exported.predict_proba(onnx_rows).to_numpy(), onnx_lgb.predict_proba(onnx_rows).to_numpy(),
                               atol=1e-4)


def test_steps_that_fit_still_need_data(onnx_lgb, tmp_path):
    with pytest.raises(ConfigError, match="--prune and --distill fit on labelled rows: pass the training table with --data"):
        compress(onnx_lgb.path, None, tmp_path / "pruned", prune=0.3)
