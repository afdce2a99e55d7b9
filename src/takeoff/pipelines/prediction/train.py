"""A prediction run: read the table, prepare it, fit the families within the time budget and
write the bundle with its validation report. With an output directory, the run keeps its
progress there, so that an interrupted run can be resumed.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from takeoff import bundle
from takeoff._version import __version__
from takeoff.errors import ConfigError
from takeoff.pipelines.prediction import automl
from takeoff.pipelines.prediction.model import Model
from takeoff.pipelines.prediction.prepare import prepare
from takeoff.pipelines.run_dir import new_output_dir, read_data, remove_unfinished, rereadable
from takeoff.training.distributed import is_main_process, lost_peers


def train(data, cfg, out: str | Path | None, table: str | None = None, sql: str | None = None,
          encoding: str | None = None, state: dict[str, Any] | None = None,
          report_sections: list[dict[str, Any]] | None = None, info: dict[str, Any] | None = None,
          sep: str | None = None, decimal: str | None = None) -> Model:
    """Train the prediction model of ``cfg`` on ``data``; write it as a bundle to ``out``.

    ``state`` is the saved state of an interrupted run being resumed (``out`` is then its
    directory), else None. ``report_sections`` are added to the report (see
    :func:`~takeoff.evaluation.report.write_report`) and ``info`` to the manifest's
    ``training`` (e.g. a hyperparameter search's summary).

    Raises:
        DataSourceError, DataError, ConfigError, BudgetError: nothing is written then.
    """
    from takeoff.evaluation.report import write_report

    resume = state is not None
    state = state or {}
    if cfg.target is None and isinstance(data, (str, Path)) and Path(data).expanduser().is_dir():
        from takeoff.data.images import LABEL_COLUMN

        cfg = cfg.model_copy(update={"target": LABEL_COLUMN})  # an image folder: its class subfolders
    if cfg.target is None:
        raise ConfigError("no target column given. Fix: pass --target COLUMN (or target: in the config); "
                          "for recommendations, pass --user COLUMN --item COLUMN.")
    started = time.monotonic()
    deadline = started + cfg.time_budget - state.get("elapsed", 0.0)
    df, name = read_data(data, table, sql, encoding, sep, decimal)
    prep = prepare(df, cfg, name)
    del df
    automl.run_metric(cfg, prep.task)  # a metric that does not apply fails before anything is written

    run_dir = Path(out) if out is not None else None
    created = False
    writes = is_main_process()  # under torch.distributed (--devices) only rank 0 writes the run directory
    if run_dir is not None and not resume and writes:
        new_output_dir(run_dir)
        created = True
        state = {
            "status": "running",
            "source": {"data": rereadable(data), "table": table, "sql": sql, "encoding": encoding, "sep": sep,
                       "decimal": decimal},
            "config": cfg.model_dump(mode="json"),
            "elapsed": 0.0,
        }
        bundle.write_json(run_dir / bundle.RUN_STATE, state)
    try:
        prepared = time.monotonic() - started
        outcome = automl.fit(prep, cfg, run_dir, deadline, state)
        outcome.info["time"] = {"reading and checking the data": round(prepared, 2), **outcome.info.get("time", {})}
        outcome.info.update(info or {})
        model = model_of(outcome, cfg, name, time.monotonic() - started + state.get("elapsed", 0.0))
        fairness = _fairness(outcome, cfg)
        if fairness is not None:
            model.manifest["fairness"] = fairness
        _trust(model, outcome, cfg)
        if run_dir is not None and writes:
            report = run_dir / "report.html"
            write_report(
                report, title=f"{prep.task.target} — validation report", task=prep.task,
                metrics=outcome.metrics, y=outcome.valid_y, pred=outcome.valid_pred,
                threshold=outcome.threshold, importance=outcome.importance, history=outcome.history,
                findings=[f.to_json() for f in prep.findings], model_info=model.model_info(),
                data_name=f"{name} ({_scored_rows(outcome)})", images=next(iter(outcome.valid_X.images.values()), None),
                fairness=fairness, privacy=model.manifest.get("privacy", {}).get("dp"),
                card=model.card(),
                sections=report_sections or (),
            )
            model.attach("report.html", report)
            model.save(run_dir)
    except KeyboardInterrupt:
        if run_dir is not None and run_dir.exists() and writes:
            state.update(status="interrupted", elapsed=state.get("elapsed", 0.0) + time.monotonic() - started)
            bundle.write_json(run_dir / bundle.RUN_STATE, state)
        raise
    except BaseException as error:
        if created and lost_peers(error):  # another rank died: keep the checkpoints for --resume
            state.update(status="interrupted", elapsed=state.get("elapsed", 0.0) + time.monotonic() - started)
            bundle.write_json(run_dir / bundle.RUN_STATE, state)
        elif created:
            remove_unfinished(run_dir)
        raise
    return model


def model_of(outcome: automl.Outcome, cfg, source: str, seconds: float) -> Model:
    """The model of a finished run, with its manifest."""
    prep = outcome.prepared
    members = []
    for m, w, mid, transform in zip(outcome.blend.members, outcome.blend.weights, outcome.member_ids, outcome.transforms):
        entry = {"family": m.name, "id": mid, "dir": f"members/{mid}", "weight": w, "params": m.params.model_dump(mode="json")}
        if transform is not None:
            entry["target_transform"] = transform
        members.append(entry)
    manifest = {
        "takeoff_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": prep.task.to_json(),
        "schema": prep.schema.to_json(),
        "members": members,
        "threshold": outcome.threshold,
        "metrics": outcome.metrics,
        "member_scores": outcome.member_scores,
        "importance": outcome.importance,
        "findings": [f.to_json() for f in prep.findings],
        "training": {
            "source": source,
            "rows_train": len(prep.train),
            "rows_valid": len(prep.valid),
            "rows_dropped": prep.rows_dropped,
            "seconds": round(seconds, 2),
            **outcome.info,
        },
        "config": cfg.model_dump(mode="json"),
        "libraries": bundle.library_versions(),
    }
    if outcome.info.get("dp") is not None:  # the ε spent, from Opacus's accountant
        manifest.setdefault("privacy", {})["dp"] = outcome.info["dp"]
    return Model(manifest, prep.schema, prep.task, prep.pipeline, outcome.blend)


def _fairness(outcome: automl.Outcome, cfg) -> dict[str, Any] | None:
    """The fairness audit of the scored rows (and the threshold mitigation), or None."""
    import logging

    from takeoff.evaluation.fairness import audit_run

    prep = outcome.prepared
    if prep.sensitive is None or outcome.scored_rows is None or prep.task.is_multilabel:
        return None
    sensitive = prep.sensitive.iloc[outcome.scored_rows].reset_index(drop=True)
    result = audit_run(prep.task, outcome.valid_y, outcome.valid_pred, outcome.threshold, sensitive, cfg.fairness,
                       outcome.info.get("metric"), cfg.seed)
    log = logging.getLogger("takeoff")
    for warning in result["warnings"]:
        log.warning("fairness: %s", warning)
    if "mitigation" in result:
        cost = result["mitigation"]["cost"]
        log.info("fairness: threshold mitigation (%s): balanced accuracy %.4f → %.4f, demographic parity ratio "
                 "%.2f → %.2f", cfg.fairness.constraint, cost["before"]["balanced_accuracy"],
                 cost["after"]["balanced_accuracy"], cost["before"]["demographic_parity_ratio"] or 0,
                 cost["after"]["demographic_parity_ratio"] or 0)
    return result


def _scored_rows(outcome: automl.Outcome) -> str:
    folds = outcome.info.get("folds", 1)
    return f"out-of-fold predictions of {folds}-fold cross-validation" if folds > 1 else "validation split"


def _trust(model: Model, outcome: automl.Outcome, cfg) -> None:
    """What the model card and drift monitoring need, added to the model's manifest: metric
    intervals on the held-out predictions, the personal data found (and the redaction step),
    and the profile of the training rows and held-out predictions."""
    from takeoff.data.profile import prediction_profile
    from takeoff.evaluation.intervals import bootstrap

    prep = outcome.prepared
    manifest = model.manifest
    manifest["metrics_ci"] = bootstrap(prep.task, outcome.valid_y, outcome.valid_pred, outcome.threshold, seed=cfg.seed)
    redactor = prep.redactor
    manifest.setdefault("privacy", {})["pii"] = {
        "findings": [f.to_json() for f in prep.pii],
        "redaction": {"kinds": redactor.kinds, "columns": redactor.columns} if redactor is not None else None,
    }
    model.redactor = redactor
    if prep.profile is not None:
        manifest["profile"] = {**prep.profile, "prediction": prediction_profile(model.decide(outcome.valid_pred), prep.task)}
