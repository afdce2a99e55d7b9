"""`takeoff evaluate`: the metrics of a bundle on labelled data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from takeoff.cli.guards import is_recommender, refuse_search_index
from takeoff.cli.options import (Data, DecimalOpt, EncodingOpt, NoTrackOpt, SepOpt, SqlOpt, TableOpt, TrackingUriOpt,
                                 tracking_on)
from takeoff.cli.output import emit_json, metrics_table, out, per_class_table, run, stdout_to_stderr


def evaluate(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    data: Data,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout and nothing else.")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write an HTML report here.")] = None,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
    tracking_uri: TrackingUriOpt = None,
    no_track: NoTrackOpt = False,
    sep: SepOpt = None,
    decimal: DecimalOpt = None,
) -> None:
    """Metrics of a bundle on DATA (which holds the target column; for a recommender, the
    user and item columns of held-out interactions: ranking metrics)."""
    from takeoff import api

    refuse_search_index(bundle, "evaluate")
    with stdout_to_stderr(as_json):
        model, metrics = _evaluate(api, bundle, data, report, table, sql, encoding, sep, decimal)
        if tracking_on(no_track, tracking_uri):
            from takeoff.tracking import log_evaluate

            log_evaluate(bundle, data, metrics, report, uri=tracking_uri)
    if as_json:
        emit_json({"task": model.task.kind, "metrics": metrics})
        return
    out.print(metrics_table(f"metrics on {data}", metrics))
    per_class = per_class_table(metrics)
    if per_class is not None:
        out.print(per_class)
    if report:
        out.print(f"report: {report}")


def _evaluate(api, bundle, data, report, table, sql, encoding, sep=None, decimal=None):
    model = run(api.load, bundle)
    if is_recommender(model):
        if table or sql or encoding or sep or decimal:
            from takeoff.data.sources import read_table

            data_in = run(read_table, data, table=table, sql=sql, encoding=encoding, sep=sep, decimal=decimal)
        else:
            data_in = data
        metrics = run(model.evaluate, data_in, report=report)
    else:
        metrics = run(model.evaluate, data, table=table, sql=sql, encoding=encoding, report=report, sep=sep,
                      decimal=decimal)
    return model, metrics
