"""AutoGluon as a peer, in its own virtual environment, so that nothing of it is imported
where takeoff runs.

The environment is created on first use at ``$TAKEOFF_AUTOGLUON_VENV`` (default
``~/.cache/takeoff-benchmarks/autogluon``) with ``python3 -m venv`` and
``pip install "torch<2.14" "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3"``; torch is
there for AutoGluon's own neural network, which ``medium_quality`` includes. Each split is
handed over as Parquet files in a temporary directory, fitted by ``autogluon_worker.py`` in a
subprocess, and its predictions read back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .contenders import Prediction

REQUIREMENTS = ("torch<2.14", "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3")
PRESETS = "medium_quality"
WORKER = Path(__file__).with_name("autogluon_worker.py")
EVAL_METRIC = {"roc_auc": "roc_auc", "accuracy": "accuracy", "rmse": "root_mean_squared_error"}
# AutoGluon may overrun its time_limit a little and needs a few seconds to import and predict.
TIMEOUT_FACTOR, TIMEOUT_EXTRA_S = 3, 300


def venv_dir() -> Path:
    default = Path.home() / ".cache" / "takeoff-benchmarks" / "autogluon"
    return Path(os.environ.get("TAKEOFF_AUTOGLUON_VENV", default))


def ensure_venv() -> Path:
    """The AutoGluon environment's Python, after creating and installing it if needed (minutes)."""
    venv = venv_dir()
    python, marker = venv / "bin" / "python", venv / ".takeoff-requirements"
    if python.exists() and marker.exists() and marker.read_text() == "\n".join(REQUIREMENTS):
        return python
    print(f"installing AutoGluon into {venv} (once; takes a few minutes)", file=sys.stderr, flush=True)
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    marker.write_text("\n".join(REQUIREMENTS))
    return python


def fit_predict(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, budget: float,
                metric: str) -> Prediction:
    """Fit ``TabularPredictor(...).fit(train, time_limit=budget, presets="medium_quality")``
    in the AutoGluon environment and predict ``test``."""
    python = ensure_venv()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="takeoff-autogluon-") as tmp:
        work = Path(tmp)
        train.to_parquet(work / "train.parquet")
        test.to_parquet(work / "test.parquet")
        job = {"target": target, "problem_type": task, "eval_metric": EVAL_METRIC[metric],
               "time_limit": budget, "presets": PRESETS}
        (work / "job.json").write_text(json.dumps(job))
        run = subprocess.run([str(python), str(WORKER), str(work)], capture_output=True, text=True,
                             timeout=budget * TIMEOUT_FACTOR + TIMEOUT_EXTRA_S)
        if run.returncode != 0:
            raise RuntimeError(f"AutoGluon failed (exit {run.returncode}):\n{(run.stdout + run.stderr)[-3000:]}")
        result = json.loads((work / "result.json").read_text())
        predicted = pd.read_parquet(work / "predictions.parquet")
    wall = time.perf_counter() - started
    info = {"best_model": result["best_model"], "models": result["models"], "version": result["version"]}
    if task == "regression":
        return Prediction(result["fit_seconds"], wall, values=predicted["value"].to_numpy(dtype=float), info=info)
    proba = predicted[[c for c in predicted.columns if c.startswith("proba:")]]
    proba.columns = [c.removeprefix("proba:") for c in proba.columns]
    return Prediction(result["fit_seconds"], wall, labels=np.asarray(predicted["label"], dtype=str), proba=proba, info=info)
