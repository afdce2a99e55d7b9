"""`takeoff search`: the indexed texts closest in meaning to a query."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from takeoff.cli.output import emit_json, fail, out, run, stdout_to_stderr


def search(
    bundle: Annotated[Path, typer.Argument(help="Search index bundle directory (from `takeoff index`).")],
    query: Annotated[str, typer.Argument(help="The text to search for.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="How many hits.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout and nothing else.")] = False,
) -> None:
    """The indexed texts closest in meaning to QUERY, with their answers."""
    from takeoff import api
    from takeoff.bundle import read_manifest

    task = run(read_manifest, bundle, verify=False).get("task", {})
    if task.get("kind") != "search":
        fail(f"{bundle} is a {task.get('kind')} model, not a search index. "
             "Fix: build one with `takeoff index DATA --text COLUMN [--answer COLUMN]`.")
    with stdout_to_stderr(as_json):
        model = run(api.load, bundle)
        hits = run(model.search, query, k=k)
    if as_json:
        emit_json({"query": query, "hits": hits})
        return
    table = Table(title=Text(f"top {k} for {query!r}"), title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column(model.manifest["search"]["text"])
    if model.answers is not None:
        table.add_column(model.manifest["search"]["answer"])
    for rank, hit in enumerate(hits, 1):
        answer_cell = [Text(str(hit["answer"]) if hit["answer"] is not None else "")] if model.answers is not None else []
        table.add_row(str(rank), f"{hit['score']:.3f}", Text(hit["text"]), *answer_cell)
    out.print(table)
