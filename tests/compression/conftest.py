"""Fixtures for the ONNX export tests: small models trained on real credit-risk rows, and rows
they never saw with the awkward values a server meets (unseen and missing categories, missing
and absurd numbers, padded strings).

- ``onnx_train`` / ``onnx_rows``: 1,000 training rows; 300 other rows (target kept) with the
  awkward values written into the first ones.
- ``onnx_lgb`` / ``onnx_mlp``: a LightGBM model (saved, with its report) and an MLP model
  (in memory) on them.
- ``onnx_lgb_bundle`` / ``onnx_mlp_bundle``: those models exported (``runtime: onnx``), as paths.
- ``run_lite``: ``run_lite(refused, models_dir, rows_csv, work_dir, labelled_csv=None) -> dict``
  runs lite_check.py (predict and serve every bundle of ``models_dir``, and with
  ``labelled_csv`` inspect and evaluate, with the packages ``refused`` refused at import) in a
  fresh interpreter and returns its result.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.compression.onnx import write_onnx_bundle


def awkward(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with unseen, missing and padded categories and missing and absurd numbers."""
    rows = rows.reset_index(drop=True).astype({"Home": object, "Job": object, "Marital": object,
                                               "Income": float, "Amount": float, "Age": float})
    rows.loc[0, "Home"] = "castle"  # unseen category
    rows.loc[1, "Home"] = None  # missing category
    rows.loc[2, ["Income", "Assets", "Debt"]] = np.nan  # missing numbers (indicators)
    rows.loc[3, "Amount"] = 1e300  # clipped
    rows.loc[4, "Job"] = "  fixed "  # stripped by conform
    rows.loc[5, ["Home", "Marital", "Job", "Age"]] = [None, "unheard-of", None, np.nan]
    return rows


@pytest.fixture(scope="session")
def onnx_split(credit):
    sample = credit.sample(1300, random_state=7).reset_index(drop=True)
    return sample.iloc[:1000].reset_index(drop=True), awkward(sample.iloc[1000:])


@pytest.fixture(scope="session")
def onnx_train(onnx_split) -> pd.DataFrame:
    return onnx_split[0]


@pytest.fixture(scope="session")
def onnx_rows(onnx_split) -> pd.DataFrame:
    return onnx_split[1]


@pytest.fixture(scope="session")
def onnx_lgb(onnx_train, tmp_path_factory):
    config = {"refit": False, "models": {"lightgbm": {"max_rounds": 120}}}
    return takeoff.train(onnx_train, target="Status", family="lightgbm", time_budget=30, seed=0, config=config,
                         out=tmp_path_factory.mktemp("onnx-lgb") / "bundle")


@pytest.fixture(scope="session")
def onnx_mlp(onnx_train, tmp_path_factory):
    config = {"refit": False, "models": {"mlp": {"max_epochs": 4, "hidden_sizes": [32, 16]}}}
    return takeoff.train(onnx_train, target="Status", family="mlp", time_budget=30, seed=0, config=config)


@pytest.fixture(scope="session")
def onnx_lgb_bundle(onnx_lgb, onnx_rows, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx-lgb-export") / "credit"
    write_onnx_bundle(onnx_lgb, out, frame=onnx_rows)
    return out


@pytest.fixture(scope="session")
def onnx_mlp_bundle(onnx_mlp, onnx_rows, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx-mlp-export") / "credit-mlp"
    write_onnx_bundle(onnx_mlp, out, frame=onnx_rows)
    return out


@pytest.fixture(scope="session")
def run_lite():
    def run(refused, models, rows_csv, work, labelled=None) -> dict:
        with socket.socket() as probe:  # a free port for `takeoff serve`
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        script = Path(__file__).with_name("lite_check.py")
        proc = subprocess.run([sys.executable, str(script), ",".join(refused), str(models), str(rows_csv), str(work),
                               str(port), *([str(labelled)] if labelled else [])], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-4000:]
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        return json.loads(line[len("RESULT "):])

    return run
