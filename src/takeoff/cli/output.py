"""What every command prints through: the two consoles, the error exit, and the metrics tables.

Results go to stdout (``out``); progress, notes, warnings and errors go to stderr (``err``), so
``--json`` output can be piped.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from takeoff.errors import TakeoffError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def run(fn, *args, **kwargs):
    """Call the API; turn our errors into one clear line and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except TakeoffError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def fail(message: str) -> None:
    """Print ``message`` as an error line and exit with code 2."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def metrics_table(title: str, metrics: dict) -> Table:
    """The numeric entries of ``metrics``, one row each."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def per_class_table(metrics: dict) -> Table | None:
    """Precision, recall, F1 and support per class, or None without per-class metrics."""
    per_class = metrics.get("per_class")
    if not per_class:
        return None
    table = Table(title="per class", title_justify="left")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for label, row in per_class.items():
        table.add_row(str(label), *(f"{row[k]:.3f}" if k != "support" else str(row[k]) for k in ("precision", "recall", "f1", "support")))
    return table
