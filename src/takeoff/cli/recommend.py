"""`takeoff recommend`: items for a user, or the items most like an item, from a recommender."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from takeoff.cli.output import emit_json, err, fail, out, run


def recommend(
    bundle: Annotated[Path, typer.Argument(help="Recommender bundle directory (from `takeoff train --task recommend`).")],
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="Recommend items for this user ID.")] = None,
    item: Annotated[Optional[str], typer.Option("--item", "-i", help="Show the items most like this item ID.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="How many items.")] = 10,
    include_seen: Annotated[bool, typer.Option("--include-seen", help="Also rank the items the user already interacted with.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout and nothing else.")] = False,
) -> None:
    """Recommendations for a user (--user), or the items most like an item (--item)."""
    from takeoff import api
    from takeoff.bundle import read_manifest
    from takeoff.serving.items import item_labels

    if (user is None) == (item is None):
        given = "both were given" if user is not None else "neither was given"
        fail(f"give --user ID (recommendations for a user) or --item ID (similar items); {given}")
    task = run(read_manifest, bundle, verify=False).get("task", {})  # a table model may take seconds to load
    if task.get("kind") != "recommend":
        fail(f"{bundle} is a {task.get('kind')} model (target '{task.get('target')}'), not a recommender. "
             f"Fix: use `takeoff predict {bundle} DATA -o OUT`, or train a recommender with --task recommend --user COL --item COL.")
    model = run(api.load, bundle)
    if user is not None:
        result = run(model.recommend, user, k=k, exclude_seen=not include_seen)
        asked = {"user": _id(user)}
    else:
        result = run(model.similar_items, item, k=k)
        asked = {"item": _id(item)}
    column, labels = item_labels(model)
    rows = result.to_json()["items"]
    if labels is not None:
        for row, code in zip(rows, model.log.codes_of_items(result.items).tolist()):
            row["label"] = labels[code] if code >= 0 else None
    if as_json:
        emit_json({**asked, "items": rows, "notes": result.notes})
        return
    for note in result.notes:
        err.print(f"note: {note}", highlight=False)
    title = f"top {k} for user {user}" if user is not None else f"{k} items most like item {item}"
    if item is not None and labels is not None:
        code = model.log.codes_of_items([item])[0]
        title += f" ({labels[code]})" if code >= 0 and labels[code] else ""
    out.print(_ranking(title, model.manifest["recommend"]["item"], column, rows))


def _ranking(title: str, item_column: str, label_column: str | None, rows: list[dict]) -> Table:
    """Rank, item, score (and the item's label) per row."""
    table = Table(title=Text(title), title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column(item_column)
    table.add_column("score", justify="right")
    if label_column is not None:
        table.add_column(label_column)
    for rank, row in enumerate(rows, 1):
        labelled = [Text(row["label"] or "")] if label_column is not None else []
        table.add_row(str(rank), Text(str(row["item"])), f"{row['score']:.4f}", *labelled)
    return table


def _id(text: str):
    """An ID from the command line as the model returns IDs: a number when it looks like one."""
    return int(text) if text.lstrip("-").isdigit() and len(text) < 19 else text
