"""Tracking on MLflow: runs written by train and evaluate and read back by `takeoff runs`, an
unreachable server that costs one warning, and a bundle served as an MLflow pyfunc model."""

from __future__ import annotations

import json
import logging
import socket

import numpy as np
import pytest
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app

QUICK = {"models": {"lightgbm": {"max_rounds": 60}}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One tracking store for the module (creating MLflow's tables takes a few seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def trained(credit_small, store, tmp_path_factory):
    """A small model trained through the CLI with tracking on, and its data file."""
    folder = tmp_path_factory.mktemp("train")
    data = folder / "credit.csv"
    credit_small.to_csv(data, index=False)
    result = CliRunner().invoke(app, ["train", str(data), "--target", "Status", "--family", "lightgbm", "--time-budget", "30",
                                      "--out", str(folder / "bundle"), "--tracking-uri", store])
    assert result.exit_code == 0, result.output
    return folder / "bundle", data


def _runs(store, *args):
    result = CliRunner().invoke(app, ["runs", *args, "--tracking-uri", store, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_train_and_evaluate_runs_are_read_back(trained, store):
    bundle, data = trained
    result = CliRunner().invoke(app, ["evaluate", str(bundle), str(data), "--tracking-uri", store, "--json"])
    assert result.exit_code == 0, result.output
    runs = _runs(store, "list")
    assert [r["kind"] for r in runs] == ["evaluate", "train"]  # newest first
    model = takeoff.load(bundle)
    train_run = _runs(store, "show", runs[1]["run_id"][:10])  # an id prefix, as the table prints it
    assert train_run["metrics"]["roc_auc"] == pytest.approx(model.metrics["roc_auc"])
    assert train_run["params"]["config.family"] == "lightgbm" and train_run["params"]["members.lightgbm.num_leaves"] == "31"
    assert "lightgbm.valid_loss" in train_run["metrics"]  # the learning curve, one step per round
    assert {"bundle", "report.html"} <= set(train_run["artifacts"])
    compared = _runs(store, "compare", runs[0]["run_id"], runs[1]["run_id"])
    assert compared["params"]["bundle"][1] is None  # evaluate names the bundle, train does not
    on_all_rows, validated = compared["metrics"]["roc_auc"]
    assert validated == pytest.approx(model.metrics["roc_auc"]) and 0.5 < on_all_rows <= 1.0
    table = CliRunner().invoke(app, ["runs", "list", "--tracking-uri", store])
    assert runs[0]["run_id"][:12] in table.stdout and "evaluate" in table.stdout


def test_an_unreachable_server_is_one_warning_and_the_run_succeeds(credit_small, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="takeoff"):
        model = takeoff.train(credit_small, "Status", family="lightgbm", time_budget=20, config=QUICK,
                              out=tmp_path / "b", track=True, tracking_uri=f"http://user:pw@127.0.0.1:{port}")
    warnings = [r.getMessage() for r in caplog.records if "tracking" in r.getMessage()]
    assert len(warnings) == 1 and f"127.0.0.1:{port}" in warnings[0] and "pw@" not in warnings[0]
    assert (tmp_path / "b" / "takeoff.json").is_file() and model.metrics["roc_auc"] > 0.7


def test_a_bundle_logged_as_a_pyfunc_model_predicts_the_same(trained, store, credit_small):
    mlflow = pytest.importorskip("mlflow")
    import takeoff.mlflow

    bundle, _ = trained
    uri = takeoff.mlflow.log_model(bundle, tracking_uri=store, registered_model_name="credit")
    mlflow.set_tracking_uri(store)
    rows = credit_small.drop(columns=["Status"]).head(40)
    served = mlflow.pyfunc.load_model(uri).predict(rows)
    assert np.array_equal(np.asarray(served), takeoff.load(bundle).predict(rows))
    registered = mlflow.pyfunc.load_model("models:/credit/1").predict(rows)
    assert np.array_equal(np.asarray(registered), np.asarray(served))
