"""Turning the many ways pandas, pyarrow and databases fail into our errors, each naming the
source, the problem and the fix (the line of a bad byte or a bad JSON line when it can)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

from takeoff.data.sources.files import open_binary
from takeoff.data.sources.source import Source
from takeoff.errors import DataSourceError, MissingDependencyError, TakeoffError

ENCODING_FIX = (
    "re-save the file as UTF-8, or pass its encoding: encoding='latin-1' "
    "(--encoding latin-1 on the command line)"
)


@contextmanager
def reading(src: Source) -> Iterator[None]:
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
            raise database_error(src, e) from None
        if isinstance(e, (ValueError, OSError, EOFError, zipfile.BadZipFile)) or _is_arrow_error(e):
            raise _format_error(src, e) from None
        raise


def _is_arrow_error(e: BaseException) -> bool:
    try:
        import pyarrow as pa
    except ImportError:
        return False
    return isinstance(e, pa.ArrowException)


def _format_error(src: Source, e: BaseException) -> DataSourceError:
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


def database_error(src: Source, e: BaseException) -> DataSourceError:
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


def _encoding_error(src: Source, e: UnicodeDecodeError) -> DataSourceError:
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
    return DataSourceError(src.name, f"is not {encoding} text{where}", fix=ENCODING_FIX)


def _first_bad_byte(src: Source, encoding: str) -> tuple[int, int, bytes] | None:
    """Byte offset, line number (from 1) and bytes of the first undecodable sequence."""
    base, newlines, pending = 0, 0, b""
    with open_binary(src) as f:
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


def _first_bad_json_line(src: Source) -> int | None:
    """The first line of a JSON lines file that does not parse (only when the error happens)."""
    import json

    number = None
    try:
        with open_binary(src) as f:
            for number, raw in enumerate(f, start=1):
                if raw.strip():
                    json.loads(raw.decode(src.encoding or "utf-8"))
    except (ValueError, UnicodeDecodeError):
        return number
    except Exception:
        return None
    return None
