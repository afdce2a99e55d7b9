"""Writing tables chunk by chunk (CSV, TSV, Parquet), atomically: the output appears only
when complete. A writer killed half-way leaves a hidden ``.NAME.<pid>-<hash>.tmp``; the next
write of the same file removes it once its process is gone."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from takeoff.errors import DataError, DataSourceError, preview

log = logging.getLogger("takeoff")

WRITE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
STALE_SECONDS = 24 * 3600  # a temporary without a process id (older takeoff) is stale after this


class TableWriter:
    """Write a table chunk by chunk to CSV, TSV or Parquet, atomically.

    Rows go to a temporary file in the same folder (created when missing), renamed over
    ``path`` only when the ``with`` block ends without an exception; otherwise the temporary
    file is removed and any existing file at ``path`` is left as it was. Temporaries of
    ``path`` left by a killed writer (whose process is gone) are removed first. The first chunk fixes the columns and types;
    later chunks must have the same columns (types are cast to the first chunk's).

    Args:
        path: the output file; its extension picks the format (.csv, .tsv, .parquet, .pq).

    Raises:
        DataSourceError: unsupported extension, a folder that cannot be created, or ``path``
            is a directory.
        DataError: a later chunk has other columns, or types that do not convert.

    Example:
        >>> with TableWriter("predictions.parquet") as out:
        ...     for chunk in iter_chunks("big.csv"):
        ...         out.write(predict(chunk))
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in WRITE_FORMATS:
            raise DataSourceError(
                str(self.path),
                f"cannot write files with extension '{ext or '(none)'}'; supported: "
                f"{', '.join(WRITE_FORMATS)}",
                fix="name the output file with one of these extensions",
            )
        self.fmt = WRITE_FORMATS[ext]
        self.rows_written = 0
        self._tmp: Path | None = None
        self._writer: Any = None
        self._schema: Any = None

    def __enter__(self) -> TableWriter:
        folder = self.path.parent if str(self.path.parent) else Path(".")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise DataSourceError(str(self.path), f"'{folder}' is a file, not a folder",
                                  fix="choose another output path") from None
        except PermissionError:
            raise DataSourceError(str(self.path), f"cannot create the folder '{folder}' (permission denied)",
                                  fix="choose an output path you can write to") from None
        if self.path.is_dir():
            raise DataSourceError(str(self.path), "is a directory", fix="give a file name, e.g. predictions.csv")
        remove_stale_temporaries(self.path)
        self._tmp = folder / f".{self.path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
        # created here (not by mkstemp) so the final file gets the usual umask permissions
        os.close(os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        return self

    def write(self, df: pd.DataFrame) -> None:
        """Append the rows of ``df`` (its index is not written)."""
        import pyarrow as pa

        if self._tmp is None:
            raise RuntimeError("TableWriter.write() is only valid inside a `with TableWriter(...)` block")
        df = df.copy(deep=False)
        df.columns = [str(c) for c in df.columns]
        table = pa.Table.from_pandas(df, preserve_index=False)
        if self._writer is None:
            self._open(table.schema)
        table = self._conform(table)
        self._writer.write_table(table)
        self.rows_written += table.num_rows

    def _open(self, schema: Any) -> None:
        import pyarrow as pa

        # an all-missing first chunk has type null: write it as text so later values fit
        fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in schema]
        self._schema = pa.schema(fields, metadata=schema.metadata)
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(str(self._tmp), self._schema)
        else:
            import pyarrow.csv as pcsv

            options = pcsv.WriteOptions(delimiter="\t" if self.fmt == "tsv" else ",")
            self._writer = pcsv.CSVWriter(str(self._tmp), self._schema, write_options=options)

    def _conform(self, table: Any) -> Any:
        if table.schema.equals(self._schema, check_metadata=False):
            return table
        expected = self._schema.names
        if table.schema.names != expected:
            raise DataError(
                f"{self.path.name}: a chunk has columns {preview(table.schema.names)} but the "
                f"first chunk had {preview(expected)}. Fix: give every chunk the same columns "
                "in the same order.",
            )
        columns = []
        for field, column in zip(self._schema, table.columns):
            if column.type != field.type:
                try:
                    column = column.cast(field.type)
                except Exception:
                    raise DataError(
                        f"{self.path.name}: column '{field.name}' was {field.type} in the first "
                        f"chunk but is {column.type} in a later one, and does not convert. Fix: "
                        "give the column one type in every chunk.",
                        column=field.name,
                    ) from None
            columns.append(column)
        import pyarrow as pa

        return pa.Table.from_arrays(columns, schema=self._schema)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        tmp, writer = self._tmp, self._writer
        self._tmp = self._writer = None
        try:
            if writer is not None:
                writer.close()
            if exc_type is None:
                if writer is None and self.fmt == "parquet":  # nothing written: an empty table
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    pq.write_table(pa.table({}), str(tmp))
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)  # the rename must never expose a half-written file
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
                tmp = None
        finally:
            if tmp is not None and tmp.exists():
                tmp.unlink()
        return False


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` whose writer was killed: those naming a process that
    no longer runs (without a process id, or on Windows: those older than
    :data:`STALE_SECONDS`); the ones removed. A writer still running keeps its file."""
    folder = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:(\d+)-)?[0-9a-f]+\.tmp")
    removed = []
    for candidate in folder.glob(f".{glob_escape(path.name)}.*.tmp"):
        found = pattern.fullmatch(candidate.name)
        if found is None:
            continue
        try:
            if found.group(1) is not None and os.name != "nt":
                stale = not _running(int(found.group(1)))
            else:  # no process id to ask (or Windows, where os.kill(pid, 0) would signal it): its age
                stale = time.time() - candidate.stat().st_mtime > STALE_SECONDS
            if stale:
                candidate.unlink()
                removed.append(candidate)
        except OSError:  # gone already, or not ours to remove
            continue
    if removed:
        log.info("removed %d unfinished temporary file(s) of %s left by an interrupted write: %s", len(removed),
                 path.name, preview([p.name for p in removed], 3))
    return removed


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return True
    return True
