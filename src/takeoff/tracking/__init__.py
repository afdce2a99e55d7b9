"""Tracking on MLflow: every ``train``, ``tune``, ``compress`` and ``evaluate`` run logs its
params, curves, final metrics, report and bundle (``./mlruns`` by default); ``takeoff runs``
reads them back; :func:`takeoff.mlflow.log_model` logs a bundle as an MLflow pyfunc model.
See docs/tracking.md. MLflow is imported only when a run is logged or read.
"""

from takeoff.tracking.record import record
from takeoff.tracking.runs import (compare_runs, list_runs, log_compress, log_evaluate, log_train, log_tune,
                                   show_run)
from takeoff.tracking.store import resolve_uri

__all__ = ["compare_runs", "list_runs", "log_compress", "log_evaluate", "log_train", "log_tune", "record",
           "resolve_uri", "show_run"]
