"""Reading tables from files, SQLite and DataFrames; writing prediction tables atomically."""

from __future__ import annotations

import gzip
import os
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from takeoff.data.sources import iter_chunks, read_table, source_name
from takeoff.data.writer import TableWriter
from takeoff.errors import DataError, DataSourceError, MissingDependencyError, SourceNotFoundError



@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 27, 60],
            "income": [1200.5, np.nan, 830.0, 2100.25],
            "city": ["Lyon", "Oslo", None, "Kyoto, JP"],
            "code": ["007", "010", "123", "999"],  # must stay text, not become 7, 10, ...
        }
    )


def _write(df: pd.DataFrame, path) -> None:
    name = str(path).lower()
    if name.endswith((".csv", ".csv.gz")):
        df.to_csv(path, index=False)
    elif name.endswith((".tsv", ".tab")):
        df.to_csv(path, sep="\t", index=False)
    elif name.endswith((".parquet", ".pq")):
        df.to_parquet(path, index=False)
    elif name.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
        df.to_json(path, orient="records", lines=True)
    elif name.endswith(".json"):
        df.to_json(path, orient="records")
    elif name.endswith(".xlsx"):
        df.to_excel(path, index=False)
    else:
        raise AssertionError(name)


def _expected(df: pd.DataFrame, name: str) -> pd.DataFrame:
    # text formats cannot tell "007" from 7 unless quoted: CSV/TSV/Excel read it as a number
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tab", ".xlsx")):
        return df.assign(code=df["code"].astype(int))
    return df


FILES = ["t.csv", "t.TSV", "t.tab", "t.parquet", "t.pq", "t.jsonl", "t.ndjson", "t.json", "t.xlsx", "t.csv.gz", "t.jsonl.gz"]


@pytest.mark.parametrize("name", FILES)
def test_every_format_round_trips(tmp_path, frame, name):
    path = tmp_path / name
    _write(frame, path)
    got = read_table(path)
    expected = _expected(frame, name.lower())
    assert list(got.columns) == list(expected.columns)
    assert got["age"].tolist() == expected["age"].tolist()
    np.testing.assert_allclose(got["income"].to_numpy(dtype=float), expected["income"].to_numpy(dtype=float))
    assert got["city"].isna().tolist() == [False, False, True, False]
    assert got["city"].dropna().tolist() == ["Lyon", "Oslo", "Kyoto, JP"]
    assert got["code"].tolist() == expected["code"].tolist()
    assert isinstance(got.index, pd.RangeIndex) and got.index.start == 0


def test_read_as_string_path_and_json_lines_under_json_extension(tmp_path, frame):
    path = tmp_path / "lines.json"
    frame.assign(timestamp=1_500_000_000).to_json(path, orient="records", lines=True)
    got = read_table(str(path))
    assert got.shape == (4, 5) and got["code"].tolist() == ["007", "010", "123", "999"]
    assert got["timestamp"].dtype == np.int64  # epoch numbers are not turned into dates
    assert sum(len(c) for c in iter_chunks(path, chunk_rows=3)) == 4  # streamed as lines


def test_utf8_bom_and_latin1_with_encoding(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffname,n\nZoë,1\n".encode())
    assert read_table(bom).columns.tolist() == ["name", "n"]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name,n\nZoë,1\n".encode("latin-1"))
    assert read_table(latin, encoding="latin-1")["name"].tolist() == ["Zoë"]


def test_dataframe_is_copied(frame):
    got = read_table(frame)
    got.loc[0, "age"] = -1
    assert frame.loc[0, "age"] == 31
    assert source_name(frame) == "DataFrame"


def test_real_dataset(datasets):
    df = read_table(datasets / "credit_risk.csv")
    assert df.shape == (4454, 14) and "Status" in df.columns


# --------------------------------------------------------------------------- chunked reading


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    n = 250_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": np.arange(n), "x": rng.random(n), "g": rng.choice(["a", "b", "c"], n)})
    df.to_csv(folder / "big.csv", index=False)
    # several small row groups, so chunks must be assembled across row-group boundaries
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), folder / "big.parquet", row_group_size=30_000)
    df.to_json(folder / "big.jsonl", orient="records", lines=True)
    return folder, df


@pytest.mark.parametrize("name", ["big.csv", "big.parquet"])
def test_chunks_have_requested_size_and_continuous_index(big, name):
    folder, df = big
    chunks = list(iter_chunks(folder / name, chunk_rows=100_000))
    assert [len(c) for c in chunks] == [100_000, 100_000, 50_000]
    assert chunks[1].index[0] == 100_000 and chunks[2].index[-1] == 249_999
    whole = pd.concat(chunks)
    assert whole.index.equals(pd.RangeIndex(250_000))
    assert whole["id"].tolist() == df["id"].tolist()
    np.testing.assert_array_equal(whole["x"].to_numpy(), df["x"].to_numpy())


def test_json_lines_chunks(big):
    folder, _ = big
    chunks = list(iter_chunks(folder / "big.jsonl", chunk_rows=120_000))
    assert [len(c) for c in chunks] == [120_000, 120_000, 10_000]
    assert chunks[2].index[0] == 240_000


def test_excel_and_dataframe_come_as_one_chunk(tmp_path, frame):
    frame.to_excel(tmp_path / "f.xlsx", index=False)
    assert [len(c) for c in iter_chunks(tmp_path / "f.xlsx", chunk_rows=2)] == [4]
    chunks = list(iter_chunks(frame, chunk_rows=2))
    assert len(chunks) == 1 and chunks[0] is not frame and chunks[0].equals(frame)


def test_chunked_errors_match_read_table(tmp_path):
    with pytest.raises(SourceNotFoundError):
        iter_chunks(tmp_path / "nope.csv")  # raised at the call, before iterating
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(DataSourceError, match="has a header but no rows"):
        list(iter_chunks(tmp_path / "h.csv"))
    bad = tmp_path / "late.csv"
    bad.write_bytes(b"a,b\n" + b"1,ok\n" * 5000 + b"2,caf\xe9\n")
    with pytest.raises(DataSourceError, match="line 5002"):
        list(iter_chunks(bad, chunk_rows=1000))
    with pytest.raises(DataSourceError, match="chunk_rows"):
        iter_chunks(tmp_path / "h.csv", chunk_rows=0)


# --------------------------------------------------------------------------- SQL


@pytest.fixture
def sqlite_url(tmp_path):
    path = tmp_path / "bank.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    loans = pd.DataFrame({"id": range(1, 8), "amount": [100.0, 250.5, 80.0, 1200.0, 40.0, 75.0, 300.0], "status": list("gbggbgg")})
    with engine.begin() as conn:
        loans.to_sql("loans", conn, index=False)
        pd.DataFrame({"id": [1]}).to_sql("customers", conn, index=False)
    engine.dispose()
    return f"sqlite:///{path}"  # an absolute path: sqlite://// + tmp


def test_sql_table_and_query(sqlite_url):
    df = read_table(sqlite_url, table="loans")
    assert df.shape == (7, 3) and df["amount"].sum() == pytest.approx(2045.5)
    q = read_table(sqlite_url, sql="SELECT id, amount FROM loans WHERE status = 'b' ORDER BY id")
    assert q["id"].tolist() == [2, 5]


def test_sql_chunks(sqlite_url):
    chunks = list(iter_chunks(sqlite_url, table="loans", chunk_rows=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert pd.concat(chunks).index.equals(pd.RangeIndex(7))
    chunks = list(iter_chunks(sqlite_url, sql="SELECT * FROM loans", chunk_rows=5))
    assert [c.index[0] for c in chunks] == [0, 5]


def test_sql_table_not_found_lists_tables_and_suggests(sqlite_url):
    with pytest.raises(DataSourceError) as info:
        read_table(sqlite_url, table="loan")
    message = str(info.value)
    assert "'loan'" in message and "customers, loans" in message and "did you mean 'loans'" in message


def test_sql_syntax_error_shows_database_message(sqlite_url):
    with pytest.raises(DataSourceError, match=r"rejected the query: near \"SELEC\": syntax error"):
        read_table(sqlite_url, sql="SELEC * FROM loans")
    with pytest.raises(DataSourceError, match="no such table: payments"):
        read_table(sqlite_url, sql="SELECT * FROM payments")


def test_sql_needs_exactly_one_of_table_and_sql(sqlite_url, datasets):
    with pytest.raises(DataSourceError, match="neither table= nor sql="):
        read_table(sqlite_url)
    with pytest.raises(DataSourceError, match="both table= and sql="):
        read_table(sqlite_url, table="loans", sql="SELECT 1")
    with pytest.raises(DataSourceError, match="only applies to database URLs"):
        read_table(datasets / "credit_risk.csv", table="loans")


def test_sql_bad_urls(tmp_path, sqlite_url):
    with pytest.raises(DataSourceError, match="unknown database type 'nosuchdb'"):
        read_table("nosuchdb://host/x", table="t")
    with pytest.raises(DataSourceError, match="not a valid database URL"):
        read_table("sqlite://:bad:port/x", table="t")
    # sqlite would quietly create an empty database: we say the file is missing instead
    with pytest.raises(SourceNotFoundError, match="similar file.*bank.db"):
        read_table(sqlite_url.replace("bank.db", "bnak.db"), table="loans")
    assert not (tmp_path / "bnak.db").exists()
    with pytest.raises(DataSourceError, match="returned no rows"):
        read_table(sqlite_url, sql="SELECT * FROM loans WHERE amount < 0")


def test_source_name_masks_password():
    name = source_name("postgresql://ann:s3cret@db.example.com/prod", table="loans")
    assert name == "table 'loans' in postgresql://ann:***@db.example.com/prod"
    assert "s3cret" not in source_name("postgresql://ann:s3cret@db/x", sql="SELECT 1")
    assert source_name("/data/train.csv") == "train.csv"


# --------------------------------------------------------------------------- file errors


def test_missing_file_suggests_similar_names(tmp_path):
    (tmp_path / "train.csv").write_text("a\n1\n")
    with pytest.raises(SourceNotFoundError, match=r"similar file\(s\).*train\.csv") as info:
        read_table(tmp_path / "trian.csv")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(SourceNotFoundError, match="train.csv"):
        read_table(tmp_path / "train.parquet")  # same name, other extension
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        read_table(tmp_path / "no_folder" / "train.csv")


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(DataSourceError, match="is a directory.*a.csv"):
        read_table(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(DataSourceError, match="is empty"):
        read_table(tmp_path / "e.csv")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(DataSourceError, match="is empty"):
        read_table(tmp_path / "blank.csv")


def test_header_only(tmp_path):
    (tmp_path / "h.csv").write_text("age,income\n")
    with pytest.raises(DataSourceError, match="has a header but no rows.*age, income"):
        read_table(tmp_path / "h.csv")
    pd.DataFrame({"a": [1]}).iloc[:0].to_parquet(tmp_path / "none.parquet")
    with pytest.raises(DataSourceError, match="has no rows"):
        read_table(tmp_path / "none.parquet")
    with pytest.raises(DataSourceError, match="has no rows"):
        read_table(pd.DataFrame({"a": []}))


def test_non_utf8_names_line_offset_and_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"name,n\nAnn,1\nZo\xeb,2\n")
    with pytest.raises(DataSourceError) as info:
        read_table(path)
    message = str(info.value)
    assert "latin.csv" in message and "line 3" in message and "byte offset 15" in message
    assert "eb" in message and "re-save the file as UTF-8" in message and "--encoding latin-1" in message
    gz = tmp_path / "latin.csv.gz"
    gz.write_bytes(gzip.compress(b"name,n\nZo\xeb,2\n"))
    with pytest.raises(DataSourceError, match="line 2"):
        read_table(gz)
    with pytest.raises(DataSourceError, match="unknown encoding 'latn1'"):
        read_table(path, encoding="latn1")


def test_unsupported_extension_lists_supported(tmp_path):
    (tmp_path / "data.txt").write_text("a\n1\n")
    with pytest.raises(DataSourceError, match=r"unsupported file extension \.txt; supported: \.csv, \.tsv"):
        read_table(tmp_path / "data.txt")


def test_duplicate_header_names(tmp_path):
    (tmp_path / "d.csv").write_text("id,amount,amount,note,note\n1,2,3,x,y\n")
    with pytest.raises(DataError, match="'amount', 'note' appear more than once") as info:
        read_table(tmp_path / "d.csv")
    assert info.value.column == "amount"
    with pytest.raises(DataError, match="appear more than once"):
        list(iter_chunks(tmp_path / "d.csv"))
    # a real column named like pandas' renaming of a duplicate is fine
    (tmp_path / "ok.csv").write_text("a,a.1\n1,2\n")
    assert read_table(tmp_path / "ok.csv").columns.tolist() == ["a", "a.1"]


def test_malformed_files(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(DataSourceError, match="cannot be read as CSV.*line 3"):
        read_table(tmp_path / "bad.csv")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    with pytest.raises(DataSourceError, match="JSON lines at line 3"):
        read_table(tmp_path / "bad.jsonl")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataSourceError, match="cannot be read as Parquet"):
        read_table(tmp_path / "bad.parquet")


def test_excel_without_openpyxl(tmp_path, frame, monkeypatch):
    frame.to_excel(tmp_path / "f.xlsx", index=False)
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # makes `import openpyxl` fail
    with pytest.raises(MissingDependencyError, match="openpyxl") as info:
        read_table(tmp_path / "f.xlsx")
    assert isinstance(info.value, ImportError)


def test_old_xls_without_xlrd(tmp_path, monkeypatch):
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)  # the OLE2 signature of .xls
    monkeypatch.setitem(sys.modules, "xlrd", None)
    with pytest.raises(MissingDependencyError, match="xlrd.*re-save the file as .xlsx|re-save.*xlrd"):
        read_table(path)


def test_dataframe_column_names_become_strings_and_must_be_unique():
    got = read_table(pd.DataFrame({0: [1, 2], "b": [3, 4]}))
    assert got.columns.tolist() == ["0", "b"]
    with pytest.raises(DataError, match="'x' appear more than once"):
        read_table(pd.DataFrame([[1, 2]], columns=["x", "x"]))


# --------------------------------------------------------------------------- TableWriter


@pytest.mark.parametrize("name", ["out.csv", "out.tsv", "out.parquet", "out.pq"])
def test_writer_round_trip_in_chunks(tmp_path, name):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"row": np.arange(25_000), "p": rng.random(25_000), "label": rng.choice(["good", "bad"], 25_000)})
    path = tmp_path / name
    with TableWriter(path) as out:
        for start in range(0, len(df), 10_000):
            out.write(df.iloc[start : start + 10_000])
    assert out.rows_written == 25_000
    got = read_table(path)
    assert got["row"].tolist() == df["row"].tolist()
    np.testing.assert_array_equal(got["p"].to_numpy(), df["p"].to_numpy())  # floats exact
    assert got["label"].tolist() == df["label"].tolist()
    assert sorted(os.listdir(tmp_path)) == [name]  # no temp file left
    if name.endswith(".tsv"):
        assert "\t" in path.read_text().splitlines()[0]


def test_writer_exception_leaves_nothing_and_keeps_existing(tmp_path):
    fresh = tmp_path / "fresh.csv"
    with pytest.raises(RuntimeError, match="boom"):
        with TableWriter(fresh) as out:
            out.write(pd.DataFrame({"a": [1, 2]}))
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    existing = tmp_path / "old.parquet"
    pd.DataFrame({"kept": [1, 2, 3]}).to_parquet(existing)
    with pytest.raises(RuntimeError):
        with TableWriter(existing) as out:
            out.write(pd.DataFrame({"new": [9]}))
            raise RuntimeError("half way")
    assert read_table(existing)["kept"].tolist() == [1, 2, 3]
    assert os.listdir(tmp_path) == ["old.parquet"]


def test_writer_mismatched_chunks_fail_cleanly(tmp_path):
    with pytest.raises(DataError, match="first chunk had a, b"):
        with TableWriter(tmp_path / "p.csv") as out:
            out.write(pd.DataFrame({"a": [1], "b": [2]}))
            out.write(pd.DataFrame({"a": [1], "c": [2]}))
    assert os.listdir(tmp_path) == []
    with TableWriter(tmp_path / "p.parquet") as out:  # int then float with a gap: cast
        out.write(pd.DataFrame({"a": [1.0, 2.0]}))
        out.write(pd.DataFrame({"a": [3, 4]}))
    assert read_table(tmp_path / "p.parquet")["a"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_writer_rejects_unknown_extension_and_a_file_as_folder(tmp_path):
    with pytest.raises(DataSourceError, match=r"'\.xlsx'; supported: \.csv, \.tsv, \.parquet, \.pq"):
        TableWriter(tmp_path / "out.xlsx")
    (tmp_path / "plain").write_text("a file")
    with pytest.raises(DataSourceError, match="'.*plain' is a file, not a folder"):
        with TableWriter(tmp_path / "plain" / "out.csv"):
            pass


def test_writer_creates_a_missing_folder(tmp_path):
    with TableWriter(tmp_path / "new" / "deeper" / "out.csv") as out:
        out.write(pd.DataFrame({"a": [1, 2]}))
    assert read_table(tmp_path / "new" / "deeper" / "out.csv")["a"].tolist() == [1, 2]
