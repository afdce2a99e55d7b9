"""`takeoff tune`: search a family's hyperparameters with Optuna and refit the best as a bundle."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from takeoff.cli.options import EncodingOpt, NoTrackOpt, SqlOpt, TableOpt, TrackingUriOpt, default_run_dir, tracking_on
from takeoff.cli.output import metrics_table, out, run


def tune(
    data: Annotated[str, typer.Argument(help="Training data (file or SQLAlchemy URL).")],
    target: Annotated[str, typer.Option("--target", "-t", help="Column to predict.")],
    trials: Annotated[int, typer.Option("--trials", help="Trials the study should have in all (every worker sharing it counted).")] = 20,
    time_budget: Annotated[Optional[float], typer.Option("--time-budget", help="Seconds for the search and the refit (default 120).")] = None,
    family: Annotated[Optional[str], typer.Option("--family", help="Family to tune (default auto: every family with a search space; see `takeoff config show --space F`).")] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="SQLAlchemy URL of the study storage that workers share (default: OUT/study.db).")] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="Study name to create or join (default: the run folder's name).")] = None,
    resume_study: Annotated[bool, typer.Option("--resume-study", help="Continue a study that was started on other data or another target.")] = False,
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="Train the best params as a bundle in OUT/model at the end.")] = True,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (default takeoff-runs/<time>-<name>-tune).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (of the sampler and the fits).")] = None,
    metric: Annotated[Optional[str], typer.Option("--metric", help="What trials are judged by (default roc_auc / log_loss / rmse by task).")] = None,
    tracking_uri: TrackingUriOpt = None,
    no_track: NoTrackOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the search's summary as JSON.")] = False,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Search hyperparameters (Optuna TPE with pruning) and refit the best as a bundle."""
    from takeoff import api
    from takeoff.tuning.report import trial_rows

    out_dir = out_dir or default_run_dir(data, table, "run", "-tune")
    model, found = run(api.tune, data, target, trials=trials, time_budget=time_budget, family=family, storage=storage,
                       study=study, resume_study=resume_study, out=out_dir, refit=refit, config=config, seed=seed,
                       metric=metric, table=table, sql=sql, encoding=encoding, track=tracking_on(no_track, tracking_uri),
                       tracking_uri=tracking_uri)
    metric_name = found.user_attrs.get("metric", "score")
    rows = trial_rows(found, metric_name)
    if as_json:
        summary = model.manifest["training"]["tuning"] if model is not None else {"trials": len(rows)}
        sys.stdout.write(json.dumps({"tuning": summary, "bundle": str(model.path) if model else None,
                                     "metrics": model.metrics if model else None}, default=str) + "\n")
        return
    board = Table(title=f"trials of study '{found.study_name}' ({len(rows)})", title_justify="left")
    for col in ("trial", "state", metric_name, "seconds", "params"):
        board.add_column(col, justify="left" if col in ("state", "params") else "right")
    best = found.best_trial.number
    for r in rows:
        score = "" if r[metric_name] is None else f"{r[metric_name]:.5f}"
        params = ", ".join(f"{k}={_short(v)}" for k, v in r["params"].items())
        board.add_row(f"{r['trial']}{' *' if r['trial'] == best else ''}", r["state"], score,
                      "" if r["seconds"] is None else f"{r['seconds']:.1f}", params)
    out.print(board)
    if model is None:
        return
    training = model.manifest["training"]
    out.print(metrics_table(f"best params refitted: {training.get('folds', 1)}-fold metrics of trial {best}", model.metrics))
    out.print(f"bundle: {model.path}")
    out.print(f"report: {model.path / 'report.html'}")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if isinstance(value, list) else str(value)
