"""The `takeoff` command as a user runs it: real files, a real SQLite database, real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app

TAKEOFF = [sys.executable, "-m", "takeoff.cli"]


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


@pytest.fixture(scope="module")
def bundle(credit_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "credit"
    result = run("train", str(credit_csv), "--target", "Status", "--out", str(out), "--time-budget", "20",
                 "--family", "lightgbm", "--drop", "Price", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "roc_auc" in result.output and f"bundle: {out}" in result.output
    return out


def test_train_drop_and_seed(bundle):
    manifest = json.loads((bundle / "takeoff.json").read_text())
    assert "Price" not in [c["name"] for c in manifest["schema"]]
    assert manifest["config"]["seed"] == 1 and manifest["config"]["drop"] == ["Price"]


def test_evaluate_json_is_clean_stdout(bundle, credit_csv, tmp_path):
    proc = subprocess.run([*TAKEOFF, "evaluate", str(bundle), str(credit_csv), "--json", "--report", str(tmp_path / "r.html")],
                          capture_output=True, text=True, check=True)
    data = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert data["task"] == "binary" and data["metrics"]["roc_auc"] > 0.7
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_predict_to_csv_and_parquet_with_id(bundle, credit_small, tmp_path):
    data = credit_small.drop(columns=["Status"]).head(100).copy()
    data.insert(0, "applicant", [f"a{i}" for i in range(100)])
    data.to_csv(tmp_path / "new.csv", index=False)
    for name in ("out.csv", "out.parquet"):
        result = run("predict", str(bundle), str(tmp_path / "new.csv"), "-o", str(tmp_path / name), "--id", "applicant")
        assert result.exit_code == 0, result.output
        out = pd.read_csv(tmp_path / name) if name.endswith("csv") else pd.read_parquet(tmp_path / name)
        assert list(out.columns) == ["applicant", "prediction", "proba_good", "proba_bad"]
        assert out["applicant"].tolist() == data["applicant"].tolist()
    model = takeoff.load(bundle)
    assert out["prediction"].tolist() == list(model.predict(data))


def test_predict_unknown_output_format(bundle, credit_csv, tmp_path):
    result = run("predict", str(bundle), str(credit_csv), "-o", str(tmp_path / "out.xml"))
    assert result.exit_code == 3 and ".parquet" in result.output
    assert not list(tmp_path.iterdir())


def test_inspect_json_and_strict(credit_csv, tmp_path):
    result = run("inspect", str(credit_csv), "--target", "Status", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["task"]["kind"] == "binary" and data["rows"] == 1200
    kinds = {c["name"]: c["kind"] for c in data["columns"]}
    assert kinds["Home"] == "categorical" and kinds["Income"] == "numeric"
    leaky = pd.read_csv(credit_csv).assign(leak=lambda d: (d["Status"] == "bad").astype(int))
    leaky.to_csv(tmp_path / "leaky.csv", index=False)
    result = run("inspect", str(tmp_path / "leaky.csv"), "--target", "Status", "--strict")
    assert result.exit_code == 3 and "leak" in result.output
    result = run("train", str(tmp_path / "leaky.csv"), "--target", "Status", "--strict", "--out", str(tmp_path / "m"))
    assert result.exit_code == 3 and "'leak'" in result.output and not (tmp_path / "m").exists()


def test_sqlite_table_and_query(credit_small, tmp_path):
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as con:
        credit_small.to_sql("applications", con, index=False)
    url = f"sqlite:///{db}"
    out = tmp_path / "from-sql"
    result = run("train", url, "--table", "applications", "--target", "Status", "--out", str(out),
                 "--time-budget", "15", "--family", "lightgbm")
    assert result.exit_code == 0, result.output
    result = run("evaluate", str(out), url, "--sql", "SELECT * FROM applications WHERE Age > 40", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["roc_auc"] > 0.7
    result = run("inspect", url, "--table", "aplications")
    assert result.exit_code == 3 and "applications" in result.output


def test_errors_are_one_clear_line(credit_csv, tmp_path):
    result = run("train", str(tmp_path / "missing.csv"), "--target", "Status")
    assert result.exit_code == 3 and "missing.csv" in result.output and "Traceback" not in result.output
    result = run("train", str(credit_csv), "--target", "status", "--out", str(tmp_path / "x"))
    assert result.exit_code == 3 and "Did you mean 'Status'" in result.output
    assert not (tmp_path / "x").exists()
    result = run("train", str(credit_csv), "--target", "Status", "--family", "xgboost", "--out", str(tmp_path / "y"))
    assert result.exit_code == 2 and "lightgbm" in result.output
    result = run("evaluate", str(tmp_path), str(credit_csv))
    assert result.exit_code == 4 and "takeoff.json" in result.output


def test_version_and_config(tmp_path):
    result = run("--version")
    assert result.exit_code == 0 and takeoff.__version__ in result.output
    result = run("config", "show")
    assert result.exit_code == 0 and "time_budget: 120" in result.output and "lightgbm:" in result.output
    (tmp_path / "c.yaml").write_text("time_budget: 30\nmodels:\n  lightgbm:\n    num_leavs: 8\n")
    result = run("config", "show", "--config", str(tmp_path / "c.yaml"))
    assert result.exit_code == 2 and "num_leaves" in result.output
    (tmp_path / "c.yaml").write_text("time_budget: 30\nmodels:\n  lightgbm:\n    num_leaves: 8\n")
    result = run("config", "show", "--config", str(tmp_path / "c.yaml"))
    assert result.exit_code == 0 and "time_budget: 30.0" in result.output and "num_leaves: 8" in result.output


def test_ctrl_c_leaves_a_resumable_run(datasets, tmp_path):
    """A real SIGINT during MLP training, then `--resume` finishes the same directory.

    3,000 rows and 15 epochs: after the first epoch's checkpoint the run still has seconds of
    work left (the rest of the epochs, the log-target candidate, the refit), so the signal lands
    mid-training, and the resumed run finishes quickly."""
    data = tmp_path / "diamonds.csv"
    pd.read_csv(datasets / "diamonds.csv").sample(3_000, random_state=0).to_csv(data, index=False)
    config = tmp_path / "mlp.yaml"
    config.write_text("models:\n  mlp:\n    max_epochs: 15\n    patience: 15\n")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*TAKEOFF, "train", str(data), "--target", "price", "--family", "mlp", "--out", str(out),
                             "--config", str(config), "--time-budget", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    checkpoint = out / "checkpoints" / "mlp"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (checkpoint.exists() and any(checkpoint.glob("*.json"))):
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"takeoff train --resume {out}" in stderr
    state = json.loads((out / "run.json").read_text())
    assert state["status"] == "interrupted"
    with pytest.raises(takeoff.errors.BundleError, match="unfinished training run.*--resume"):
        takeoff.load(out)
    result = run("train", "--resume", str(out))
    assert result.exit_code == 0, result.output
    assert "mlp: continuing the interrupted fit from epoch" in result.stderr  # not a fresh start
    model = takeoff.load(out)
    assert model.metrics["r2"] > 0.8
    assert not (out / "checkpoints").exists()


def test_demo(tmp_path):
    result = run("demo", "--out-dir", str(tmp_path), "--time-budget", "25")
    assert result.exit_code == 0, result.output
    assert "held-out test metrics" in result.output and "roc_auc" in result.output
    reports = list(tmp_path.glob("*-holdout-report.html"))
    bundles = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(reports) == 1 and len(bundles) == 1 and (bundles[0] / "takeoff.json").exists()
