"""What every command prints through: the two consoles, the error exits, ``--json`` output,
and the metrics tables.

Results go to stdout (``out``); progress, notes, warnings and errors go to stderr (``err``), so
``--json`` output can be piped.

Exit codes (docs/cli.md): 0 ok; 1 a runtime failure (no model fitted in the budget, an export
that does not match, a missing package or encoder, an unexpected error); 2 a usage error (a bad
option or value, the wrong command for a bundle: also every Click usage error); 3 a data error
(the data cannot be read or used: a missing file or column, a bad target, strict checks that
failed); 4 a bundle error (missing, unfinished, tampered with, unknown format).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import traceback
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from takeoff.errors import BundleError, ConfigError, DataError, DataSourceError, TakeoffError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_DATA, EXIT_BUNDLE = 0, 1, 2, 3, 4
# The first class an error is an instance of decides; anything else of ours is a runtime failure.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (BundleError, EXIT_BUNDLE),
    (DataSourceError, EXIT_DATA),
    (DataError, EXIT_DATA),
    (ConfigError, EXIT_USAGE),
)
settings = {"verbose": False}  # set by the `takeoff` callback (-v)


def exit_code(error: BaseException) -> int:
    """The documented exit code of one of takeoff's errors (1 for any other)."""
    return next((code for cls, code in EXIT_CODES if isinstance(error, cls)), EXIT_RUNTIME)


def run(fn, *args, **kwargs):
    """Call the API; turn an error into one clear line on stderr and its exit code.

    Our errors exit with :func:`exit_code`; any other exception is a runtime failure (exit 1),
    its traceback shown with ``-v``.
    """
    try:
        return fn(*args, **kwargs)
    except (typer.Exit, typer.Abort):  # a nested fail(): its code stands
        raise
    except TakeoffError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(exit_code(exc)) from None
    except ModuleNotFoundError as exc:  # e.g. a report (matplotlib) asked of a takeoff[lite] install
        message = (f"this needs the Python package {exc.name!r}, which is not installed. "
                   "Fix: pip install 'takeoff[train]' (or the extra that provides it)")
        err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_RUNTIME) from None
    except Exception as exc:  # a bug or an environment problem: one line, the traceback on -v
        if settings["verbose"]:
            err.print("".join(traceback.format_exception(exc)), markup=False, highlight=False)
        hint = "" if settings["verbose"] else " (run with -v for the traceback)"
        err.print(f"[bold red]error:[/] {escape(f'{type(exc).__name__}: {exc}')}{hint}", markup=True, highlight=False,
                  soft_wrap=True)
        raise typer.Exit(EXIT_RUNTIME) from None


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print ``message`` as an error line and exit with ``code`` (a usage error by default)."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def stdout_to_stderr(active: bool = True):
    """With ``--json``: whatever a library prints while the command works goes to stderr, so
    stdout carries the one JSON document alone (Python's ``sys.stdout`` and, where it is a real
    file, file descriptor 1, which C++ libraries write to)."""
    if not active:
        yield
        return
    saved = None
    try:
        sys.stdout.flush()
        if sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2:
            saved = os.dup(1)
            os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def emit_json(document) -> None:
    """Write ``document`` to stdout as one line of strict JSON (paths and NumPy values as JSON has
    them; NaN and infinity, which JSON lacks, as null)."""
    sys.stdout.write(json.dumps(_finite(json.loads(json.dumps(document, default=_plain))), allow_nan=False) + "\n")
    sys.stdout.flush()


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # a NumPy scalar
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


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
