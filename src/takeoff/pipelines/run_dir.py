"""What every training run shares: reading its data, and the directory it writes (created
empty, holding ``run.json`` while the run is in progress or interrupted so that it can be
resumed, and the finished bundle at the end). A run that fails leaves nothing half-written
behind."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from takeoff import bundle
from takeoff.errors import BundleError, ConfigError


def read_data(data, table: str | None = None, sql: str | None = None,
              encoding: str | None = None, sep: str | None = None, decimal: str | None = None) -> tuple[pd.DataFrame, str]:
    """A table (path, SQLAlchemy URL or DataFrame) read whole, and its name in messages."""
    from takeoff.data.sources import read_table, source_name

    table_read = read_table(data, table=table, sql=sql, encoding=encoding, sep=sep, decimal=decimal)
    return table_read, source_name(data, table=table, sql=sql)


def new_output_dir(run_dir: Path) -> Path:
    """Create the output directory of a run, refusing one that already holds something."""
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"output directory {run_dir} already exists and is not empty. Fix: choose another --out, or remove it.")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def remove_unfinished(run_dir: Path) -> None:
    """After a failed run: nothing half-written is left behind (a finished bundle stays)."""
    if run_dir.exists() and not (run_dir / bundle.MANIFEST).exists():
        shutil.rmtree(run_dir, ignore_errors=True)


def rereadable(data) -> str | None:
    """How a resumed run finds its data again: an absolute path, a URL, or None (a DataFrame)."""
    if isinstance(data, str) and "://" in data:
        return data
    if isinstance(data, (str, Path)):
        return str(Path(data).resolve())
    return None


def resume_state(path: Path) -> dict[str, Any]:
    """The saved state (``run.json``) of the interrupted run at ``path``.

    Raises:
        BundleError: ``path`` is a finished bundle, not a run, or a run from a DataFrame.
    """
    state_file = path / bundle.RUN_STATE
    if (path / bundle.MANIFEST).exists():
        raise BundleError(str(path), "is a finished bundle; there is nothing to resume")
    if not state_file.exists():
        raise BundleError(str(path), "is not a takeoff training run (no run.json)", "pass the --out directory of an interrupted `takeoff train`")
    state = bundle.read_run_state(path)  # checked: a corrupt run.json is a BundleError naming the field
    if state["source"].get("data") is None:
        raise BundleError(str(path), "was trained from an in-memory DataFrame, which cannot be re-read", "train again")
    return state
