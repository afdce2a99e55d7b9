"""Reading a whole table: resolving the source (checked before anything is read), then the
reader for its kind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from takeoff.data.sources.failures import reading
from takeoff.data.sources.files import file_format, known, not_found, open_binary, read_file
from takeoff.data.sources.finish import finish
from takeoff.data.sources.folders import read_image_folder
from takeoff.data.sources.sniff import SAMPLE_BYTES, check_sep, sniff
from takeoff.data.sources.source import Source, is_url, source_name
from takeoff.data.sources.sql import read_sql, resolve_sql
from takeoff.errors import DataSourceError, preview


def read_table(
    source: Any,
    *,
    table: str | None = None,
    sql: str | None = None,
    encoding: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
) -> pd.DataFrame:
    """Read a whole table from a file, a database or a DataFrame.

    Args:
        source: a ``pd.DataFrame`` (returned as a copy), a file path (``str`` or ``Path``),
            or a SQLAlchemy URL (any string containing ``://``).
        table: with a URL, the table to read (``schema.table`` is allowed).
        sql: with a URL, the query to run instead of ``table``.
        encoding: text encoding of CSV/TSV/JSON files; default UTF-8.
        sep: CSV delimiter (one character, or "tab"); default: detected from the first lines
            (``,``, ``;``, tab or ``|``).
        decimal: decimal mark of CSV numbers, "." or ","; default: detected (``,`` when the
            numbers are written ``1,5`` in a file not separated by commas).

    Returns:
        The rows, with unique string column names and a ``RangeIndex`` from 0.

    Raises:
        SourceNotFoundError: the file does not exist (similar names are suggested).
        DataSourceError: the source cannot be read, is empty, or has no rows.
        DataError: a column name appears twice.
        MissingDependencyError: an optional reader (openpyxl, a database driver) is missing.

    Example:
        >>> df = read_table("/work/shared/datasets/credit_risk.csv")
        >>> df.shape
        (4454, 14)
    """
    src = resolve(source, table, sql, encoding, sep, decimal)
    if src.frame is not None:
        df = src.frame.copy()
        df.columns = [str(c) for c in df.columns]
    elif src.engine is not None:
        try:
            with reading(src), src.engine.connect() as conn:
                df = read_sql(src, conn, chunksize=None)
        finally:
            src.engine.dispose()
    elif src.fmt == "images":
        df = read_image_folder(src)
    else:
        with reading(src):
            df = read_file(src)
        if src.path is not None:
            from takeoff.data.images import resolve_paths

            df = resolve_paths(df, src.path.parent)
    return finish(df, src, header_only=len(df.columns) > 0)


def resolve(source: Any, table: str | None, sql: str | None, encoding: str | None,
            sep: str | None = None, decimal: str | None = None) -> Source:
    """Check the source exists and is of a known kind, before reading anything; a CSV file's
    delimiter, quotes and decimal mark are settled here (given, else sniffed)."""
    name = source_name(source, table, sql)
    sep, decimal = check_sep(sep, decimal, name)
    if isinstance(source, pd.DataFrame):
        no_query_args(name, table, sql, "a DataFrame")
        return Source(name=name, frame=source)
    if is_url(source):
        return resolve_sql(source, name, table, sql)
    if not isinstance(source, (str, os.PathLike)):
        raise DataSourceError(
            repr(source)[:80],
            f"is a {type(source).__name__}, not a data source",
            fix="pass a file path, a SQLAlchemy URL or a pandas DataFrame",
        )
    path = Path(source).expanduser()
    no_query_args(name, table, sql, "a file")
    if not path.exists():
        raise not_found(path)
    if path.is_dir():
        from takeoff.data import images

        if images.has_images(path):
            return Source(name=name, path=path, fmt="images")
        found = sorted(p.name for p in path.iterdir() if p.is_file() and known(p))
        hint = f"pass one of the files in it: {preview(found)}" if found else "pass a data file"
        raise DataSourceError(str(path), "is a directory, not a data file", fix=hint)
    fmt, compression = file_format(path)
    if path.stat().st_size == 0:
        raise DataSourceError(
            name, "is empty (0 bytes)", fix="check that the file was fully written or exported"
        )
    src = Source(name=name, path=path, fmt=fmt, compression=compression, encoding=encoding, sep=sep, decimal=decimal)
    if fmt in ("csv", "tsv"):
        with reading(src), open_binary(src) as handle:
            sniff(src, handle.read(SAMPLE_BYTES))
    return src


def no_query_args(name: str, table: str | None, sql: str | None, what: str) -> None:
    if table is not None or sql is not None:
        given = "table=" if table is not None else "sql="
        raise DataSourceError(
            name,
            f"{given} only applies to database URLs, and the source is {what}",
            fix="drop the table=/sql= argument, or pass a URL such as sqlite:////path/data.db",
        )
