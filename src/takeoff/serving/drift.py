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

    def add(self, codes: np.ndarray) -> None:
        for code in codes[-self.codes.maxlen:].tolist():
            slot = code if code >= 0 else self.width
            if len(self.codes) == self.codes.maxlen:
                self.counts[self.codes[0]] -= 1
            self.codes.append(slot)
            self.counts[slot] += 1

    def result(self) -> dict[str, Any]:
        return flag(compare_counts(self.stats, self.counts[:-1].astype(np.float64), int(self.counts[-1])))


class DriftWindow:
    """The rolling drift statistics of one served model (thread-safe)."""

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
        with self.lock:
            rows = 0
            for name, column in self.columns.items():
                if name != PREDICTION and name in columns:
                    values = columns[name]
                    column.add(bin_codes(column.stats, values))
                    rows = len(values)
            self._tick(rows)

    def observe_predictions(self, predictions) -> None:
        """Add the decided predictions (labels, or values) of a batch."""
        column = self.columns.get(PREDICTION)
        if column is not None:
            with self.lock:
                column.add(bin_codes(column.stats, np.asarray(predictions, dtype=object)))

    def _tick(self, rows: int) -> None:
        self.pending += rows
        if self.pending >= self.every:
            self.pending = 0
            self.update()

    def update(self) -> dict[str, dict[str, Any]]:
        """Set the gauges from the window; log the columns that cross the threshold."""
        results = {}
        for name, column in self.columns.items():
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
