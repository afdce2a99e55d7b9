"""What Model.predict accepts (arrays with names, Series, records, DataFrames; anything else
refused with the fix), Model.leaderboard() and the notebook view, on real credit-risk rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.errors import DataError


@pytest.fixture(scope="module")
def auto_model(credit_small):
    """auto within 12 s: LightGBM first, then what else fits in the time (the leaderboard's rows)."""
    return takeoff.train(credit_small, target="Status", time_budget=12, seed=0,
                         config={"models": {"lightgbm": {"max_rounds": 80}}, "folds": 3})


@pytest.fixture(scope="module")
def rows(credit_small) -> pd.DataFrame:
    return credit_small.drop(columns=["Status"]).sample(25, random_state=1).reset_index(drop=True)


def test_every_input_form_predicts_the_same(auto_model, rows):
    expected = auto_model.predict(rows)
    names = list(rows.columns)
    np.testing.assert_array_equal(auto_model.predict(rows.to_numpy(), feature_names=names), expected)
    np.testing.assert_array_equal(auto_model.predict(rows.to_numpy().tolist(), feature_names=names), expected)
    np.testing.assert_array_equal(auto_model.predict(rows.to_dict("records")), expected)
    np.testing.assert_array_equal(auto_model.predict(rows.iloc[3]), expected[3:4])  # a Series is one row
    np.testing.assert_array_equal(auto_model.predict(rows.to_numpy()[3], feature_names=names), expected[3:4])
    shuffled = rows[names[::-1]]  # renamed positionally: the names say which column is which
    np.testing.assert_array_equal(auto_model.predict(shuffled.to_numpy(), feature_names=names[::-1]), expected)
    proba = auto_model.predict_proba(rows.to_numpy(), feature_names=names)
    pd.testing.assert_frame_equal(proba, auto_model.predict_proba(rows))
    assert auto_model.predict([]).shape == (0,)


def test_inputs_takeoff_cannot_read_are_refused_with_the_fix(auto_model, rows):
    with pytest.raises(DataError, match=r"no column names.*Seniority.*Fix: pass feature_names=\[\.\.\.\]"):
        auto_model.predict(rows.to_numpy())
    with pytest.raises(DataError, match="feature_names has 3 names but the array has 13 columns"):
        auto_model.predict(rows.to_numpy(), feature_names=["a", "b", "c"])
    with pytest.raises(DataError, match="3-D array"):
        auto_model.predict(np.zeros((2, 2, 2)), feature_names=["a", "b"])
    for bad in ({1, 2}, 5, b"bytes"):
        with pytest.raises(DataError, match="cannot predict from a .*takeoff reads a DataFrame"):
            auto_model.predict(bad)


def test_leaderboard_lists_every_candidate(auto_model):
    board = auto_model.leaderboard()
    manifest = auto_model.manifest
    assert list(board.columns) == ["id", "family", "roc_auc", "fit_seconds", "predict_seconds", "kept", "weight"]
    assert set(board["id"]) == set(manifest["member_scores"]) and "lightgbm" in set(board["family"])
    assert board["roc_auc"].is_monotonic_decreasing  # best first
    kept = board[board["kept"]]
    assert dict(zip(kept["id"], kept["weight"])) == {m["id"]: m["weight"] for m in manifest["members"]}
    assert (board.loc[~board["kept"], "weight"] == 0).all()
    assert (board["fit_seconds"] > 0).all() and board["predict_seconds"].isna().all()  # not measured
    for cid, score in manifest["member_scores"].items():
        assert board.set_index("id").loc[cid, "roc_auc"] == pytest.approx(score)


def test_leaderboard_of_a_loss_is_lowest_first_and_old_bundles_work(fixtures):
    from takeoff.pipelines.prediction.leaderboard import leaderboard

    manifest = {"training": {"metric": "rmse", "fit_seconds": {"a": 1.0, "b": 2.0}},
                "member_scores": {"a": 3.0, "b": 1.5}, "members": [{"id": "b", "family": "b", "weight": 1.0}]}
    board = leaderboard(manifest)
    assert board["id"].tolist() == ["b", "a"] and board["kept"].tolist() == [True, False]
    old = takeoff.load(fixtures / "bundle-v1").leaderboard()  # format 1: no fit times recorded
    assert len(old) >= 1 and old["kept"].any()


def test_repr_html_shows_task_metrics_and_leaderboard(auto_model):
    page = auto_model._repr_html_()
    assert "binary" in page and "<code>Status</code>" in page and "roc_auc" in page
    assert f"{auto_model.metrics['roc_auc']:.4f}" in page
    assert page.count("<tr>") >= len(auto_model.leaderboard()) + 1 and "lightgbm" in page
