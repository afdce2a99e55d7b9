"""Read tables from files, SQL databases and DataFrames.

This is the boundary where data enters takeoff, so every way a source can be unreadable is
turned into a :class:`~takeoff.errors.DataSourceError` (or a subclass) that names the source,
the problem and the fix. Inner code trusts what comes out of here: a DataFrame with at least
one row, unique string column names and a ``RangeIndex`` from 0.

Formats (by extension, case-insensitive): ``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``,
``.jsonl``/``.ndjson``, ``.json`` (JSON lines or an array of records), ``.xlsx``/``.xls``
(first sheet). Text formats may be compressed (``.csv.gz``, ``.jsonl.bz2``, ...). A string
containing ``://`` is a SQLAlchemy URL, read with ``table=`` or ``sql=``.

One module per kind of source (``files``, ``sql``, ``folders``), plus resolving and reading
(``read``), streaming (``chunks``), checking what was read (``finish``) and the translation of
failures into our errors (``failures``). Import from here.
"""

from takeoff.data.sources.chunks import iter_chunks
from takeoff.data.sources.read import read_table
from takeoff.data.sources.source import COMPRESSIONS, FORMATS, mask_url, source_name, supported_extensions

__all__ = ["COMPRESSIONS", "FORMATS", "iter_chunks", "mask_url", "read_table", "source_name", "supported_extensions"]
