"""What each takeoff command logs (:func:`log_train`, :func:`log_tune`, :func:`log_compress`,
:func:`log_evaluate`), and reading the runs back (``takeoff runs list | show | compare``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from takeoff.errors import ConfigError
from takeoff.tracking.record import flatten, record
from takeoff.tracking.store import client, redact, resolve_uri

CONFIG_KEYS = ("target", "task", "family", "time_budget", "seed", "metric", "folds", "valid_fraction", "refit", "blend")


def model_params(model) -> dict[str, Any]:
    """A prediction model's run settings and its members' params, flat."""
    m = model.manifest
    cfg = m.get("config", {})
    params = {f"config.{k}": cfg.get(k) for k in CONFIG_KEYS if k in cfg}
    params["data"] = m.get("training", {}).get("source")
    for member in m.get("members", []):
        mid = member.get("id", member.get("family"))
        params[f"members.{mid}.weight"] = round(float(member.get("weight", 0.0)), 4)
        params.update(flatten(member.get("params", {}), f"members.{mid}"))
    return params


def model_curves(model) -> dict[str, list[float]]:
    """Each member's learning curves (one value per epoch / boosting round)."""
    curves = {}
    blend = getattr(model, "blend", None)
    ids = [mm.get("id", mm.get("family")) for mm in model.manifest.get("members", [])]
    for mid, member in zip(ids, getattr(blend, "members", [])):
        for series, values in (getattr(getattr(member, "report", None), "history", None) or {}).items():
            curves[f"{mid}.{series}"] = list(values)
    return curves


def _metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in flatten(metrics).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _bundle_artifacts(path: Path | None) -> dict[str, Path]:
    if path is None:
        return {}
    path = Path(path)
    found = {"bundle": path}
    if (path / "report.html").is_file():
        found["report.html"] = path / "report.html"
    return found


def log_train(model, uri: str | None = None) -> str | None:
    """Log a finished ``takeoff train`` run (a prediction model, or a recommender)."""
    m = model.manifest
    training = m.get("training", {})
    metrics = {**_metrics(model.metrics), "seconds": training.get("seconds")}
    name = Path(model.path).name if model.path else "train"
    return record("train", name=name, params=model_params(model), metrics=metrics, curves=model_curves(model),
                  artifacts=_bundle_artifacts(model.path), tags={"takeoff.task": str(m.get("task", {}).get("kind", ""))},
                  uri=uri)


def log_tune(result, cfg, uri: str | None = None) -> str | None:
    """Log a ``takeoff tune`` run: the search's settings and outcome, each trial's score as a
    curve (step = trial number), and the refitted bundle."""
    study = result.study
    metric = study.user_attrs.get("metric", "score")
    from takeoff.tuning.report import trial_rows

    rows = trial_rows(study, metric)
    params = {"study": study.study_name, "storage": redact(result.storage), "trials": len(rows),
              "metric": metric, "families": ",".join(study.user_attrs.get("families", [])),
              **{f"config.{k}": getattr(cfg, k) for k in CONFIG_KEYS}}
    best = study.best_trial
    params.update({f"best.{k}": v for k, v in best.params.items()})
    metrics = {"best_trial": best.number, f"best_{metric}": rows[best.number][metric] if best.number < len(rows) else None,
               "trials_complete": sum(r["state"] == "complete" for r in rows),
               "trials_pruned": sum(r["state"] == "pruned" for r in rows)}
    curves = {f"trial_{metric}": [r[metric] if r[metric] is not None else float("nan") for r in rows]}
    artifacts = {}
    if result.model is not None:
        metrics.update(_metrics(result.model.metrics))  # the refitted bundle's, as a train run logs them
        curves.update(model_curves(result.model))
        artifacts = _bundle_artifacts(result.model.path)
    return record("tune", name=study.study_name, params=params, metrics=metrics, curves=curves, artifacts=artifacts, uri=uri)


def log_compress(result, source: Path, options: dict[str, Any], uri: str | None = None) -> str | None:
    """Log a ``takeoff compress`` run: the options, both measurements, the new bundle."""
    data = result.to_json()
    metrics = _metrics({k: v for k, v in data.items() if k in ("original", "compressed", "ratios")})
    params = {"source": str(source), **{k: v for k, v in options.items() if v not in (None, False)}}
    artifacts = _bundle_artifacts(result.path)
    if (Path(result.path) / "compression.html").is_file():
        artifacts["compression.html"] = Path(result.path) / "compression.html"
    return record("compress", name=Path(result.path).name, params=params, metrics=metrics, artifacts=artifacts, uri=uri)


def log_evaluate(bundle: Path, data: str, metrics: dict[str, Any], report: Path | None, uri: str | None = None) -> str | None:
    """Log a ``takeoff evaluate`` run: the bundle and data evaluated, the metrics, the report."""
    artifacts = {"report.html": Path(report)} if report else {}
    return record("evaluate", name=f"{Path(bundle).name} on {Path(str(data)).name}",
                  params={"bundle": str(Path(bundle).resolve()), "data": str(data)}, metrics=_metrics(metrics),
                  artifacts=artifacts, uri=uri)


# ---- reading runs back ----------------------------------------------------------------------


def list_runs(uri: str | None = None, limit: int = 20, kind: str | None = None) -> list[dict[str, Any]]:
    """The latest runs of the takeoff experiment, newest first."""
    c, experiment = _reader(uri)
    if experiment is None:
        return []
    where = f"tags.`takeoff.kind` = '{kind}'" if kind else ""
    runs = c.search_runs([experiment], filter_string=where, max_results=limit, order_by=["attributes.start_time DESC"])
    return [_summary(r) for r in runs]


def show_run(run_id: str, uri: str | None = None) -> dict[str, Any]:
    """One run in full: its summary, params, final metrics, the steps of each curve and its
    artifacts.

    Raises:
        ConfigError: no run with that id (or id prefix) in the store.
    """
    c, _ = _reader(uri)
    run = _find(c, run_id, uri)
    out = _summary(run)
    out["params"] = dict(sorted(run.data.params.items()))
    out["metrics"] = dict(sorted(run.data.metrics.items()))
    out["artifacts"] = [a.path for a in c.list_artifacts(run.info.run_id)]
    return out


def compare_runs(a: str, b: str, uri: str | None = None) -> dict[str, Any]:
    """Two runs side by side: the params that differ and every final metric of either."""
    left, right = show_run(a, uri), show_run(b, uri)
    keys = sorted(set(left["params"]) | set(right["params"]))
    params = {k: (left["params"].get(k), right["params"].get(k)) for k in keys
              if left["params"].get(k) != right["params"].get(k)}
    names = sorted(set(left["metrics"]) | set(right["metrics"]))
    metrics = {k: (left["metrics"].get(k), right["metrics"].get(k)) for k in names}
    return {"runs": [left["run_id"], right["run_id"]], "names": [left["name"], right["name"]],
            "params": params, "metrics": metrics}


def _reader(uri: str | None):
    return client(resolve_uri(uri), create=False)


def _find(c, run_id: str, uri: str | None):
    try:
        return c.get_run(run_id)
    except Exception:
        pass
    _, experiment = _reader(uri)
    if experiment is not None:  # an id prefix, as `runs list` prints them
        matches = [r for r in c.search_runs([experiment], max_results=5000) if r.info.run_id.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
    raise ConfigError(f"no tracked run '{run_id}' in {redact(resolve_uri(uri))}. Fix: pick one from `takeoff runs list`.")


def _summary(run) -> dict[str, Any]:
    from datetime import datetime, timezone

    info = run.info
    start = datetime.fromtimestamp(info.start_time / 1000, timezone.utc).isoformat(timespec="seconds") if info.start_time else None
    return {"run_id": info.run_id, "name": info.run_name, "kind": run.data.tags.get("takeoff.kind", ""),
            "status": info.status.lower(), "start": start, "metrics": dict(run.data.metrics)}
