"""`takeoff explain`: global importance of each column and attributions of the first rows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from takeoff.cli.guards import is_recommender, refuse_search_index
from takeoff.cli.options import Data, EncodingOpt, SqlOpt, TableOpt
from takeoff.cli.output import emit_json, fail, out, run, stdout_to_stderr


def explain(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    data: Data,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Rows explained one by one: the first N of DATA.")] = 5,
    report: Annotated[Path, typer.Option("--out", "-o", help="The HTML report to write.")] = Path("explanation.html"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as one JSON object to stdout instead of the tables.")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json-out", help="Also write the explanation as JSON here.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the row sample and the shuffles.")] = 0,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Why a bundle predicts what it does on DATA: global importance of each column and
    attributions of the first rows (see docs/explain.md)."""
    from takeoff import api
    from takeoff.explain import explain as explain_model

    refuse_search_index(bundle, "explain")
    model = run(api.load, bundle)
    if is_recommender(model):
        fail(f"{bundle} is a recommender, which ranks items for users; it has no per-column predictions to explain. "
             f"Fix: use `takeoff evaluate {bundle} DATA` for its ranking metrics.")
    with stdout_to_stderr(as_json):
        explanation = run(explain_model, model, data, rows=rows, seed=seed, table=table, sql=sql, encoding=encoding)
        explanation.write_html(report)
    if json_path is not None:
        explanation.write_json(json_path)
    if as_json:
        emit_json({**explanation.to_json(), "report": str(report)})
        return
    ranking = Table(title="global importance (top 5)", title_justify="left")
    ranking.add_column("#", justify="right")
    for method in explanation.global_:
        ranking.add_column(method)
    for k in range(min(5, len(model.schema.names()))):
        ranking.add_row(str(k + 1), *(explanation.top(method, 5)[k] for method in explanation.global_))
    out.print(ranking)
    out.print(f"per row, the largest attributions (in the {explanation.explained}):", highlight=False)
    for entry in explanation.local:
        top = ", ".join(f"{a['column']} {a['attribution']:+.3g}" for a in entry["attributions"][:3] if a["attribution"] is not None)
        out.print(f"row {entry['row']}: predicted {entry['prediction']!r}; {top}", highlight=False)
    out.print(f"report: {report}")
    if json_path is not None:
        out.print(f"json: {json_path}")
