"""Log one takeoff run to MLflow: params, metrics (per epoch / boosting round with their step,
and final), tags, the report and the bundle as artifacts.

Everything is logged when the run has finished, in a few batched calls, so tracking costs the
training nothing while it runs. Tracking never makes a run fail: any problem (MLflow not
installed, a server that cannot be reached, a database that refuses) is one warning, and the
run's result stands.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from takeoff.tracking.store import client, reachable, redact, resolve_uri

log = logging.getLogger("takeoff")

MAX_PARAM = 6000  # characters MLflow keeps of a param value
BATCH = 1000  # MLflow's limit of metrics per log_batch call
MAX_STEPS = 2000  # a longer curve is thinned to about this many points


def record(kind: str, *, name: str, params: dict[str, Any], metrics: dict[str, Any],
           curves: dict[str, list[float]] | None = None, artifacts: dict[str, Path] | None = None,
           tags: dict[str, str] | None = None, uri: str | None = None) -> str | None:
    """Log a finished run of ``kind`` ("train", "tune", "compress", "evaluate").

    Args:
        name: the run's name (e.g. the bundle's folder name).
        params: flat name -> value (values are logged as text).
        metrics: flat name -> number; other values are left out.
        curves: series name -> one value per step (epoch or boosting round).
        artifacts: path in the run's artifacts -> a file or folder to copy there.
        tags: more tags (``takeoff.kind`` is always set).
        uri: the tracking URI (default: ``$MLFLOW_TRACKING_URI``, else ``./mlruns``).

    Returns:
        The MLflow run id, or None when tracking failed (after one warning).
    """
    uri = resolve_uri(uri)
    problem = reachable(uri)
    if problem is not None:
        log.warning("tracking: %s cannot be reached (%s); this %s run is not tracked", redact(uri), problem, kind)
        return None
    try:
        return _record(kind, name, params, metrics, curves or {}, artifacts or {}, tags or {}, uri)
    except ImportError as exc:
        log.warning("tracking needs MLflow (%s): pip install 'takeoff[track]', or pass --no-track", exc)
    except Exception as exc:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        log.warning("tracking to %s failed (%s: %s); the %s run itself succeeded", redact(uri), type(exc).__name__,
                    reason, kind)
    return None


def _record(kind, name, params, metrics, curves, artifacts, tags, uri) -> str:
    from mlflow.entities import Metric, Param

    c, experiment = client(uri)
    run = c.create_run(experiment, run_name=name, tags={"takeoff.kind": kind, **tags})
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        entries = [Metric(k, float(v), now, 0) for k, v in metrics.items() if _number(v)]
        for key, values in curves.items():
            step = max(1, len(values) // MAX_STEPS)
            entries += [Metric(key, float(v), now, i) for i, v in enumerate(values) if i % step == 0 and _number(v)]
        plain = [Param(k, str(v)[:MAX_PARAM]) for k, v in params.items() if v is not None]
        for i in range(0, len(plain), 100):
            c.log_batch(run_id, params=plain[i:i + 100])
        for i in range(0, len(entries), BATCH):
            c.log_batch(run_id, metrics=entries[i:i + BATCH])
        for where, path in artifacts.items():
            path = Path(path)
            if path.is_dir():
                c.log_artifacts(run_id, str(path), where)
            elif path.is_file():
                parent = str(Path(where).parent) if str(Path(where).parent) != "." else None
                c.log_artifact(run_id, str(path), parent)
        c.set_terminated(run_id)
    except BaseException:
        try:
            c.set_terminated(run_id, status="FAILED")
        finally:
            raise
    log.info("tracked as MLflow run %s in %s", run_id, redact(uri))
    return run_id


def _number(v: Any) -> bool:
    import math

    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``a.b.c`` keys (lists kept as values)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for k, v in value.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flatten(v, key) if isinstance(v, dict) else {key: v})
    return out
