"""The `takeoff` command: a thin Typer layer over :mod:`takeoff.api`, one module per verb.

Each command parses its options, calls the API, and prints. Results go to stdout; progress,
warnings and errors go to stderr (``--quiet`` keeps only warnings and errors), so `--json`
output can be piped. To add a command, write ``cli/<verb>.py`` with one function and register
it below.

``-q``/``--quiet`` and ``-v``/``--verbose`` are accepted anywhere on the line (before or after
the command); exit codes are listed in :mod:`takeoff.cli.output` and docs/cli.md.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from typer.core import TyperGroup

from takeoff._version import __version__
from takeoff.cli import (compress, config, demo, evaluate, explain, generate, index, inspect, predict, recommend, search,
                         serve, train)
from takeoff.cli import monitor
from takeoff.cli import keygen, sign, verify
from takeoff.cli.options import CHOICES
from takeoff.cli.output import err, out, settings
from takeoff.cli import tune as tune_cli
from takeoff.cli.runs import runs_app

__all__ = ["app"]

GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose"})


class _Group(TyperGroup):
    """The root command: moves -q/-v given after a command in front of it, so they work anywhere
    (up to a ``--``, after which everything is an argument)."""

    def parse_args(self, ctx, args):
        flags = [a for a in args[: args.index("--") if "--" in args else len(args)] if a in GLOBAL_FLAGS]
        rest = list(args)
        for flag in flags:
            rest.remove(flag)
        return super().parse_args(ctx, flags + rest)

    def resolve_command(self, ctx, args):
        """The command about to run (or show its help), its choices (--family, --task, --metric)
        spelled out in its help: read here, so `takeoff --help` does not discover the families."""
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and any(a in ("--help", "-h") for a in rest):
            for param in command.params:
                if param.name in CHOICES:
                    param.metavar = CHOICES[param.name].metavar()
        return name, command, rest


app = typer.Typer(
    cls=_Group,
    name="takeoff",
    help="From a table to a trained, evaluated model bundle in a few commands.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
app.add_typer(config.config_app, name="config")
from takeoff.cli import info as _info  # noqa: E402 - `takeoff info`: a bundle's facts (ε, fairness)

app.command(name="info")(_info.info)
for verb in (train.train, evaluate.evaluate, predict.predict, explain.explain, compress.compress, recommend.recommend,
             index.index, search.search, generate.generate, inspect.inspect, demo.demo, serve.serve):
    app.command()(verb)
app.command()(monitor.monitor)
for verb in (sign.sign, verify.verify, keygen.keygen):  # bundle signing (docs/security.md)
    app.command()(verb)
app.command()(tune_cli.tune)
app.add_typer(runs_app, name="runs")


def _setup_logging(level: int) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    logger = logging.getLogger("takeoff")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def _version(value: bool) -> None:
    if value:
        out.print(f"takeoff {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show warnings and errors (anywhere on the line).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show debug messages, and the traceback of an unexpected error (anywhere on the line).")] = False,
) -> None:
    settings["verbose"] = verbose
    _setup_logging(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
