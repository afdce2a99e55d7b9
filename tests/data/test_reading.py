"""Data as people have it: a European CSV (';' and decimal commas) sniffed or told with
--sep/--decimal, a numeric target with placeholder cells, an ID-like target, a renamed column at
predict time, an output folder that does not exist yet, and the temporaries of a killed write."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app
from takeoff.data.sources import iter_chunks, read_table
from takeoff.data.writer import TableWriter, remove_stale_temporaries
from takeoff.errors import DataSourceError, SchemaMismatchError, TargetError


def _european(df: pd.DataFrame, path, sep=";") -> None:
    """``df`` written as a German spreadsheet exports it: ';' between fields, ',' as the decimal mark."""
    df.to_csv(path, sep=sep, decimal=",", index=False)


@pytest.fixture(scope="module")
def credit600(credit) -> pd.DataFrame:
    return credit.head(600)


@pytest.fixture(scope="module")
def diamonds600(datasets) -> pd.DataFrame:
    return pd.read_csv(datasets / "diamonds.csv", nrows=600)


@pytest.fixture(scope="module")
def bundle(credit600, tmp_path_factory):
    out = tmp_path_factory.mktemp("reading") / "bundle"
    takeoff.train(credit600, target="Status", family="lightgbm", time_budget=5, seed=0, out=out)
    return out


def test_a_european_csv_is_sniffed_and_said_in_one_line(diamonds600, tmp_path, caplog):
    path = tmp_path / "diamonds_de.csv"
    _european(diamonds600, path)
    assert "0,23;Ideal" in path.read_text()  # what the file holds
    caplog.set_level(logging.INFO, logger="takeoff")
    df = read_table(path)
    pd.testing.assert_frame_equal(df, diamonds600, check_dtype=False)
    said = [r.getMessage() for r in caplog.records if "detected" in r.getMessage()]
    assert said == ["diamonds_de.csv: read with sep ';', decimal mark ',' (detected from its first lines; "
                    "--sep and --decimal choose)"]
    # a plain CSV says nothing
    caplog.clear()
    diamonds600.to_csv(tmp_path / "plain.csv", index=False)
    read_table(tmp_path / "plain.csv")
    assert not [r for r in caplog.records if "detected" in r.getMessage()]


def test_pipes_tabs_quotes_and_thousands_are_sniffed(tmp_path):
    (tmp_path / "pipes.csv").write_text("id|name|amount\n1|Anna|1.234,50\n2|Bob|17,25\n3|'O|Neil'|3,00\n")
    df = read_table(tmp_path / "pipes.csv")
    assert df["amount"].tolist() == [1234.5, 17.25, 3.0]
    assert df["name"].tolist()[:2] == ["Anna", "Bob"]
    (tmp_path / "tabs.csv").write_text('a\tb\n"x, y"\t1,5\n"z"\t2,5\n')
    assert read_table(tmp_path / "tabs.csv")["b"].tolist() == [1.5, 2.5]


def test_sep_and_decimal_can_be_told(diamonds600, tmp_path):
    path = tmp_path / "told.csv"
    _european(diamonds600, path)
    told = read_table(path, sep=";", decimal=",")
    assert told["carat"].dtype.kind == "f" and told["carat"].iloc[0] == 0.23
    # told wrongly, the user gets what they asked for: one column
    assert read_table(path, sep=",", decimal=".").shape[1] < diamonds600.shape[1]
    chunks = list(iter_chunks(path, sep="semicolon", decimal=",", chunk_rows=250))
    assert [len(c) for c in chunks] == [250, 250, 100] and chunks[0]["price"].dtype.kind in "if"
    with pytest.raises(DataSourceError, match="sep and decimal are both ','"):
        read_table(path, sep=",", decimal=",")
    with pytest.raises(DataSourceError, match=r"sep=';;' is not one character"):
        read_table(path, sep=";;")


def test_cli_train_predict_evaluate_inspect_read_a_european_csv(credit600, bundle, tmp_path):
    path = tmp_path / "credit_de.csv"
    _european(credit600, path)
    runner = CliRunner()
    inspected = runner.invoke(app, ["inspect", str(path), "--target", "Status", "--json", "--sep", ";", "--decimal", ","])
    assert inspected.exit_code == 0, inspected.output
    assert len(json.loads(inspected.stdout)["columns"]) == credit600.shape[1] - 1
    out = tmp_path / "new" / "folder" / "predictions.csv"  # the folder does not exist yet
    predicted = runner.invoke(app, ["predict", str(bundle), str(path), "-o", str(out), "--sep", ";", "--decimal", ","])
    assert predicted.exit_code == 0, predicted.output
    assert len(pd.read_csv(out)) == 600
    evaluated = runner.invoke(app, ["evaluate", str(bundle), str(path), "--json"])  # sniffed
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["metrics"]["roc_auc"] > 0.8


def test_a_numeric_target_with_placeholders_drops_those_rows(diamonds600, tmp_path, caplog):
    df = diamonds600.astype({"price": object})
    df.loc[[5, 77, 300], "price"] = "?"
    df.loc[[10], "price"] = "-"
    path = tmp_path / "prices.csv"
    df.to_csv(path, index=False)
    caplog.set_level(logging.WARNING, logger="takeoff")
    model = takeoff.train(str(path), target="price", family="linear", time_budget=10, seed=0)
    assert model.task.kind == "regression"
    assert model.manifest["training"]["rows_dropped"] == 4
    said = [r.getMessage() for r in caplog.records if "not a number" in r.getMessage()]
    assert said == ["target 'price': 4 row(s) hold a value that is not a number: '?' (3 rows), '-' (1 row); "
                    "they are treated as missing and dropped"]
    # evaluating on the same file leaves those rows out the same way
    assert model.evaluate(str(path))["rmse"] > 0
    assert any("4 row(s) of prices.csv hold a value that is not a number (-, ?)" in r.getMessage() for r in caplog.records)


def test_an_id_like_target_is_named_in_one_sentence(credit600, tmp_path):
    df = credit600.assign(customer=[f"C{100_000 + 7 * i}" for i in range(len(credit600))])
    with pytest.raises(TargetError) as caught:
        takeoff.train(df, target="customer", time_budget=5)
    message = str(caught.value)
    assert message == ("target 'customer' in DataFrame looks like an ID (a different value on every row), so there "
                       "is nothing to learn. Fix: pass the column to predict with --target.")
    counter = credit600.assign(row=range(1, len(credit600) + 1))
    with pytest.raises(TargetError, match="target 'row' in DataFrame looks like an ID"):
        takeoff.train(counter, target="row", time_budget=5)


def test_predict_with_a_renamed_column_suggests_the_closest(credit600, bundle, tmp_path):
    model = takeoff.load(bundle)
    renamed = credit600.rename(columns={"Income": "income_eur", "Seniority": "Senority"})
    with pytest.raises(SchemaMismatchError) as caught:
        model.predict(renamed)
    message = str(caught.value)
    assert "Did you mean 'Senority' for 'Seniority'" in message
    assert "Fix: rename 'Senority' to 'Seniority'" in message
    assert caught.value.suggestions["Seniority"] == "Senority"
    path = tmp_path / "renamed.csv"
    renamed.to_csv(path, index=False)
    result = CliRunner().invoke(app, ["predict", str(bundle), str(path), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code != 0 and "Did you mean 'Senority' for 'Seniority'" in " ".join(result.output.split())


def test_a_killed_write_leaves_a_hidden_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "predictions.csv"
    # a real writer process killed half-way (os._exit: no cleanup runs, as with SIGKILL)
    script = textwrap.dedent(f"""
        import os, pandas as pd
        from takeoff.data.writer import TableWriter
        writer = TableWriter({str(target)!r}).__enter__()
        writer.write(pd.DataFrame({{"p": range(1000)}}))
        os._exit(9)
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert killed.returncode == 9, killed.stderr
    left = list(tmp_path.glob(".predictions.csv.*.tmp"))
    assert len(left) == 1 and not target.exists()
    # the temporary of a writer still running (this process, say another thread) is kept
    running = tmp_path / f".predictions.csv.{os.getpid()}-abcdef012345.tmp"
    running.write_text("p\n")
    with TableWriter(target) as out:
        assert not left[0].exists()  # the killed writer's is gone
        out.write(pd.DataFrame({"p": [1, 2]}))
    assert pd.read_csv(target)["p"].tolist() == [1, 2]
    assert list(tmp_path.glob(".predictions.csv.*.tmp")) == [running]
    assert remove_stale_temporaries(target) == []
