"""A category never seen in training, or a number far outside the training range, is predicted
with a warning: in the server's ``warnings`` and in ``takeoff predict``'s notes (one library
path), and never for rows like the training ones."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app

from api_client import post


def _odd(credit_rows: pd.DataFrame) -> pd.DataFrame:
    odd = credit_rows.head(3).copy()
    odd.loc[0, "Home"] = "castle"  # a home the training rows never had
    odd.loc[1, "Income"] = 1e7  # the training incomes stay below a thousand
    return odd


def test_the_server_warns_of_unseen_categories_and_far_numbers(server_url, credit_rows):
    records = _odd(credit_rows).astype(object).where(pd.notna(_odd(credit_rows)), None).to_dict("records")
    body = post(f"{server_url}/v1/models/credit/predict", json={"records": records}).json()
    assert len(body["predictions"]) == 3
    warnings = body["warnings"]
    assert "column 'Home': 1 value(s) not seen in training (or too rare in it: 'castle'); predicted as an unknown " \
           "category" in warnings
    income = [w for w in warnings if w.startswith("column 'Income': 1 value(s) far outside the training range")]
    assert len(income) == 1 and "the prediction extrapolates there" in income[0]
    one = post(f"{server_url}/v1/models/credit/predict", json=records[0]).json()  # one record: the fast path
    assert any("'castle'" in w for w in one["warnings"])
    usual = post(f"{server_url}/v1/models/credit/predict", json={"records": records[2:]}).json()
    assert usual["warnings"] == []


def test_predict_notes_them_too(lgb_bundle, credit_rows, credit, tmp_path):
    path = tmp_path / "odd.csv"
    _odd(credit_rows).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["predict", str(lgb_bundle), str(path), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "note: column 'Home': 1 value(s) not seen in training" in said and "note: column 'Income': 1 value(s)" in said
    # the whole table the model came from raises nothing
    _, notes = takeoff.load(lgb_bundle).predict_frame(credit)
    assert notes.unseen == {} and notes.far == {}
