"""takeoff compress without ONNX: tree pruning, network pruning, distillation, the report and
the bad-input paths, on real credit-risk rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

import takeoff
from takeoff.compression.compress import compress, split_rows
from takeoff.compression.distill import soft_dataset
from takeoff.errors import ColumnNotFoundError, ConfigError
from takeoff.features.block import Features


@pytest.fixture(scope="module")
def halves(credit):
    sample = credit.sample(1600, random_state=3).reset_index(drop=True)
    return sample.iloc[:1200].reset_index(drop=True), sample.iloc[1200:].reset_index(drop=True)


@pytest.fixture(scope="module")
def trees(halves, tmp_path_factory):
    path = tmp_path_factory.mktemp("trees") / "bundle"
    takeoff.train(halves[0], target="Status", family="lightgbm", time_budget=20, out=path)
    return path


@pytest.fixture(scope="module")
def network(halves, tmp_path_factory):
    path = tmp_path_factory.mktemp("mlp") / "bundle"
    config = {"models": {"mlp": {"max_epochs": 8, "hidden_sizes": [64, 32]}}}
    takeoff.train(halves[0], target="Status", family="mlp", time_budget=30, out=path, config=config)
    return path


def test_tree_pruning_drops_trailing_rounds_and_reports(trees, halves, tmp_path):
    out = tmp_path / "pruned"
    result = compress(trees, halves[0], out, prune=0.5, eval_data=halves[1], measure_seconds=0.2)
    step = result.steps[0]["members"][0]
    assert step["rounds_after"] == int(np.ceil(step["rounds_before"] * 0.5))
    pruned = takeoff.load(out)  # a complete bundle: every hash verified
    assert pruned.blend.members[0]._best_rounds() == step["rounds_after"]
    assert result.compressed.bytes < result.original.bytes
    for m in (result.original, result.compressed):
        assert set(m.latency_ms) == {"1", "64"} and all(v["p50"] > 0 for v in m.latency_ms.values())
        assert 0.5 < m.metrics["roc_auc"] <= 1.0
    document = json.loads((out / "compression.json").read_text())
    assert document["ratios"]["size"] == pytest.approx(result.original.bytes / result.compressed.bytes)
    assert "roc_auc" in document["metric_deltas"]
    page = (out / "compression.html").read_text()
    assert "Original vs compressed" in page and "latency batch 64 p99" in page
    assert pruned.manifest["compression"]["steps"][0]["step"] == "prune"


def test_structured_pruning_shrinks_the_network(network, halves, tmp_path):
    out = tmp_path / "pruned"
    result = compress(network, halves[0], out, prune=0.5, structured=True, eval_data=halves[1],
                      time_budget=10, measure_seconds=0.2)
    info = result.steps[0]["members"][0]
    assert info["hidden_sizes"] == {"before": [64, 32], "after": [32, 16]}
    assert info["params_after"] < 0.6 * info["params_before"]
    assert info["recovery_loss"]["after"] <= info["recovery_loss"]["before"]
    assert result.compressed.bytes < result.original.bytes
    original, pruned = takeoff.load(network), takeoff.load(out)
    p0 = original.predict_proba(halves[1])["bad"].to_numpy()
    p1 = pruned.predict_proba(halves[1])["bad"].to_numpy()
    assert np.corrcoef(p0, p1)[0, 1] > 0.9  # the pruned network learned the original's outputs
    assert abs(result.deltas()["roc_auc"]) < 0.05


def test_magnitude_pruning_reports_real_sparsity(network, halves, tmp_path):
    result = compress(network, halves[0], tmp_path / "pruned", prune=0.4, eval_data=halves[1],
                      time_budget=5, measure_seconds=0.2)
    info = result.steps[0]["members"][0]
    assert info["linear_sparsity"] == pytest.approx(0.4, abs=0.01)  # the zeros survived the fine-tune
    net = takeoff.load(tmp_path / "pruned").blend.members[0]._net
    weights = np.concatenate([p.detach().numpy().ravel() for n, p in net.named_parameters()
                              if n.endswith("weight") and p.ndim == 2 and "embeddings" not in n])
    assert np.mean(weights == 0) == pytest.approx(0.4, abs=0.01)
    assert "no smaller file" in info["note"]


def test_distilled_student_follows_the_teacher(network, halves, tmp_path):
    out = tmp_path / "student"
    unlabeled = halves[1].drop(columns=["Status"]).iloc[:200]
    result = compress(network, halves[0], out, distill="lightgbm", unlabeled=unlabeled, eval_data=halves[1],
                      time_budget=15, measure_seconds=0.2)
    step = result.steps[0]
    assert step["student"] == "lightgbm" and step["teacher"] == ["mlp"]
    assert step["unlabeled_rows"] == 200 and step["agreement"] > 0.85
    student = takeoff.load(out)
    assert [m["family"] for m in student.manifest["members"]] == ["lightgbm"]
    assert student.manifest["distilled_from"]["members"][0]["family"] == "mlp"
    assert abs(result.deltas()["roc_auc"]) < 0.05


def test_soft_labels_weight_each_class_by_the_teacher():
    X = Features(np.zeros((3, 1), np.float32), np.zeros((3, 0), np.int64), ["x"], [], [], ["x"])
    probs = np.array([[0.7, 0.3], [0.995, 0.005], [0.2, 0.8]])
    data = soft_dataset(X, probs, classification=True)
    assert len(data) == 5  # the 0.005 class is dropped, the rest kept
    assert data.y.tolist() == [0, 1, 0, 0, 1]
    assert data.weight.tolist() == pytest.approx([0.7, 0.3, 1.0, 0.2, 0.8])


def test_the_training_table_is_measured_on_its_validation_split(trees, halves):
    model = takeoff.load(trees)
    rows = split_rows(model, halves[0], "train.csv", needs_fit=True, seed=0)
    assert "validation split" in rows.how
    assert len(rows.measure) == model.manifest["training"]["rows_valid"]
    assert len(rows.fit) + len(rows.measure) == len(halves[0])


def test_bad_requests_say_what_applies_and_write_nothing(trees, halves, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match="nothing to do.*prune"):
        compress(trees, halves[0], out)
    with pytest.raises(ConfigError, match="network members"):
        compress(trees, halves[0], out, quantize="int8")
    with pytest.raises(ConfigError, match="not supported"):
        compress(trees, halves[0], out, quantize="int4")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        compress(trees, halves[0], out, prune=1.5)
    with pytest.raises(ConfigError, match="goes with --prune"):
        compress(trees, halves[0], out, structured=True, distill="mlp")
    with pytest.raises(ColumnNotFoundError, match="Status"):
        compress(trees, halves[0].drop(columns=["Status"]), out, prune=0.2)
    with pytest.raises(ConfigError, match="must differ"):
        compress(trees, halves[0], trees, prune=0.2)
    assert not out.exists()
