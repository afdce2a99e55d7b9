"""`takeoff runs list | show RUN | compare RUN RUN`: the tracked runs in the MLflow store."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from takeoff.cli.output import out, run

runs_app = typer.Typer(help="Tracked runs (MLflow): list, show one, compare two.", no_args_is_help=True)

UriOpt = Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else ./mlruns).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
HEADLINE = ("roc_auc", "log_loss", "rmse", "r2", "accuracy", "macro_f1", "mae", "seconds", "ratios.size")


@runs_app.command("list")
def runs_list(
    tracking_uri: UriOpt = None,
    kind: Annotated[Optional[str], typer.Option("--kind", help="Only runs of this command: train, tune, compress, evaluate.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most runs shown, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The latest tracked runs, newest first."""
    from takeoff.tracking import list_runs

    rows = run(list_runs, tracking_uri, limit, kind)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    shown = [m for m in HEADLINE if any(m in r["metrics"] for r in rows)][:4]
    table = Table(title=f"tracked runs ({len(rows)})", title_justify="left")
    for col in ("run", "kind", "name", "started", "status", *shown):
        table.add_column(col, justify="right" if col in shown else "left", no_wrap=col in ("run", "kind", "started"))
    for r in rows:
        table.add_row(r["run_id"][:12], r["kind"], r["name"] or "", (r["start"] or "")[5:16].replace("T", " "), r["status"],
                      *(_num(r["metrics"].get(m)) for m in shown))
    out.print(table)


@runs_app.command("show")
def runs_show(run_id: Annotated[str, typer.Argument(help="Run id (or its first characters).")], tracking_uri: UriOpt = None,
              as_json: JsonOpt = False) -> None:
    """One run: its params, final metrics and artifacts."""
    from takeoff.tracking import show_run

    found = run(show_run, run_id, tracking_uri)
    if as_json:
        sys.stdout.write(json.dumps(found) + "\n")
        return
    out.print(f"run {found['run_id']} ({found['kind']}, {found['status']}): {found['name']}, started {found['start']}")
    for title, values in (("params", found["params"]), ("metrics", found["metrics"])):
        table = Table(title=title, title_justify="left")
        table.add_column("name")
        table.add_column("value", justify="right" if title == "metrics" else "left", overflow="fold")
        for k, v in values.items():
            table.add_row(k, _num(v) if title == "metrics" else str(v))
        out.print(table)
    out.print("artifacts: " + ", ".join(found["artifacts"]))


@runs_app.command("compare")
def runs_compare(a: Annotated[str, typer.Argument(help="First run id.")], b: Annotated[str, typer.Argument(help="Second run id.")],
                 tracking_uri: UriOpt = None, as_json: JsonOpt = False) -> None:
    """Two runs side by side: the params that differ, and the metrics."""
    from takeoff.tracking import compare_runs

    found = run(compare_runs, a, b, tracking_uri)
    if as_json:
        sys.stdout.write(json.dumps(found) + "\n")
        return
    left, right = (f"{i[:8]} {n or ''}" for i, n in zip(found["runs"], found["names"]))
    for title, values in (("params that differ", found["params"]), ("metrics", found["metrics"])):
        table = Table(title=title, title_justify="left")
        for col in ("name", left, right):
            table.add_column(col, justify="left" if col == "name" else "right", overflow="fold")
        for k, (x, y) in values.items():
            table.add_row(k, _num(x) if title == "metrics" else str(x), _num(y) if title == "metrics" else str(y))
        out.print(table)


def _num(v) -> str:
    if v is None:
        return "—"
    return f"{v:.4f}" if isinstance(v, float) else str(v)
