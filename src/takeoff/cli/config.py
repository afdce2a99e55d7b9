"""`takeoff config show|schema`: the configuration's defaults and schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from takeoff.cli.output import run

config_app = typer.Typer(help="Show the configuration schema and defaults.", no_args_is_help=True)


@config_app.command("show")
def config_show(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A YAML config to resolve against the defaults.")] = None,
    space: Annotated[Optional[str], typer.Option("--space", help="Show the search space `takeoff tune` explores for this family instead.")] = None,
) -> None:
    """Print the resolved configuration (defaults included) as YAML, or a family's search space."""
    from takeoff.config import load_config, to_yaml

    if space is not None:
        _show_space(space)
        return

    sys.stdout.write(to_yaml(run(load_config, config)))


@config_app.command("schema")
def config_schema() -> None:
    """Print the configuration's JSON Schema."""
    from takeoff.config import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=1) + "\n")


def _show_space(family: str) -> None:
    from rich.table import Table

    from takeoff.cli.output import out
    from takeoff.tuning.space import describe

    rows = run(describe, family)
    table = Table(title=f"search space of {family} (takeoff tune --family {family})", title_justify="left")
    for col in ("param", "type", "values", "scale", "default", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        values = " | ".join(map(json.dumps, r["values"])) if r["type"] == "choice" else f"{r['values'][0]:g} .. {r['values'][1]:g}"
        table.add_row(r["param"], r["type"], values, "log" if r["log"] else "", json.dumps(r["default"]), r["description"])
    out.print(table)
