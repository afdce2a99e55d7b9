"""Batch prediction over files of any size: read in chunks, predict, write in chunks.

Memory stays flat in the number of rows; the output appears only when complete.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from takeoff.data.conform import ConformNotes
from takeoff.data.schema import require_columns


def predict_file(
    model,
    data,
    out: str | Path,
    *,
    id_column: str | None = None,
    table: str | None = None,
    sql: str | None = None,
    encoding: str | None = None,
    strict: bool = False,
    sep: str | None = None,
    decimal: str | None = None,
    chunk_rows: int = 200_000,
) -> dict[str, Any]:
    """Predict every row of ``data`` into ``out`` (CSV or Parquet by extension).

    Args:
        model: a :class:`~takeoff.pipelines.prediction.model.Model` (``takeoff.Model``).
        id_column: a column of ``data`` copied first into the output, to join results back.
        strict: fail on values that do not parse instead of treating them as missing.
        table, sql, encoding, sep, decimal: how ``data`` is read, as for :func:`takeoff.train`.
        chunk_rows: rows per chunk.

    Returns:
        {"rows": n, "seconds": s, "rows_per_second": r, "notes": [...]}.
    """
    from takeoff.data.sources import iter_chunks, source_name
    from takeoff.data.writer import TableWriter

    name = source_name(data, table=table, sql=sql)
    notes = ConformNotes()
    started, rows = time.perf_counter(), 0
    with TableWriter(out) as writer:
        for chunk in iter_chunks(data, table=table, sql=sql, encoding=encoding, chunk_rows=chunk_rows, sep=sep,
                                 decimal=decimal):
            frame, notes = model.predict_frame(chunk, strict=strict, where=name, notes=notes, row_offset=rows)
            if id_column is not None:
                require_columns(chunk, [id_column], name, role="id column")
                frame.insert(0, id_column, chunk[id_column].to_numpy())
            writer.write(frame)
            rows += len(chunk)
    seconds = time.perf_counter() - started
    if id_column is not None and id_column in notes.extra_columns:
        notes.extra_columns.remove(id_column)
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / max(seconds, 1e-9), "notes": notes.messages()}
