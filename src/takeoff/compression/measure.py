"""What a compression report compares: size on disk, CPU latency and the task metric.

Both bundles are measured in the same process, on the same rows, in alternating blocks, so the
ratios hold even when the machine's absolute speed drifts.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Latency: at least MIN_REPEATS timed calls, more while the per-setting time allows.
MIN_REPEATS = 5
MAX_REPEATS = 300
SECONDS_PER_SETTING = 4.0
ROUNDS = 4  # blocks per model and batch size, alternating between the models
BATCHES = (1, 64)

# Files that describe a bundle rather than being needed to predict with it.
NOT_MODEL_FILES = {"report.html", "compression.html", "compression.json", "explanation.html"}


@dataclass
class Measurement:
    """One bundle measured: bytes on disk, latency per batch size, and metrics."""

    name: str
    bytes: int
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # "1" -> {"p50", "p99", "repeats"}
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def bundle_bytes(path: Path) -> int:
    """Bytes of the files a bundle needs to predict (reports left out)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and f.name not in NOT_MODEL_FILES)


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as JSON-like records, the shape a server request carries (missing values → None)."""
    part = frame[columns].astype(object).where(frame[columns].notna(), None)
    return part.to_dict(orient="records")


def latency(models: list, rows: list[dict[str, Any]], batches: tuple[int, ...] = BATCHES,
            seconds: float = SECONDS_PER_SETTING, rounds: int = ROUNDS) -> list[dict[str, dict[str, float]]]:
    """Milliseconds from records to outputs (validation, features, model), p50 and p99 per
    batch size, for each of ``models``.

    The models take turns in blocks: ``rounds`` times, each model runs a block of calls over
    the same distinct batches cycled from ``rows`` (its first call untimed), so that a slow
    phase of the machine falls on all of them alike. Blocks rather than single calls: the
    thread pools of one runtime (ONNX Runtime's spin after a call; PyTorch's wake up) slow the
    call of another right after it, which serving one model per process never sees.
    """
    out: list[dict[str, dict[str, float]]] = [{} for _ in models]
    for size in batches:
        size = min(size, len(rows))
        starts = list(range(0, max(len(rows) - size, 0) + 1, size)) or [0]
        times: list[list[float]] = [[] for _ in models]
        block_seconds = seconds / rounds
        for round_ in range(rounds):
            for model, spent in zip(models, times):
                model.predict_features(model.features(rows[:size])[0])  # warm: lazy sessions, thread pools
                block_end = time.perf_counter() + block_seconds
                want = -(-MIN_REPEATS // rounds) * (round_ + 1)  # at least MIN_REPEATS over all rounds
                while len(spent) < want or (len(spent) < MAX_REPEATS * (round_ + 1) // rounds
                                            and time.perf_counter() < block_end):
                    start = starts[len(spent) % len(starts)]
                    batch = rows[start: start + size]
                    began = time.perf_counter()
                    model.predict_features(model.features(batch)[0])
                    spent.append((time.perf_counter() - began) * 1000)
        for found, spent in zip(out, times):
            found[str(size)] = {
                "p50": float(np.percentile(spent, 50)),
                "p99": float(np.percentile(spent, 99)),
                "repeats": len(spent),
            }
    return out


def metrics(model, frame: pd.DataFrame, y: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """The task's metrics on labelled rows, and the raw outputs."""
    from takeoff.evaluation.metrics import compute_metrics

    outputs, _ = model.predict_outputs(frame, where="the measurement rows")
    found = compute_metrics(model.task, y, outputs, model.threshold)
    found.pop("per_class", None)
    return found, outputs


def measure(models: dict[str, tuple[Any, Path]], frame: pd.DataFrame, y: np.ndarray, *,
            timed_rows: int = 512, seconds: float = SECONDS_PER_SETTING) -> list[Measurement]:
    """Size, latency (on up to ``timed_rows`` of ``frame``) and metrics of bundles, by name:
    ``{name: (model, path)}``."""
    first = next(iter(models.values()))[0]
    columns = [c.name for c in first.schema.features]
    rows = records(frame.iloc[:timed_rows], columns)
    timings = latency([m for m, _ in models.values()], rows, seconds=seconds)
    # without labels (rows drawn from the bundle), the metrics are not compared
    return [Measurement(name, bundle_bytes(path), timing, metrics(model, frame, y)[0] if y is not None else {})
            for (name, (model, path)), timing in zip(models.items(), timings)]
