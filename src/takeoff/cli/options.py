"""Options several commands share: where the data comes from, and the default run directory."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

Data = Annotated[str, typer.Argument(help="CSV, TSV, Parquet, JSON lines or Excel file, or a SQLAlchemy URL.")]
TableOpt = Annotated[Optional[str], typer.Option("--table", help="Database table (with a SQLAlchemy URL).")]
SqlOpt = Annotated[Optional[str], typer.Option("--sql", help="SQL query (with a SQLAlchemy URL).")]
EncodingOpt = Annotated[Optional[str], typer.Option("--encoding", help="Text encoding of CSV/TSV files (default UTF-8).")]
SepOpt = Annotated[Optional[str], typer.Option("--sep", help="CSV delimiter: one character, or tab (default: detected, one of , ; tab |).")]
DecimalOpt = Annotated[Optional[str], typer.Option("--decimal", help="Decimal mark of CSV numbers: . or , (default: detected).")]


def default_run_dir(data: str, table: str | None, fallback: str, suffix: str = "") -> Path:
    """``takeoff-runs/<time>-<name><suffix>``, the name read from the table, the URL or the file."""
    stem = Path(table or (data.rsplit("/", 1)[-1] if "://" in data else Path(data).stem) or fallback).stem
    return Path("takeoff-runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{stem}{suffix}"
