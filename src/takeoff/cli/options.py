"""Options several commands share: where the data comes from, and the default run directory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

Data = Annotated[str, typer.Argument(help="CSV, TSV, Parquet, JSON lines or Excel file, or a SQLAlchemy URL.")]
TableOpt = Annotated[Optional[str], typer.Option("--table", help="Database table (with a SQLAlchemy URL).")]
SqlOpt = Annotated[Optional[str], typer.Option("--sql", help="SQL query (with a SQLAlchemy URL).")]
EncodingOpt = Annotated[Optional[str], typer.Option("--encoding", help="Text encoding of CSV/TSV files (default UTF-8).")]
SepOpt = Annotated[Optional[str], typer.Option("--sep", help="CSV delimiter: one character, or tab (default: detected, one of , ; tab |).")]
DecimalOpt = Annotated[Optional[str], typer.Option("--decimal", help="Decimal mark of CSV numbers: . or , (default: detected).")]


def default_run_dir(data: str, table: str | None, fallback: str, suffix: str = "") -> Path:
    """``takeoff-runs/<time>-<name><suffix>``, the name read from the table, the URL or the file."""
    stem = Path(table or (data.rsplit("/", 1)[-1] if "://" in data else Path(data).stem) or fallback).stem
    return Path("takeoff-runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{stem}{suffix}"


class LazyChoice:
    """A choice among names read when first needed (validation, ``--help`` of the command,
    completion), so a new model family or metric shows up without editing the CLI, and
    ``takeoff --help`` does not pay for discovering the families.

    ``option(...)`` gives the Typer option; :meth:`metavar` is set on the command's parameter
    when the command is resolved (see ``takeoff.cli._Group``).
    """

    def __init__(self, what: str, choices: Callable[[], list[str]]):
        self.what, self._choices = what, choices

    @property
    def choices(self) -> list[str]:  # not cached: the registry caches, and forgets on refresh()
        return list(dict.fromkeys(self._choices()))

    def metavar(self) -> str:
        return f"[{'|'.join(self.choices)}]"

    def __call__(self, value):
        """Validate one value (Typer's ``parser``): a usage error (exit 2) naming the choices."""
        if value is None or value in self.choices:
            return value
        from takeoff.errors import closest

        guess = closest(str(value), self.choices)
        hint = f" Did you mean '{guess}'?" if guess else ""
        raise typer.BadParameter(f"unknown {self.what} {value!r}; valid: {', '.join(self.choices)}.{hint}")

    def complete(self, incomplete: str) -> list[str]:
        return [c for c in self.choices if c.startswith(incomplete)]

    def option(self, *decls: str, help: str):
        return typer.Option(*decls, parser=self, autocompletion=self.complete, metavar=self.what.split()[-1].upper(),
                            help=help)


def family_choices() -> list[str]:
    """Every registered model family and recommender, and ``auto``."""
    from takeoff import registry

    return ["auto", *registry.names(), *registry.recommender_names()]


def task_choices() -> list[str]:
    from takeoff.data.schema import TASKS

    return [*TASKS, "recommend", "generate", "answer"]


def metric_choices() -> list[str]:
    """Every metric a run can be judged by, from the metric tables of each task."""
    from takeoff.evaluation.metrics import TASK_METRICS

    return [m for metrics in TASK_METRICS.values() for m in metrics]


FamilyChoice = LazyChoice("model family", family_choices)
TaskChoice = LazyChoice("task", task_choices)
MetricChoice = LazyChoice("metric", metric_choices)
# parameter name → its choices, for the commands whose parameters carry these names
CHOICES = {"family": FamilyChoice, "task": TaskChoice, "metric": MetricChoice}
TrackingUriOpt = Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else ./mlruns).")]
NoTrackOpt = Annotated[bool, typer.Option("--no-track", help="Do not log this run to MLflow.")]


def tracking_on(no_track: bool, tracking_uri: str | None) -> bool:
    """Whether a command logs its run to MLflow: unless ``--no-track``, or ``TAKEOFF_TRACK=0`` in
    the environment without an explicit ``--tracking-uri`` (a test suite, a CI job)."""
    import os

    return not no_track and (tracking_uri is not None or os.environ.get("TAKEOFF_TRACK", "1") != "0")
