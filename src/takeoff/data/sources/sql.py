"""Databases through SQLAlchemy URLs: checking the URL and the table before reading, and
reading a table or a query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from takeoff.data.sources.failures import reading
from takeoff.data.sources.files import not_found
from takeoff.data.sources.source import Source, mask_url
from takeoff.errors import DataSourceError, MissingDependencyError, SourceNotFoundError, closest, preview

REMOTE_SCHEMES = ("http", "https", "s3", "gs", "gcs", "az", "abfs", "ftp", "file", "hdfs")
URL_FORMS = (
    "use a SQLAlchemy URL such as sqlite:////absolute/path/data.db, sqlite:///relative.db or "
    "postgresql://user:password@host:5432/dbname"
)


def resolve_sql(url: str, name: str, table: str | None, sql: str | None) -> Source:
    import sqlalchemy as sa

    masked = mask_url(url)
    scheme = url.split("://", 1)[0].lower()
    if scheme in REMOTE_SCHEMES:
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
        raise DataSourceError(masked, f"is not a valid database URL ({e})", fix=URL_FORMS) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            db_path = Path(database)
            if not db_path.is_file():
                # sqlite would silently create an empty database here; say what happened instead
                base = not_found(db_path, _is_sqlite_name) if not db_path.exists() else None
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
            fix=URL_FORMS,
        ) from None
    except ImportError as e:
        package = e.name or parsed.drivername
        raise MissingDependencyError(package, f"reading from {parsed.get_backend_name()} databases") from None
    src = Source(name=name, engine=engine, sql=sql)
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


def _check_table(src: Source, masked: str) -> None:
    """Raise a helpful error when the table is not in the database."""
    import sqlalchemy as sa

    with reading(src):
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


def read_sql(src: Source, conn: Any, chunksize: int | None) -> Any:
    if src.table is not None:
        return pd.read_sql_table(src.table, conn, schema=src.schema, chunksize=chunksize)
    return pd.read_sql(src.sql, conn, chunksize=chunksize)
