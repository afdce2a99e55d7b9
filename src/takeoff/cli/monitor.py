"""`takeoff monitor`: has new data drifted from what the model was trained on?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from takeoff.cli.options import Data, EncodingOpt, SqlOpt, TableOpt
from takeoff.cli.output import emit_json, out, run, stdout_to_stderr


def monitor(
    bundle: Annotated[Path, typer.Argument(help="The model bundle (written by takeoff train).")],
    data: Data,
    report: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the HTML drift report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")] = False,
    psi: Annotated[float, typer.Option("--psi", min=0.0, help="PSI from which a column is flagged (0.2: a significant shift).")] = 0.2,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Compare new data with the training profile in a bundle: PSI and KS per column, new
    categories, missing rates, and the shift of the predictions. Exits 1 when something drifted."""
    from takeoff import api

    with stdout_to_stderr(as_json):
        result = run(api.monitor, bundle, data, report=report, table=table, sql=sql, encoding=encoding,
                     thresholds={"psi": psi})
    drifted = bool(result["drifted"]) or bool((result.get("prediction") or {}).get("drifted"))
    if as_json:
        emit_json(result)
        raise typer.Exit(1 if drifted else 0)
    shown = Table(title=f"drift of {result['source']} ({result['rows']:,} rows) from the training profile", title_justify="left")
    for col in ("column", "kind", "PSI", "KS", "missing train → new", "flag"):
        shown.add_column(col, justify="right" if col in ("PSI", "KS") else "left")
    for c in sorted(result["columns"], key=lambda c: (not c["drifted"], -(c.get("psi") or 0))):
        missing = f"{c['missing_train']:.1%} → {c['missing_new']:.1%}" if c.get("missing_new") is not None else ""
        shown.add_row(c["column"], c["kind"], _num(c.get("psi")), _num(c.get("ks")), missing,
                      "[yellow]drift[/]: " + "; ".join(c["reasons"]) if c["drifted"] else "ok")
    prediction = result.get("prediction")
    if prediction:
        shown.add_row("(predictions)", prediction["kind"], _num(prediction.get("psi")), "", "",
                      "[yellow]drift[/]: " + "; ".join(prediction["reasons"]) if prediction["drifted"] else "ok")
    out.print(shown)
    out.print(f"drifted: {', '.join(result['drifted'])}" if result["drifted"] else "no column drifted")
    if report is not None:
        out.print(f"report: {report}")
    if drifted:
        raise typer.Exit(1)


def _num(value) -> str:
    return "" if value is None else f"{value:.3f}"
