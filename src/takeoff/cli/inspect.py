"""`takeoff inspect`: the schema takeoff infers from a table, and the data findings."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from takeoff.cli.options import Data, DecimalOpt, EncodingOpt, SepOpt, SqlOpt, TableOpt
from takeoff.cli.output import out, run

COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def inspect(
    data: Data,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 1 when a check finds an error.")] = False,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
    sep: SepOpt = None,
    decimal: DecimalOpt = None,
) -> None:
    """Show the schema takeoff infers and the data findings."""
    from takeoff import api

    result = run(api.inspect, data, target, table=table, sql=sql, encoding=encoding, sep=sep, decimal=decimal)
    failed = strict and any(f["severity"] == "error" for f in result["findings"])
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        raise typer.Exit(1 if failed else 0)
    out.print(_schema_table(result))
    if result.get("pii"):
        out.print(_pii_table(result["pii"]))
    if result["findings"]:
        out.print(_findings_table(result["findings"]))
    else:
        out.print("no findings")
    if failed:
        raise typer.Exit(1)


def _schema_table(result: dict) -> Table:
    task = result["task"]
    title = f"{result['source']}: {result['rows']} rows"
    if task:
        title += f", target '{task['target']}' → {task['kind']}" + (f" {task['classes']}" if task["classes"] else "")
    schema = Table(title=title, title_justify="left")
    for col in ("column", "kind", "dtype", "missing", "unique", "note"):
        schema.add_column(col, justify="right" if col in ("missing", "unique") else "left")
    for c in result["columns"]:
        note = "dropped" if c["kind"] in ("identifier", "constant", "empty") else ""
        if c["bad_values"]:
            note = f"{c['bad_values']} unparseable"
        schema.add_row(c["name"], c["kind"], c["dtype"], str(c["n_missing"]), str(c["n_unique"]), note)
    return schema


def _findings_table(found: list[dict]) -> Table:
    findings = Table(title="findings", title_justify="left")
    for col in ("severity", "check", "column", "finding", "fix"):
        findings.add_column(col)
    for f in found:
        findings.add_row(f"[{COLOURS.get(f['severity'], 'white')}]{f['severity']}[/]", f["check"], f["column"] or "", f["message"], f["fix"])
    return findings


def _pii_table(found: list[dict]) -> Table:
    pii = Table(title="personal data (sampled rows; examples masked)", title_justify="left")
    for col in ("column", "kind", "share of rows", "examples", "proposal"):
        pii.add_column(col, justify="right" if col == "share of rows" else "left")
    for f in found:
        proposal = f"drop it (--drop {f['column']})" if f["mostly"] else f"--redact-pii {f['kind']}"
        pii.add_row(f["column"], f["kind"], f"{f['share']:.1%}", ", ".join(f["examples"]), proposal)
    return pii
