"""Read tables from files, SQL databases and DataFrames; write prediction tables atomically.

This is the boundary where data enters takeoff, so every way a source can be unreadable is
turned into a :class:`~takeoff.errors.DataSourceError` (or a subclass) that names the source,
the problem and the fix. Inner code trusts what comes out of here: a DataFrame with at least
one row, unique string column names and a ``RangeIndex`` from 0.

Formats (by extension, case-insensitive): ``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``,
``.jsonl``/``.ndjson``, ``.json`` (JSON lines or an array of records), ``.xlsx``/``.xls``
(first sheet). Text formats may be compressed (``.csv.gz``, ``.jsonl.bz2``, ...). A string
containing ``://`` is a SQLAlchemy URL, read with ``table=`` or ``sql=``.
"""

from __future__ import annotations

import bz2
import codecs
import difflib
import gzip
import lzma
import os
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from takeoff.errors import (
    DataError,
    DataSourceError,
    MissingDependencyError,
    SourceNotFoundError,
    TakeoffError,
    closest,
    preview,
)

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

_FORMAT_NAMES = {
    "images": "image folder",
    "csv": "CSV",
    "tsv": "tab-separated",
    "parquet": "Parquet",
    "jsonl": "JSON lines",
    "json": "JSON",
    "excel": "Excel",
}
_REMOTE_SCHEMES = ("http", "https", "s3", "gs", "gcs", "az", "abfs", "ftp", "file", "hdfs")
_ENCODING_FIX = (
    "re-save the file as UTF-8, or pass its encoding: encoding='latin-1' "
    "(--encoding latin-1 on the command line)"
)
_URL_FORMS = (
    "use a SQLAlchemy URL such as sqlite:////absolute/path/data.db, sqlite:///relative.db or "
    "postgresql://user:password@host:5432/dbname"
)


def supported_extensions() -> list[str]:
    """The file extensions :func:`read_table` reads, e.g. ``['.csv', '.tsv', ...]``."""
    return list(FORMATS)


def _is_url(source: object) -> bool:
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
    if _is_url(source):
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
class _Source:
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

    @property
    def format_name(self) -> str:
        return _FORMAT_NAMES.get(self.fmt, self.fmt)


# --------------------------------------------------------------------------- public reading


def read_table(
    source: Any,
    *,
    table: str | None = None,
    sql: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read a whole table from a file, a database or a DataFrame.

    Args:
        source: a ``pd.DataFrame`` (returned as a copy), a file path (``str`` or ``Path``),
            or a SQLAlchemy URL (any string containing ``://``).
        table: with a URL, the table to read (``schema.table`` is allowed).
        sql: with a URL, the query to run instead of ``table``.
        encoding: text encoding of CSV/TSV/JSON files; default UTF-8.

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
    src = _resolve(source, table, sql, encoding)
    if src.frame is not None:
        df = src.frame.copy()
        df.columns = [str(c) for c in df.columns]
    elif src.engine is not None:
        try:
            with _reading(src), src.engine.connect() as conn:
                df = _read_sql(src, conn, chunksize=None)
        finally:
            src.engine.dispose()
    elif src.fmt == "images":
        df = _read_image_folder(src)
    else:
        with _reading(src):
            df = _read_file(src)
        if src.path is not None:
            from takeoff.data.images import resolve_paths

            df = resolve_paths(df, src.path.parent)
    return _finish(df, src, header_only=len(df.columns) > 0)


def _read_image_folder(src: _Source) -> pd.DataFrame:
    """An image folder as a table (see :func:`takeoff.data.images.read_folder`)."""
    import logging

    from takeoff.data.images import read_folder

    listing = read_folder(src.path)
    log = logging.getLogger("takeoff")
    if listing.skipped:
        log.warning("%s: skipped %d file(s) that are not images: %s", src.name, len(listing.skipped),
                    preview([Path(f).name for f in listing.skipped]))
    if listing.empty_classes:
        log.warning("%s: class folder(s) without images, ignored: %s", src.name, preview(listing.empty_classes))
    return listing.frame


def iter_chunks(
    source: Any,
    *,
    table: str | None = None,
    sql: str | None = None,
    encoding: str | None = None,
    chunk_rows: int = 100_000,
) -> Iterator[pd.DataFrame]:
    """Stream a table in chunks of ``chunk_rows`` rows with flat memory.

    CSV/TSV, Parquet, JSON lines and SQL stream; Excel, a JSON array and a DataFrame come as
    one chunk. Each chunk's index continues the previous one (0..n-1, n..2n-1, ...). The
    source is checked when this is called (missing file, bad URL, unknown table); problems
    found while reading (bad bytes, no rows at all) raise from the iteration.

    Args:
        source, table, sql, encoding: as for :func:`read_table`.
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
    src = _resolve(source, table, sql, encoding)
    return _chunks(src, chunk_rows)


def _chunks(src: _Source, chunk_rows: int) -> Iterator[pd.DataFrame]:
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
                chunk = _finish(chunk, src, header_only=False)
            chunk.index = pd.RangeIndex(offset, offset + len(chunk))
            offset += len(chunk)
            yield chunk
    finally:
        if src.engine is not None:
            src.engine.dispose()
    if offset == 0:
        _finish(pd.DataFrame(columns=columns), src, header_only=bool(columns))


def _raw_chunks(src: _Source, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if src.frame is not None:
        df = src.frame.copy()
        df.columns = [str(c) for c in df.columns]
        yield df
        return
    if src.fmt == "images":
        yield _read_image_folder(src)
        return
    if src.engine is not None:
        with _reading(src), src.engine.connect() as conn:
            conn = conn.execution_options(stream_results=True)  # server-side cursor where offered
            yield from _read_sql(src, conn, chunksize=chunk_rows)
        return
    if src.fmt in ("csv", "tsv"):
        with _reading(src), pd.read_csv(src.path, chunksize=chunk_rows, **_csv_options(src)) as reader:
            yield from reader
    elif src.fmt == "parquet":
        with _reading(src):
            yield from _parquet_chunks(src.path, chunk_rows)
    elif src.fmt == "jsonl" or (src.fmt == "json" and _json_is_lines(src)):
        with _reading(src), pd.read_json(src.path, lines=True, chunksize=chunk_rows, **_json_options(src)) as reader:
            yield from reader
    else:  # Excel, a JSON array: no streaming reader, one chunk
        with _reading(src):
            yield _read_file(src)


# --------------------------------------------------------------------------- resolving


def _resolve(source: Any, table: str | None, sql: str | None, encoding: str | None) -> _Source:
    """Check the source exists and is of a known kind, before reading anything."""
    name = source_name(source, table, sql)
    if isinstance(source, pd.DataFrame):
        _no_query_args(name, table, sql, "a DataFrame")
        return _Source(name=name, frame=source)
    if _is_url(source):
        return _resolve_sql(source, name, table, sql)
    if not isinstance(source, (str, os.PathLike)):
        raise DataSourceError(
            repr(source)[:80],
            f"is a {type(source).__name__}, not a data source",
            fix="pass a file path, a SQLAlchemy URL or a pandas DataFrame",
        )
    path = Path(source).expanduser()
    _no_query_args(name, table, sql, "a file")
    if not path.exists():
        raise _not_found(path)
    if path.is_dir():
        from takeoff.data import images

        if images.has_images(path):
            return _Source(name=name, path=path, fmt="images")
        found = sorted(p.name for p in path.iterdir() if p.is_file() and _known(p))
        hint = f"pass one of the files in it: {preview(found)}" if found else "pass a data file"
        raise DataSourceError(str(path), "is a directory, not a data file", fix=hint)
    fmt, compression = _file_format(path)
    if path.stat().st_size == 0:
        raise DataSourceError(
            name, "is empty (0 bytes)", fix="check that the file was fully written or exported"
        )
    return _Source(name=name, path=path, fmt=fmt, compression=compression, encoding=encoding)


def _no_query_args(name: str, table: str | None, sql: str | None, what: str) -> None:
    if table is not None or sql is not None:
        given = "table=" if table is not None else "sql="
        raise DataSourceError(
            name,
            f"{given} only applies to database URLs, and the source is {what}",
            fix="drop the table=/sql= argument, or pass a URL such as sqlite:////path/data.db",
        )


def _known(path: Path) -> bool:
    try:
        _file_format(path)
    except DataSourceError:
        return False
    return True


def _file_format(path: Path) -> tuple[str, str | None]:
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in COMPRESSIONS:
        compression = COMPRESSIONS[suffixes.pop()]
    ext = suffixes[-1] if suffixes else ""
    fmt = FORMATS.get(ext)
    if fmt is None or (compression and fmt in ("parquet", "excel")):
        shown = "".join(path.suffixes) or "(none)"
        raise DataSourceError(
            path.name,
            f"unsupported file extension {shown}; supported: {', '.join(FORMATS)} "
            f"(text formats also compressed: {', '.join(COMPRESSIONS)})",
            fix="convert the file to one of these formats, or rename it if its extension is wrong",
        )
    return fmt, compression


def _not_found(path: Path, listed: Any = None) -> SourceNotFoundError:
    """The not-found error, naming similar files in the folder (or, failing that, the files
    there that ``listed`` accepts; data files by default)."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return SourceNotFoundError(
            str(path),
            f"file not found: the folder '{folder}' does not exist",
            fix="check the path (relative paths start from the current directory "
            f"{Path.cwd()})",
        )
    names = []
    for i, entry in enumerate(folder.iterdir()):
        if i >= 5000:  # a huge folder: don't spend seconds on a hint
            break
        if entry.is_file():
            names.append(entry.name)
    wanted = path.name.lower()
    stem = wanted.split(".")[0]
    similar = [n for n in names if n.lower() == wanted or n.lower().split(".")[0] == stem]
    lowered = {n.lower(): n for n in names}
    for match in difflib.get_close_matches(wanted, list(lowered), n=3, cutoff=0.6):
        if lowered[match] not in similar:
            similar.append(lowered[match])
    if similar:
        similar.sort(key=lambda n: -difflib.SequenceMatcher(None, wanted, n.lower()).ratio())
        return SourceNotFoundError(
            str(path),
            f"file not found; similar file(s) in '{folder}': {preview(similar, 5)}",
            fix="check the file name",
        )
    data_files = sorted(n for n in names if (listed or _known)(Path(n)))
    listing = f"; data files there: {preview(data_files)}" if data_files else ""
    return SourceNotFoundError(str(path), f"file not found in '{folder}'{listing}", fix="check the path")


def _resolve_sql(url: str, name: str, table: str | None, sql: str | None) -> _Source:
    import sqlalchemy as sa

    masked = mask_url(url)
    scheme = url.split("://", 1)[0].lower()
    if scheme in _REMOTE_SCHEMES:
        raise DataSourceError(
            masked,
            f"'{scheme}://' addresses are not read directly; only files on disk and "
            "SQLAlchemy database URLs are",
            fix="download the file first and pass its local path",
        )
    if (table is None) == (sql is None):
        problem = "both table= and sql= were given" if table is not None else "neither table= nor sql= was given"
        raise DataSourceError(
            masked,
            f"{problem}; a database source needs exactly one of them",
            fix="pass table='name' (--table name) to read a whole table, or sql='SELECT ...' "
            "(--sql '...') to run a query",
        )
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as e:  # ValueError: e.g. a port that is not a number
        raise DataSourceError(masked, f"is not a valid database URL ({e})", fix=_URL_FORMS) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            db_path = Path(database)
            if not db_path.is_file():
                # sqlite would silently create an empty database here; say what happened instead
                base = _not_found(db_path, _is_sqlite_name) if not db_path.exists() else None
                problem = base.problem if base else "is a directory, not a database file"
                raise SourceNotFoundError(
                    masked,
                    f"SQLite database {database}: {problem}",
                    fix="check the path; sqlite:///relative.db is relative to the current "
                    "directory, sqlite:////absolute/path.db (four slashes) is absolute",
                )
    try:
        engine = sa.create_engine(parsed)
    except sa.exc.NoSuchModuleError:
        raise DataSourceError(
            masked,
            f"unknown database type '{parsed.drivername}'",
            fix=_URL_FORMS,
        ) from None
    except ImportError as e:
        package = e.name or parsed.drivername
        raise MissingDependencyError(package, f"reading from {parsed.get_backend_name()} databases") from None
    src = _Source(name=name, engine=engine, sql=sql)
    if table is not None:
        src.schema, src.table = _split_table(table)
        _check_table(src, masked)
    return src


def _is_sqlite_name(path: Path) -> bool:
    return path.suffix.lower() in (".db", ".sqlite", ".sqlite3", ".db3")


def _split_table(table: str) -> tuple[str | None, str]:
    if "." in table:
        schema, _, name = table.partition(".")
        return schema, name
    return None, table


def _check_table(src: _Source, masked: str) -> None:
    """Raise a helpful error when the table is not in the database."""
    import sqlalchemy as sa

    with _reading(src):
        inspector = sa.inspect(src.engine)
        names = inspector.get_table_names(schema=src.schema) + inspector.get_view_names(schema=src.schema)
    if src.table in names:
        return
    src.engine.dispose()
    where = f"schema '{src.schema}' of {masked}" if src.schema else masked
    if not names:
        raise DataSourceError(
            f"table '{src.table}' in {masked}",
            f"not found: {where} has no tables",
            fix="check the URL points at the right database (for SQLite, sqlite:///relative.db "
            "vs sqlite:////absolute/path.db)",
        )
    guess = closest(src.table, names)
    hint = f"did you mean '{guess}'?" if guess else "use one of the tables listed"
    raise DataSourceError(
        f"table '{src.table}' in {masked}",
        f"not found; the tables in {where} are: {preview(sorted(names), 20)}",
        fix=hint,
    )


# --------------------------------------------------------------------------- readers


def _csv_options(src: _Source) -> dict[str, Any]:
    return {
        "sep": "\t" if src.fmt == "tsv" else ",",
        "encoding": src.encoding or "utf-8",
        "compression": src.compression,
        "low_memory": False,  # one dtype per column over the whole file, no DtypeWarning
    }


def _json_options(src: _Source) -> dict[str, Any]:
    # dtype=False keeps "007" a string and epoch ints in a 'timestamp' column as numbers; pandas
    # 2 also needs convert_dates=False for the latter (pandas 3 deprecates that argument).
    options: dict[str, Any] = {"encoding": src.encoding or "utf-8", "compression": src.compression, "dtype": False}
    if int(pd.__version__.split(".")[0]) < 3:
        options.update(convert_dates=False, keep_default_dates=False)
    return options


def _read_file(src: _Source) -> pd.DataFrame:
    if src.fmt in ("csv", "tsv"):
        return pd.read_csv(src.path, **_csv_options(src))
    if src.fmt == "parquet":
        import pyarrow.parquet as pq

        return _plain_index(pq.read_table(src.path).to_pandas())
    if src.fmt == "jsonl":
        return pd.read_json(src.path, lines=True, **_json_options(src))
    if src.fmt == "json":
        return pd.read_json(src.path, lines=_json_is_lines(src), **_json_options(src))
    return _read_excel(src)


def _read_excel(src: _Source) -> pd.DataFrame:
    with open(src.path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # .xlsx is a zip; old .xls is not
    if is_zip or src.path.suffix.lower() == ".xlsx":
        try:
            import openpyxl  # noqa: F401
        except ImportError:
            raise MissingDependencyError("openpyxl", "reading Excel (.xlsx) files") from None
        return pd.read_excel(src.path, sheet_name=0, engine="openpyxl")
    try:
        return pd.read_excel(src.path, sheet_name=0)
    except ImportError:
        raise MissingDependencyError(
            "xlrd", "reading old-format .xls files (or re-save the file as .xlsx)"
        ) from None


def _json_is_lines(src: _Source) -> bool:
    """A .json file is JSON lines when it holds more than one top-level value."""
    with _open_binary(src) as f:
        head = f.read(1 << 16).lstrip(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"["):
        return False
    text = head.decode(src.encoding or "utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    import json

    try:
        json.loads(lines[0])
    except ValueError:
        return False  # one object spread over several lines
    return True


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Batches of exactly ``chunk_rows`` rows (the last may be shorter), whatever the file's
    row groups are."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    try:
        pending: list[Any] = []
        n_pending = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            pending.append(batch)
            n_pending += batch.num_rows
            while n_pending >= chunk_rows:
                table = pa.Table.from_batches(pending)
                yield _plain_index(table.slice(0, chunk_rows).to_pandas())
                rest = table.slice(chunk_rows)
                pending, n_pending = rest.to_batches(), rest.num_rows
        if n_pending or not parquet.metadata.num_rows:
            table = pa.Table.from_batches(pending, schema=parquet.schema_arrow)
            yield _plain_index(table.to_pandas())
    finally:
        parquet.close()


def _plain_index(df: pd.DataFrame) -> pd.DataFrame:
    """Named index levels stored by pandas become columns again; unnamed ones are dropped."""
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1:
        return df
    named = any(n is not None for n in df.index.names)
    return df.reset_index(drop=not named)


def _read_sql(src: _Source, conn: Any, chunksize: int | None) -> Any:
    if src.table is not None:
        return pd.read_sql_table(src.table, conn, schema=src.schema, chunksize=chunksize)
    return pd.read_sql(src.sql, conn, chunksize=chunksize)


def _finish(df: pd.DataFrame, src: _Source, header_only: bool) -> pd.DataFrame:
    """Check what was read: unique column names and at least one row."""
    df.columns = [str(c) for c in df.columns]
    _check_duplicate_columns(df, src)
    if len(df) == 0:
        if src.engine is not None:
            problem = "returned no rows" if src.sql is not None else "has no rows"
            raise DataSourceError(src.name, problem, fix="check the query's filter, or the table name")
        if header_only and src.fmt in ("csv", "tsv", "excel"):
            raise DataSourceError(
                src.name,
                f"has a header but no rows (columns: {preview(list(df.columns))})",
                fix="export the data again, including its rows",
            )
        raise DataSourceError(src.name, "has no rows", fix="check that the data was fully written")
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0):
        df = df.reset_index(drop=True)
    return df


def _check_duplicate_columns(df: pd.DataFrame, src: _Source) -> None:
    names = list(df.columns)
    duplicates = [n for n, k in Counter(names).items() if k > 1]
    if not duplicates and src.fmt in ("csv", "tsv", "excel"):
        # pandas renames a repeated header 'a' to 'a.1'; read the raw header to tell those
        # apart from a real column named 'a.1'
        present = set(names)
        suspects = [n for n in names if (m := re.fullmatch(r"(.+)\.(\d+)", n)) and m.group(1) in present]
        if suspects:
            duplicates = [n for n, k in Counter(_raw_header(src)).items() if k > 1]
    if duplicates:
        shown = preview([repr(d) for d in duplicates])
        raise DataError(
            f"{src.name}: column name(s) {shown} appear more than once in the header; each "
            "column needs its own name. Fix: rename the repeated columns (e.g. 'x' and 'x_2').",
            column=str(duplicates[0]),
        )


def _raw_header(src: _Source) -> list[str]:
    if src.fmt == "excel":
        raw = pd.read_excel(src.path, sheet_name=0, header=None, nrows=1)
    else:
        options = {**_csv_options(src), "low_memory": True}
        raw = pd.read_csv(src.path, header=None, nrows=1, dtype=str, keep_default_na=False, **options)
    return [str(v) for v in raw.iloc[0].tolist()] if len(raw) else []


# --------------------------------------------------------------------------- error translation


@contextmanager
def _reading(src: _Source) -> Iterator[None]:
    """Turn the many ways pandas, pyarrow and databases fail into our errors."""
    try:
        yield
    except TakeoffError:
        raise
    except UnicodeDecodeError as e:
        raise _encoding_error(src, e) from None
    except LookupError as e:  # an unknown codec name
        raise DataSourceError(
            src.name,
            f"unknown encoding '{src.encoding}' ({e})",
            fix="pass a Python codec name such as utf-8, latin-1 or cp1252",
        ) from None
    except PermissionError:
        raise DataSourceError(src.name, "permission denied", fix="check the file's read permissions") from None
    except pd.errors.EmptyDataError:
        raise DataSourceError(
            src.name, "is empty (no header and no rows)", fix="check that the file was fully written"
        ) from None
    except ImportError as e:
        package = e.name or str(e)
        raise MissingDependencyError(package, f"reading {src.format_name or 'this'} data") from None
    except Exception as e:
        if src.engine is not None:
            raise _database_error(src, e) from None
        if isinstance(e, (ValueError, OSError, EOFError, zipfile.BadZipFile)) or _is_arrow_error(e):
            raise _format_error(src, e) from None
        raise


def _is_arrow_error(e: BaseException) -> bool:
    try:
        import pyarrow as pa
    except ImportError:
        return False
    return isinstance(e, pa.ArrowException)


def _format_error(src: _Source, e: BaseException) -> DataSourceError:
    detail = " ".join(str(e).split())[:300]
    where = ""
    if src.fmt in ("jsonl", "json"):
        line = _first_bad_json_line(src)
        where = f" at line {line}" if line else ""
    if src.fmt in ("csv", "tsv"):
        sep = "tabs" if src.fmt == "tsv" else "commas"
        fix = (
            f"check that fields are separated by {sep} and that quotes are balanced on the line "
            "named; for another separator, rename the file (.tsv for tabs) or re-export it"
        )
    else:
        fix = (
            f"check that the file really is {src.format_name} and was fully written, or give "
            "it the extension of its real format"
        )
    return DataSourceError(src.name, f"cannot be read as {src.format_name}{where}: {detail}", fix=fix)


def _database_error(src: _Source, e: BaseException) -> DataSourceError:
    import sqlalchemy as sa

    if isinstance(e, sa.exc.NoSuchTableError):
        return DataSourceError(src.name, f"table not found ({e})", fix="check the table name")
    # pandas wraps the SQLAlchemy error, which wraps the driver's: show the driver's message
    original: BaseException = e
    seen = e
    while seen is not None:
        if isinstance(seen, sa.exc.DBAPIError) and seen.orig is not None:
            original = seen.orig
            break
        seen = seen.__cause__ or seen.__context__
    detail = " ".join(str(original).split())[:300]
    if isinstance(e, sa.exc.DBAPIError) and getattr(e, "connection_invalidated", False):
        return DataSourceError(src.name, f"lost the connection: {detail}", fix="check the database is up")
    if src.sql is not None:
        return DataSourceError(
            src.name,
            f"the database rejected the query: {detail}",
            fix="correct the SQL (try it in the database's own client first)",
        )
    return DataSourceError(
        src.name,
        f"the database could not be read: {detail}",
        fix="check the URL, the credentials and that the database is running",
    )


def _open_binary(src: _Source) -> Any:
    if src.compression == "gzip":
        return gzip.open(src.path, "rb")
    if src.compression == "bz2":
        return bz2.open(src.path, "rb")
    if src.compression == "xz":
        return lzma.open(src.path, "rb")
    if src.compression == "zip":
        archive = zipfile.ZipFile(src.path)
        return archive.open(archive.namelist()[0])
    return open(src.path, "rb")


def _encoding_error(src: _Source, e: UnicodeDecodeError) -> DataSourceError:
    encoding = src.encoding or "utf-8"
    where = ""
    if src.path is not None:
        try:
            found = _first_bad_byte(src, encoding)
        except Exception:  # the hint is a nicety; never hide the real error behind it
            found = None
        if found:
            offset, line, raw = found
            where = f": byte(s) {raw.hex(' ')} at line {line} (byte offset {offset}) are not valid {encoding}"
    if not where:
        where = f": {e.reason} (byte 0x{e.object[e.start:e.start + 1].hex()})"
    return DataSourceError(src.name, f"is not {encoding} text{where}", fix=_ENCODING_FIX)


def _first_bad_byte(src: _Source, encoding: str) -> tuple[int, int, bytes] | None:
    """Byte offset, line number (from 1) and bytes of the first undecodable sequence."""
    base, newlines, pending = 0, 0, b""
    with _open_binary(src) as f:
        while True:
            block = f.read(1 << 20)
            data = pending + block
            if not data:
                return None
            try:
                data.decode(encoding)
                done, pending = data, b""
            except UnicodeDecodeError as e:
                if block and e.reason == "unexpected end of data" and e.start >= len(data) - 4:
                    done, pending = data[: e.start], data[e.start :]  # split across two blocks
                else:
                    return base + e.start, newlines + data.count(b"\n", 0, e.start) + 1, data[e.start : e.end]
            base += len(done)
            newlines += done.count(b"\n")
            if not block:
                return None


def _first_bad_json_line(src: _Source) -> int | None:
    """The first line of a JSON lines file that does not parse (only when the error happens)."""
    import json

    number = None
    try:
        with _open_binary(src) as f:
            for number, raw in enumerate(f, start=1):
                if raw.strip():
                    json.loads(raw.decode(src.encoding or "utf-8"))
    except (ValueError, UnicodeDecodeError):
        return number
    except Exception:
        return None
    return None
