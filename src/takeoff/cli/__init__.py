"""The `takeoff` command: a thin Typer layer over :mod:`takeoff.api`, one module per verb.

Each command parses its options, calls the API, and prints. Results go to stdout; progress,
warnings and errors go to stderr (``--quiet`` keeps only warnings and errors), so `--json`
output can be piped. To add a command, write ``cli/<verb>.py`` with one function and register
it below.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from takeoff._version import __version__
from takeoff.cli import (compress, config, demo, evaluate, explain, index, inspect, predict, recommend, search, serve,
                         train)
from takeoff.cli import monitor
from takeoff.cli.output import err, out

__all__ = ["app"]

app = typer.Typer(
    name="takeoff",
    help="From a table to a trained, evaluated model bundle in a few commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config.config_app, name="config")
for verb in (train.train, evaluate.evaluate, predict.predict, explain.explain, compress.compress, recommend.recommend,
             index.index, search.search, inspect.inspect, demo.demo, serve.serve):
    app.command()(verb)
app.command()(monitor.monitor)


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    logger = logging.getLogger("takeoff")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


def _version(value: bool) -> None:
    if value:
        out.print(f"takeoff {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show warnings and errors.")] = False,
) -> None:
    _setup_logging(not quiet)
