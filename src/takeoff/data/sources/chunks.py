"""Streaming a table in chunks with flat memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from takeoff.data.sources.failures import reading
from takeoff.data.sources.files import csv_options, json_is_lines, json_options, parquet_chunks, read_file
from takeoff.data.sources.finish import finish
from takeoff.data.sources.folders import read_image_folder
from takeoff.data.sources.read import resolve
from takeoff.data.sources.source import Source, source_name
from takeoff.data.sources.sql import read_sql
from takeoff.errors import DataSourceError


def iter_chunks(
    source: Any,
    *,
    table: str | None = None,
    sql: str | None = None,
    encoding: str | None = None,
    chunk_rows: int = 100_000,
    sep: str | None = None,
    decimal: str | None = None,
) -> Iterator[pd.DataFrame]:
    """Stream a table in chunks of ``chunk_rows`` rows with flat memory.

    CSV/TSV, Parquet, JSON lines and SQL stream; Excel, a JSON array and a DataFrame come as
    one chunk. Each chunk's index continues the previous one (0..n-1, n..2n-1, ...). The
    source is checked when this is called (missing file, bad URL, unknown table); problems
    found while reading (bad bytes, no rows at all) raise from the iteration.

    Args:
        source, table, sql, encoding, sep, decimal: as for :func:`read_table`.
        chunk_rows: rows per chunk (the last may be shorter); at least 1.

    Raises:
        The same errors as :func:`read_table`.

    Example:
        >>> total = sum(len(c) for c in iter_chunks("big.csv", chunk_rows=50_000))
    """
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise DataSourceError(
            source_name(source, table, sql),
            f"chunk_rows must be a positive integer, got {chunk_rows!r}",
            fix="pass chunk_rows=100000 or another count of at least 1",
        )
    src = resolve(source, table, sql, encoding, sep, decimal)
    return chunks(src, chunk_rows)


def chunks(src: Source, chunk_rows: int) -> Iterator[pd.DataFrame]:
    offset = 0
    columns: list[str] = []
    try:
        for chunk in _raw_chunks(src, chunk_rows):
            columns = columns or [str(c) for c in chunk.columns]
            if len(chunk) == 0:
                continue
            if src.path is not None and src.fmt != "images":
                from takeoff.data.images import resolve_paths

                chunk = resolve_paths(chunk, src.path.parent)
            if offset == 0:
                chunk = finish(chunk, src, header_only=False)
            chunk.index = pd.RangeIndex(offset, offset + len(chunk))
            offset += len(chunk)
            yield chunk
    finally:
        if src.engine is not None:
            src.engine.dispose()
    if offset == 0:
        finish(pd.DataFrame(columns=columns), src, header_only=bool(columns))


def _raw_chunks(src: Source, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if src.frame is not None:
        df = src.frame.copy()
        df.columns = [str(c) for c in df.columns]
        yield df
        return
    if src.fmt == "images":
        yield read_image_folder(src)
        return
    if src.engine is not None:
        with reading(src), src.engine.connect() as conn:
            conn = conn.execution_options(stream_results=True)  # server-side cursor where offered
            yield from read_sql(src, conn, chunksize=chunk_rows)
        return
    if src.fmt in ("csv", "tsv"):
        with reading(src), pd.read_csv(src.path, chunksize=chunk_rows, **csv_options(src)) as reader:
            yield from reader
    elif src.fmt == "parquet":
        with reading(src):
            yield from parquet_chunks(src.path, chunk_rows)
    elif src.fmt == "jsonl" or (src.fmt == "json" and json_is_lines(src)):
        with reading(src), pd.read_json(src.path, lines=True, chunksize=chunk_rows, **json_options(src)) as reader:
            yield from reader
    else:  # Excel, a JSON array: no streaming reader, one chunk
        with reading(src):
            yield read_file(src)
