"""Explanations of tabular models on data where only one column matters: every method must
rank it first, the same seed must give the same numbers, and bad input fails as predict does."""

from __future__ import annotations

import numpy as np
import pytest

from takeoff.api import Model
from takeoff.errors import ConfigError, SchemaMismatchError
from takeoff.explain import explain
from takeoff.models.blend import Blend

ROWS = 20


def _first(explanation, method: str) -> str:
    return explanation.global_[method][0]["column"]


def _local_first_share(explanation) -> float:
    return float(np.mean([entry["attributions"][0]["column"] == "x0" for entry in explanation.local]))


def test_lightgbm_ranks_the_one_column_first(lgb_one, one_column):
    explanation = explain(lgb_one, one_column, rows=ROWS)
    assert set(explanation.global_) == {"permutation", "treeshap"}
    assert _first(explanation, "permutation") == "x0" and _first(explanation, "treeshap") == "x0"
    assert explanation.methods["permutation"]["metric"] == "roc_auc"  # the target is in the data
    noise = max(r["importance"] for r in explanation.global_["permutation"][1:])
    assert explanation.global_["permutation"][0]["importance"] > 10 * max(noise, 1e-3)
    assert _local_first_share(explanation) >= 0.9
    # TreeSHAP in probability space: the members' attributions add up to output - base
    for entry in explanation.local:
        member = entry["members"][0]
        assert member["method"] == "treeshap"
        total = sum(a["attribution"] for a in member["attributions"])
        assert total == pytest.approx(member["output"] - member["base"], abs=1e-9)
        raw = member["raw"]
        assert sum(a["attribution"] for a in raw["attributions"]) + raw["base"] == pytest.approx(raw["score"], abs=1e-9)


def test_mlp_ranks_the_one_column_first(mlp_one, one_column):
    explanation = explain(mlp_one, one_column, rows=ROWS)
    assert set(explanation.global_) == {"permutation", "integrated_gradients"}
    assert _first(explanation, "permutation") == "x0" and _first(explanation, "integrated_gradients") == "x0"
    assert _local_first_share(explanation) >= 0.8
    # completeness of Integrated Gradients: attributions add up to output - base (up to delta)
    assert explanation.methods["integrated_gradients"]["max_delta"] < 1e-4
    for entry in explanation.local:
        member = entry["members"][0]
        assert member["method"] == "integrated_gradients" and abs(member["delta"]) < 1e-4
        total = sum(a["attribution"] for a in member["attributions"])
        assert total == pytest.approx(member["output"] - member["base"], abs=1e-4)


def test_without_the_target_permutation_measures_the_output_change(lgb_one, one_column):
    explanation = explain(lgb_one, one_column.drop(columns="y"), rows=2, max_rows=300)
    info = explanation.methods["permutation"]
    assert info["metric"] is None and info["unit"] == "mean absolute change of the output" and info["rows"] == 300
    assert _first(explanation, "permutation") == "x0"


def test_same_seed_same_explanation(mlp_one, one_column):
    runs = [explain(mlp_one, one_column, rows=3, seed=seed, max_rows=150).to_json() for seed in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0]["global"]["permutation"] != runs[2]["global"]["permutation"]  # the seed is used


def test_blend_attributions_are_the_weighted_sum_of_the_members(lgb_one, mlp_one, one_column):
    assert lgb_one.pipeline.state() == mlp_one.pipeline.state()
    members = [lgb_one.blend.members[0], mlp_one.blend.members[0]]
    manifest = {**lgb_one.manifest, "members": [{**lgb_one.manifest["members"][0], "weight": 0.6},
                                                {**mlp_one.manifest["members"][0], "weight": 0.4}]}
    model = Model(manifest, lgb_one.schema, lgb_one.task, lgb_one.pipeline, Blend(members, [0.6, 0.4]))
    explanation = explain(model, one_column, rows=5, max_rows=400)
    assert [m["method"] for m in explanation.members] == ["treeshap", "integrated_gradients"]
    assert {"permutation", "treeshap", "integrated_gradients"} == set(explanation.global_)
    expected = model.predict_proba(one_column.head(5))["yes"].to_numpy()
    for entry, want in zip(explanation.local, expected):
        assert entry["output"] == pytest.approx(want, abs=1e-6)
        by_member = [{a["column"]: a["attribution"] for a in m["attributions"]} for m in entry["members"]]
        for a in entry["attributions"]:
            assert a["attribution"] == pytest.approx(0.6 * by_member[0][a["column"]] + 0.4 * by_member[1][a["column"]])
        assert entry["attributions"][0]["column"] == "x0"


def test_a_missing_column_fails_as_predict_does(lgb_one, one_column):
    rows = one_column.drop(columns=["n2"])
    with pytest.raises(SchemaMismatchError) as predicted:
        lgb_one.predict(rows)
    with pytest.raises(SchemaMismatchError) as explained:
        explain(lgb_one, rows)
    assert str(explained.value) == str(predicted.value)
    assert "'n2' missing" in str(explained.value)


def test_bad_parameters_and_models_are_refused(lgb_one, one_column):
    with pytest.raises(ConfigError, match="rows"):
        explain(lgb_one, one_column, rows=0)
    with pytest.raises(ConfigError, match="predict a target"):
        explain(object(), one_column)
