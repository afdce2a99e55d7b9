"""A family added from outside takeoff: one file in a package of its own, registered by its
entry point (``takeoff.families``), and nothing else edited. It trains, saves and loads, is
served, explained and exported to ONNX with parity, and passes ``check_family``."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

import takeoff
from takeoff import registry

pytest.importorskip("onnxruntime")

# The whole plug-in: a ridge model on the numeric block, written with numpy, and its ONNX graph.
TOY = '''
"""A ridge model on the numeric features: softmax of the class scores, or the value."""

import json
from pathlib import Path

import numpy as np
from pydantic import Field
from safetensors.numpy import load_file, save_file

from takeoff.bundle import read_spec
from takeoff.models.base import Family, FitReport, Params


class ToyParams(Params):
    alpha: float = Field(1.0, gt=0, description="L2 penalty of the ridge.")
    sharpness: float = Field(4.0, gt=0, description="Scale of the class scores before the softmax.")


class ToyFamily(Family):
    name = "toy"
    Params = ToyParams
    exports_onnx = True
    fast_params = {"alpha": 2.0}

    def fit(self, train, valid, ctx):
        X = np.hstack([train.X.numeric.astype(np.float64), np.ones((len(train), 1))])
        y = train.y
        Y = np.eye(len(self.task.classes))[y] if self.task.is_classification else y.reshape(-1, 1).astype(np.float64)
        w = np.ones(len(train)) if train.weight is None else train.weight
        penalty = self.params.alpha * np.eye(X.shape[1])
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        coef = np.linalg.solve(X.T @ (X * w[:, None]) + penalty, X.T @ (Y * w[:, None]))
        self.weights, self.bias = coef[:-1], coef[-1]
        self.report = FitReport(best_iteration=1, stopped_by="converged")
        return self.report

    def predict(self, X):
        z = X.numeric.astype(np.float64) @ self.weights + self.bias
        if not self.task.is_classification:
            return z[:, 0]
        z = z * self.params.sharpness
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def save(self, directory):
        save_file({"weights": self.weights, "bias": self.bias}, str(Path(directory) / "toy.safetensors"))
        (Path(directory) / "toy.json").write_text(json.dumps({"format": "toy", "version": 1}))

    @classmethod
    def load(cls, directory, task, params):
        read_spec(directory, "toy.json", ("toy.safetensors",), "toy", (1,), "toy")
        family = cls(task, params)
        tensors = load_file(str(Path(directory) / "toy.safetensors"))
        family.weights, family.bias = tensors["weights"], tensors["bias"]
        return family

    def to_onnx(self, sample):
        from onnx import TensorProto, helper, numpy_helper

        F = TensorProto.FLOAT
        classification = self.task.is_classification
        scale = self.params.sharpness if classification else 1.0
        inits = [numpy_helper.from_array((self.weights * scale).astype(np.float32), "w"),
                 numpy_helper.from_array((self.bias * scale).astype(np.float32), "b")]
        nodes = [helper.make_node("MatMul", ["numeric", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["z"])]
        if classification:
            nodes.append(helper.make_node("Softmax", ["z"], ["outputs"], axis=1))
            out = helper.make_tensor_value_info("outputs", F, ["N", len(self.task.classes)])
        else:
            inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"))
            nodes.append(helper.make_node("Reshape", ["z", "flat"], ["outputs"]))
            out = helper.make_tensor_value_info("outputs", F, ["N"])
        numeric = helper.make_tensor_value_info("numeric", F, ["N", sample.numeric.shape[1]])
        graph = helper.make_graph(nodes, "toy", [numeric], [out], inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
'''


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The plug-in on sys.path with its distribution metadata; forgotten afterwards."""
    root = tmp_path_factory.mktemp("plugins")
    (root / "takeoff_toy.py").write_text(textwrap.dedent(TOY))
    info = root / "takeoff_toy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: takeoff-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[takeoff.families]\ntoy = takeoff_toy:ToyFamily\n")
    sys.path.insert(0, str(root))
    registry.refresh()
    try:
        yield registry.get("toy")
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("takeoff_toy", None)
        registry.refresh()


@pytest.fixture(scope="module")
def rows(credit):
    sample = credit.sample(700, random_state=4).reset_index(drop=True)
    return sample.iloc[:600].reset_index(drop=True), sample.iloc[600:].reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(toy, rows, tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "bundle"
    model = takeoff.train(rows[0], target="Status", family="toy", time_budget=30, out=out)
    return model, out


def test_the_plug_in_is_discovered_and_configurable(toy):
    assert "toy" in registry.names() and "toy" not in registry.auto()  # asked for by name only
    from takeoff.config import default_config

    assert default_config().models.toy.alpha == 1.0


def test_it_trains_saves_and_loads(trained, rows):
    model, out = trained
    assert [m["family"] for m in model.manifest["members"]] == ["toy"]
    assert model.metrics["roc_auc"] > 0.6
    loaded = takeoff.load(out)
    np.testing.assert_allclose(loaded.predict_proba(rows[1]).to_numpy(), model.predict_proba(rows[1]).to_numpy())


def test_it_is_served(trained, rows):
    from takeoff.serving import create_app

    model, out = trained
    records = json.loads(rows[1].head(5).drop(columns=["Status"]).to_json(orient="records"))

    async def ask():
        transport = httpx.ASGITransport(app=create_app(str(out)))
        async with httpx.AsyncClient(transport=transport, base_url="http://toy") as client:
            return await client.post("/v1/predict", json={"records": records})

    response = asyncio.run(ask())
    assert response.status_code == 200, response.text
    got = [p["probabilities"]["bad"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(got, model.predict_proba(rows[1].head(5))["bad"].to_numpy(), rtol=1e-5, atol=1e-6)


def test_it_is_explained(trained, rows):
    from takeoff.explain import explain

    model, _ = trained
    explanation = explain(model, rows[1], rows=2, max_rows=100, repeats=1)
    assert "permutation" in explanation.global_ and len(explanation.local) == 2
    assert explanation.members[0]["family"] == "toy"


def test_it_is_exported_to_onnx_with_parity(trained, rows, tmp_path):
    from takeoff.cli import app

    _, out = trained
    data = tmp_path / "rows.csv"
    rows[1].to_csv(data, index=False)
    result = CliRunner().invoke(app, ["compress", str(out), "--onnx", "--data", str(data), "--out", str(tmp_path / "lite")])
    assert result.exit_code == 0, result.output
    lite = takeoff.load(tmp_path / "lite")
    assert lite.manifest["runtime"] == "onnx" and lite.manifest["onnx"]["difference"] <= 1e-4
    np.testing.assert_allclose(lite.predict_proba(rows[1]).to_numpy(), takeoff.load(out).predict_proba(rows[1]).to_numpy(),
                               atol=1e-4)


def test_it_passes_the_family_contract(toy, tmp_path):
    from takeoff.testing import check_family

    passed = check_family("toy", directory=tmp_path)
    assert {"binary: save/load", "multiclass: save/load", "multilabel: save/load", "regression: save/load",
            "binary: same seed", "bad input", "binary: onnx"} <= set(passed)
