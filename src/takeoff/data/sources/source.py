"""What a source is: its kind and format, its name in messages, and the formats read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".xlsx": "excel",
    ".xls": "excel",
}
# Compression suffixes pandas reads with the standard library alone, for the text formats.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}

FORMAT_NAMES = {
    "images": "image folder",
    "csv": "CSV",
    "tsv": "tab-separated",
    "parquet": "Parquet",
    "jsonl": "JSON lines",
    "json": "JSON",
    "excel": "Excel",
}


def supported_extensions() -> list[str]:
    """The file extensions :func:`read_table` reads, e.g. ``['.csv', '.tsv', ...]``."""
    return list(FORMATS)


def is_url(source: object) -> bool:
    return isinstance(source, str) and "://" in source


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable: mask by pattern instead
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def source_name(source: Any, table: str | None = None, sql: str | None = None) -> str:
    """A short human name for ``source`` in messages.

    Example:
        >>> source_name("data/train.csv")
        'train.csv'
        >>> source_name("postgresql://me:secret@db/x", table="loans")
        "table 'loans' in postgresql://me:***@db/x"
    """
    if isinstance(source, pd.DataFrame):
        return "DataFrame"
    if is_url(source):
        url = mask_url(source)
        if table is not None:
            return f"table '{table}' in {url}"
        if sql is not None:
            query = " ".join(sql.split())
            query = query if len(query) <= 60 else query[:57] + "..."
            return f"query '{query}' in {url}"
        return url
    path = Path(source)
    return path.name or str(path)


@dataclass
class Source:
    """A validated source: what it is and how to read it."""

    name: str
    frame: pd.DataFrame | None = None
    path: Path | None = None
    fmt: str = ""
    compression: str | None = None
    encoding: str | None = None
    engine: Any = None  # sqlalchemy Engine
    table: str | None = None
    schema: str | None = None  # the database schema of ``table``
    sql: str | None = None
    # CSV/TSV layout: given, else sniffed from the first lines (see sniff.py)
    sep: str | None = None
    decimal: str | None = None
    quotechar: str | None = None
    thousands: str | None = None

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES.get(self.fmt, self.fmt)
