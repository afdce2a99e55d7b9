"""Files on disk: the format from the extension, "not found" with similar names, and the
readers of CSV/TSV, Parquet, JSON (lines) and Excel."""

from __future__ import annotations

import bz2
import codecs
import difflib
import gzip
import lzma
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from takeoff.data.sources.source import COMPRESSIONS, FORMATS, Source
from takeoff.errors import DataSourceError, MissingDependencyError, SourceNotFoundError, preview


def known(path: Path) -> bool:
    try:
        file_format(path)
    except DataSourceError:
        return False
    return True


def file_format(path: Path) -> tuple[str, str | None]:
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


def not_found(path: Path, listed: Any = None) -> SourceNotFoundError:
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
    data_files = sorted(n for n in names if (listed or known)(Path(n)))
    listing = f"; data files there: {preview(data_files)}" if data_files else ""
    return SourceNotFoundError(str(path), f"file not found in '{folder}'{listing}", fix="check the path")


def csv_options(src: Source) -> dict[str, Any]:
    from takeoff.data.sources.sniff import options

    return {
        **options(src),  # delimiter, decimal mark, quotes: given or sniffed
        "encoding": src.encoding or "utf-8",
        "compression": src.compression,
        "low_memory": False,  # one dtype per column over the whole file, no DtypeWarning
    }


def json_options(src: Source) -> dict[str, Any]:
    # dtype=False keeps "007" a string and epoch ints in a 'timestamp' column as numbers; pandas
    # 2 also needs convert_dates=False for the latter (pandas 3 deprecates that argument).
    options: dict[str, Any] = {"encoding": src.encoding or "utf-8", "compression": src.compression, "dtype": False}
    if int(pd.__version__.split(".")[0]) < 3:
        options.update(convert_dates=False, keep_default_dates=False)
    return options


def read_file(src: Source) -> pd.DataFrame:
    if src.fmt in ("csv", "tsv"):
        return pd.read_csv(src.path, **csv_options(src))
    if src.fmt == "parquet":
        import pyarrow.parquet as pq

        return plain_index(pq.read_table(src.path).to_pandas())
    if src.fmt == "jsonl":
        return pd.read_json(src.path, lines=True, **json_options(src))
    if src.fmt == "json":
        return pd.read_json(src.path, lines=json_is_lines(src), **json_options(src))
    return _read_excel(src)


def _read_excel(src: Source) -> pd.DataFrame:
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


def json_is_lines(src: Source) -> bool:
    """A .json file is JSON lines when it holds more than one top-level value."""
    with open_binary(src) as f:
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


def parquet_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
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
                yield plain_index(table.slice(0, chunk_rows).to_pandas())
                rest = table.slice(chunk_rows)
                pending, n_pending = rest.to_batches(), rest.num_rows
        if n_pending or not parquet.metadata.num_rows:
            table = pa.Table.from_batches(pending, schema=parquet.schema_arrow)
            yield plain_index(table.to_pandas())
    finally:
        parquet.close()


def plain_index(df: pd.DataFrame) -> pd.DataFrame:
    """Named index levels stored by pandas become columns again; unnamed ones are dropped."""
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1:
        return df
    named = any(n is not None for n in df.index.names)
    return df.reset_index(drop=not named)


def open_binary(src: Source) -> Any:
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
