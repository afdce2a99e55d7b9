"""`takeoff inspect`: the schema takeoff infers from a table, and the data findings."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from takeoff.cli.options import Data, DecimalOpt, EncodingOpt, SepOpt, SqlOpt, TableOpt
from takeoff.cli.output import EXIT_DATA, emit_json, out, run, stdout_to_stderr

COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def inspect(
    data: Data,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 3 (a data error) when a check finds an error.")] = False,
    assess: Annotated[bool, typer.Option("--assess", help="Feasibility: quick models on 10/25/50/100% of the rows, a learning curve, a simple model's score and the serving cost (needs --target).")] = False,
    time_budget: Annotated[float, typer.Option("--time-budget", help="--assess: seconds for the whole assessment.")] = 60.0,
    price: Annotated[float, typer.Option("--price-per-cpu-hour", help="--assess: price of one CPU-hour for the cost per 1M predictions (default 0.05, USD).")] = 0.05,
    report: Annotated[Optional[str], typer.Option("--report", help="--assess: the HTML page with the learning-curve chart (default takeoff-runs/<time>-<name>-assess.html).")] = None,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
    sep: SepOpt = None,
    decimal: DecimalOpt = None,
) -> None:
    """Show the schema takeoff infers and the data findings (with --assess: is the prediction worth pursuing?)."""
    from takeoff import api

    if assess:
        _assess(data, target, as_json, time_budget, price, report, table, sql, encoding)
        return

    with stdout_to_stderr(as_json):
        result = run(api.inspect, data, target, table=table, sql=sql, encoding=encoding, sep=sep, decimal=decimal)
    failed = strict and any(f["severity"] == "error" for f in result["findings"])
    if as_json:
        emit_json(result)
        raise typer.Exit(EXIT_DATA if failed else 0)
    out.print(_schema_table(result))
    if result.get("pii"):
        out.print(_pii_table(result["pii"]))
    if result["findings"]:
        out.print(_findings_table(result["findings"]))
    else:
        out.print("no findings")
    if failed:
        raise typer.Exit(EXIT_DATA)


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


def _assess(data, target, as_json, time_budget, price, report, table, sql, encoding) -> None:
    from takeoff.assess import assess
    from takeoff.cli.options import default_run_dir
    from takeoff.cli.output import fail

    if target is None:
        fail("--assess needs the column to predict: pass --target COLUMN")
    page = report or default_run_dir(data, table, "assess", "-assess.html")
    with stdout_to_stderr(as_json):
        result = run(assess, data, target, time_budget=time_budget, price_per_cpu_hour=price, report=page, table=table,
                     sql=sql, encoding=encoding)
    if as_json:
        emit_json(result)
        return
    points = Table(title=f"{result['source']}: '{target}' ({result['task']}), {result['metric']} on "
                         f"{result['rows']['held_out']:,} held-out rows", title_justify="left")
    for col in ("rows", "share", "lightgbm", "linear"):
        points.add_column(col, justify="right")
    for fraction in sorted({p["fraction"] for p in result["points"]}):
        row = [p for p in result["points"] if p["fraction"] == fraction]
        cells = []
        for family in ("lightgbm", "linear"):
            scores = [p["score"] for p in row if p["family"] == family]
            cells.append(f"{sum(scores) / len(scores):.4f}" + (f" ±{_sd(scores):.4f}" if len(scores) > 1 else ""))
        points.add_row(f"{row[0]['rows']:,}", f"{fraction:.0%}", *cells)
    out.print(points)
    for line in result["verdict"]:
        out.print(line)
    out.print(f"chart: {result['report']}")


def _sd(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
