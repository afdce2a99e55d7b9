"""`takeoff explain` as a user runs it: a bundle and a CSV in, an HTML report and JSON out."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def rows_csv(one_column, tmp_path_factory):
    path = tmp_path_factory.mktemp("explain-cli") / "rows.csv"
    one_column.head(300).to_csv(path, index=False)
    return path


def test_explain_writes_the_report_and_the_json(lgb_one, rows_csv, tmp_path):
    report, data = tmp_path / "report.html", tmp_path / "explanation.json"
    result = run("explain", lgb_one.path, rows_csv, "--rows", 4, "--out", report, "--json-out", data, "--seed", 3)
    assert result.exit_code == 0, result.output
    assert "x0" in result.output and f"report: {report}" in result.output
    explanation = json.loads(data.read_text())
    assert explanation["settings"]["seed"] == 3 and explanation["settings"]["rows"] == 4
    assert [e["row"] for e in explanation["local"]] == [0, 1, 2, 3]
    assert explanation["global"]["permutation"][0]["column"] == "x0"
    top = explanation["global"]["treeshap"][0]
    assert top["column"] == "x0" and top["importance"] > 0
    local = explanation["local"][0]
    assert {"row", "prediction", "explained", "output", "attributions", "members", "tokens"} <= set(local)
    assert set(local["attributions"][0]) == {"column", "value", "attribution"}
    page = report.read_text()
    assert page.startswith("<!doctype html>") and "TreeSHAP" in page and "Row 3" in page


def test_explain_refuses_missing_columns_like_predict(lgb_one, one_column, tmp_path):
    path = tmp_path / "rows.csv"
    one_column.drop(columns=["c"]).head(20).to_csv(path, index=False)
    result = run("explain", lgb_one.path, path, "--out", tmp_path / "r.html")
    assert result.exit_code == 3  # a data error
    assert "column(s) 'c' missing in rows.csv" in result.output
    assert not (tmp_path / "r.html").exists()


def test_explain_refuses_a_recommender(datasets, tmp_path):
    ratings = pd.read_csv(datasets / "movielens_ratings.csv", nrows=3000)
    bundle = tmp_path / "movies"
    takeoff.train(ratings, task="recommend", user="userId", item="movieId", rating="rating",
                  time_column="timestamp", family="itemknn", time_budget=20, seed=0, out=bundle)
    result = run("explain", bundle, tmp_path / "any.csv", "--out", tmp_path / "r.html")
    assert result.exit_code == 2
    assert "is a recommender" in result.output and "no per-column predictions to explain" in result.output
    assert not (tmp_path / "r.html").exists()
