"""`takeoff train DOCS --task answer` as a user runs it, and what it refuses."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_train_a_folder_of_documents(docs, tiny_lm, tmp_path):
    out = tmp_path / "support"
    result = run("train", str(docs), "--task", "answer", "--out", str(out), "--generator", str(tiny_lm))
    assert result.exit_code == 0, result.output
    assert "indexed 8 passages from 4 file(s)" in result.output and f"bundle: {out}" in result.output
    assert "note: files of other types not read: 1 .png" in result.output
    reply = takeoff.load(out).answer("Where do I find my old invoices?", max_new_tokens=4)
    assert not reply.refused and reply.citations[0].section == "Billing > Invoices"
    asked = run("generate", str(out), "--prompt", "Where do I find my old invoices?", "--max-new-tokens", "4", "--json")
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)["answers"][0]
    assert answer["question"] == "Where do I find my old invoices?" and not answer["refused"]
    assert answer["citations"][0]["section"] == "Billing > Invoices"
    shown = run("generate", str(out), "--prompt", "Where do I find my old invoices?", "--max-new-tokens", "4")
    assert shown.exit_code == 0 and "Billing > Invoices" in shown.output


def test_train_a_table_of_passages_as_json(tiny_lm, tmp_path):
    table = tmp_path / "passages.csv"
    pd.DataFrame({"body": ["Refunds are possible within thirty days of delivery.",
                           "Parcels leave the warehouse within two working days."],
                  "title": ["Refunds", "Shipping"]}).to_csv(table, index=False)
    out = tmp_path / "table"
    result = run("train", str(table), "--task", "answer", "--text", "body", "--out", str(out),
                 "--generator", str(tiny_lm), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["task"] == "answer" and summary["passages"] == 2 and summary["bundle"] == str(out)
    hit = takeoff.load(out).search("how long does shipping take?", k=1)[0]
    assert (hit.source, hit.section) == ("passages.csv", "Shipping")


def test_bad_input_exits_with_a_clear_message(docs, tiny_lm, tmp_path):
    table = tmp_path / "passages.csv"
    pd.DataFrame({"body": ["Refunds within thirty days."]}).to_csv(table, index=False)
    missing_column = run("train", str(table), "--task", "answer", "--out", str(tmp_path / "a"),
                         "--generator", str(tiny_lm))
    assert missing_column.exit_code == 3 and "'text'" in missing_column.output and "body" in missing_column.output
    text_on_folder = run("train", str(docs), "--task", "answer", "--text", "body", "--out", str(tmp_path / "b"),
                         "--generator", str(tiny_lm))
    assert text_on_folder.exit_code == 3 and "folder of documents" in text_on_folder.output
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run("train", str(empty), "--task", "answer", "--out", str(tmp_path / "c"), "--generator", str(tiny_lm))
    assert nothing.exit_code == 3 and "no readable passage" in nothing.output
    not_a_generator = run("train", str(docs), "--task", "answer", "--out", str(tmp_path / "d"),
                          "--generator", str(tmp_path / "nowhere"))
    assert not_a_generator.exit_code != 0 and "nowhere" in not_a_generator.output
    for name in "abcd":
        assert not (tmp_path / name).exists()  # nothing half-written
