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
) -> None:
    """Print the resolved configuration (defaults included) as YAML."""
    from takeoff.config import load_config, to_yaml

    sys.stdout.write(to_yaml(run(load_config, config)))


@config_app.command("schema")
def config_schema() -> None:
    """Print the configuration's JSON Schema."""
    from takeoff.config import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=1) + "\n")
