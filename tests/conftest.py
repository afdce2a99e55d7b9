"""Shared fixtures: the real datasets beside the repository, and small samples of them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_datasets() -> Path:
    """``$TAKEOFF_DATASETS``, else ``shared/datasets`` beside this checkout, else beside the
    checkout it was cloned from (a clean clone in a scratch folder, as CI makes one)."""
    if "TAKEOFF_DATASETS" in os.environ:
        return Path(os.environ["TAKEOFF_DATASETS"])
    beside = REPO.parent / "shared" / "datasets"
    if beside.is_dir():
        return beside
    try:
        origin = subprocess.run(["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and "://" not in origin and Path(origin).is_dir():
        cloned_from = Path(origin).resolve().parent / "shared" / "datasets"
        if cloned_from.is_dir():
            return cloned_from
    return beside


DATASETS = _find_datasets()
# The commands track runs to MLflow (./mlruns) by default: not while the suite runs them; the
# tracking tests name their store with --tracking-uri.
os.environ.setdefault("TAKEOFF_TRACK", "0")
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def datasets() -> Path:
    if not DATASETS.is_dir():
        message = f"real datasets not found at {DATASETS} (set TAKEOFF_DATASETS)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a skipped half of the suite must not pass as green
        pytest.skip(message)
    return DATASETS


@pytest.fixture(scope="session")
def credit(datasets) -> pd.DataFrame:
    """The credit-risk table (4,454 rows, target Status good/bad)."""
    return pd.read_csv(datasets / "credit_risk.csv")


@pytest.fixture(scope="session")
def credit_small(credit) -> pd.DataFrame:
    """1,200 rows of the credit-risk table: enough signal, fast to train."""
    return credit.sample(1200, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="session")
def credit_csv(credit_small, tmp_path_factory) -> Path:
    """``credit_small`` as a CSV file (for the CLI and subprocess tests)."""
    path = tmp_path_factory.mktemp("data") / "credit.csv"
    credit_small.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES
