"""Drift of a served model's inputs and predictions over a rolling window of requests.

Each request's rows, as the model sees them (conformed, redacted), are binned against the
training profile saved in the bundle (:mod:`takeoff.data.profile`); the window keeps the bins
of the last ``window`` rows per column. Every ``every`` rows the PSI of each column (and of
the predictions) is set on the gauge ``takeoff_drift_psi{model, column}`` of ``/metrics``, and a
column whose PSI crosses the threshold is logged as a warning (once, until it falls back).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import numpy as np

from takeoff.data.profile import THRESHOLDS, bin_codes, compare_counts, expected_shares, flag

log = logging.getLogger("takeoff.serving")

WINDOW = 1000  # rows per column in the rolling window
EVERY = 50  # rows between two updates of the gauges
MIN_ROWS = 100  # rows in the window before a warning is logged
PREDICTION = "(prediction)"  # the gauge label of the predictions' drift


class _Column:
    def __init__(self, stats: dict[str, Any], window: int):
        self.stats = stats
        self.width = len(expected_shares(stats))
        self.codes: deque[int] = deque(maxlen=window)
        self.counts = np.zeros(self.width + 1, dtype=np.int64)  # the last slot counts missing values
        self.pending: list[np.ndarray] = []  # values not binned yet

    def flush(self) -> None:
        """Bin the pending values (vectorised, once per ``every`` rows) into the window."""
        if not self.pending:
            return
        values = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending = []
        for code in bin_codes(self.stats, values)[-self.codes.maxlen:].tolist():
            slot = code if code >= 0 else self.width
            if len(self.codes) == self.codes.maxlen:
                self.counts[self.codes[0]] -= 1
            self.codes.append(slot)
            self.counts[slot] += 1

    def result(self) -> dict[str, Any]:
        return flag(compare_counts(self.stats, self.counts[:-1].astype(np.float64), int(self.counts[-1])))


class DriftWindow:
    """The rolling drift statistics of one served model (thread-safe).

    A request only appends its columns to a pending list (microseconds); every ``every`` rows
    the pending values are binned at once and the gauges updated.
    """

    def __init__(self, name: str, profile: dict[str, Any], gauge, window: int = WINDOW, every: int = EVERY,
                 psi_threshold: float = THRESHOLDS["psi"]):
        self.name, self.gauge, self.every = name, gauge, every
        self.threshold = psi_threshold
        self.columns = {c: _Column(s, window) for c, s in profile.get("columns", {}).items()}
        if profile.get("prediction"):
            self.columns[PREDICTION] = _Column(profile["prediction"], window)
        self.pending = 0
        self.flagged: set[str] = set()
        self.lock = threading.Lock()

    def observe(self, columns) -> None:
        """Add a batch of conformed rows (a DataFrame or a dict of arrays)."""
        rows = 0
        with self.lock:
            for name, column in self.columns.items():
                if name != PREDICTION and name in columns:
                    values = columns[name]
                    column.pending.append(values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values))
                    rows = len(values)
            self.pending += rows
            if self.pending >= self.every:
                self.pending = 0
                self.update()

    def observe_predictions(self, predictions) -> None:
        """Add the decided predictions (labels, or values) of a batch."""
        column = self.columns.get(PREDICTION)
        if column is not None:
            with self.lock:
                column.pending.append(np.asarray(predictions))

    def update(self) -> dict[str, dict[str, Any]]:
        """Bin what is pending, set the gauges from the window, and log the columns that cross
        the threshold (call with the lock held)."""
        results = {}
        for name, column in self.columns.items():
            column.flush()
            result = column.result()
            results[name] = result
            if result.get("psi") is None:
                continue
            self.gauge.labels(self.name, name).set(result["psi"])
            drifted = result["psi"] >= self.threshold and len(column.codes) >= MIN_ROWS
            if drifted and name not in self.flagged:
                self.flagged.add(name)
                log.warning("model '%s': %s drifted over the last %d rows (PSI %.3f ≥ %g). Compare a sample of recent "
                            "rows with the training profile: takeoff monitor BUNDLE recent.csv",
                            self.name, "the predictions" if name == PREDICTION else f"column '{name}'",
                            len(column.codes), result["psi"], self.threshold)
            elif not drifted and name in self.flagged and result["psi"] < self.threshold:
                self.flagged.discard(name)
                log.info("model '%s': %s is back under the drift threshold (PSI %.3f)", self.name,
                         "the predictions" if name == PREDICTION else f"column '{name}'", result["psi"])
        return results
