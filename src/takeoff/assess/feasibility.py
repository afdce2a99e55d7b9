"""A founder's feasibility answer: is there signal, would more data help, is a simple model
enough, and what does serving cost?

:func:`assess` holds out a fixed part of the table (the run's validation split), then trains
quick models on 10%, 25%, 50% and 100% of the remaining rows (three seeded subsamples per
share below 100%): LightGBM with a small fixed budget (learning rate 0.1, early stopping on an
inner 15% of the subsample, never on the held-out part), and the linear family. It scores each
on the held-out part, fits a learning curve (:mod:`takeoff.assess.curve`) and says in words:

* **signal**: the score against a trivial baseline (the class prior, or the mean);
* **more data**: the curve fitted on 10-50% predicts the 100% score (a check of the curve),
  and the curve on all shares predicts what doubling the rows would give, with an interval;
* **simple model**: whether the linear model scores within a small tolerance of LightGBM;
* **serving cost**: the better model trained as a real bundle, its ONNX form (int8 weights
  where it has network layers), p50 latency of one row, rows per second in batches of 64,
  CPU-seconds per row, and CPU-hours and money per million predictions at a given price.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff.errors import ConfigError, DataError

log = logging.getLogger("takeoff")

FRACTIONS = (0.10, 0.25, 0.50, 1.0)
REPEATS = 3
MIN_ROWS_SMALLEST = 40  # training rows the 10% share needs (four per class at least, too)
DEFAULT_PRICE = 0.05  # USD per CPU-hour: about one on-demand cloud vCPU-hour in 2026
LGBM_PARAMS = {"learning_rate": 0.1, "max_rounds": 400, "early_stopping_rounds": 30}
INNER_VALID = 0.15


def assess(data, target: str, *, time_budget: float = 60.0, price_per_cpu_hour: float = DEFAULT_PRICE,
           seed: int = 0, metric: str | None = None, report: str | Path | None = None, serving: bool = True,
           table: str | None = None, sql: str | None = None, encoding: str | None = None) -> dict[str, Any]:
    """Answer "is this worth pursuing?" for predicting ``target`` from ``data``.

    Args:
        data: a path, SQLAlchemy URL (with ``table`` or ``sql``) or DataFrame.
        target: the column to predict.
        time_budget: seconds for the whole assessment (default 60): the learning-curve fits get
            most, the serving measurement the rest.
        price_per_cpu_hour: money per CPU-hour for the cost estimate (default 0.05, USD).
        seed: seeds the split, the subsamples and the bootstrap.
        metric: what to judge by (default: ROC AUC for binary, log loss for multiclass, RMSE
            for regression).
        report: an HTML file to write with the learning-curve chart, or None.
        serving: measure the serving cost (trains the candidate bundle and its ONNX form).

    Returns:
        A JSON-ready dict: ``metric``, ``baseline``, ``points`` (every fit), ``curve``,
        ``check`` (10-50% curve vs the 100% score), ``doubling``, ``simple``, ``serving``,
        and ``verdict`` (the sentences).

    Raises:
        DataError: too few rows for the smallest share (the message says how many are needed).
        ConfigError: a multilabel target, or a price or budget that is not positive.

    Example:
        >>> from takeoff.assess import assess
        >>> answer = assess("churn.csv", "churn", time_budget=60)
        >>> print("\\n".join(answer["verdict"]))
    """
    from takeoff.config import make_config
    from takeoff.evaluation.metrics import PRIMARY_METRIC, TASK_METRICS, greater_is_better
    from takeoff.pipelines.prediction.prepare import prepare
    from takeoff.pipelines.run_dir import read_data

    if time_budget <= 0 or price_per_cpu_hour < 0:
        raise ConfigError(f"--time-budget must be positive and --price-per-cpu-hour 0 or more; got {time_budget:g} "
                          f"and {price_per_cpu_hour:g}")
    started = time.monotonic()
    deadline = started + time_budget
    df, name = read_data(data, table, sql, encoding)
    cfg = make_config({"target": target, "seed": seed})
    prep = prepare(df, cfg, name)
    task = prep.task
    if task.is_multilabel:
        raise ConfigError("--assess handles binary, multiclass and regression targets; this one is multilabel")
    metric = metric or PRIMARY_METRIC[task.kind]
    if metric not in TASK_METRICS[task.kind]:
        raise ConfigError(f"metric '{metric}' does not apply to a {task.kind} task; use one of: "
                          f"{', '.join(TASK_METRICS[task.kind])}")
    sign = 1.0 if greater_is_better(metric) else -1.0
    n_train = len(prep.train)
    _check_rows(task, prep.train.y, n_train, len(df), name)

    # the learning curve: each fraction's fits get an even share of ~70% of the budget
    fits_budget = 0.6 * time_budget if serving else 0.95 * time_budget
    # one fit per share first, then the repeats: a short budget loses repeats, never a share
    plan = [(f, 0) for f in FRACTIONS] + [(f, r) for r in range(1, REPEATS) for f in FRACTIONS if f < 1.0]
    points = []
    for i, (fraction, repeat) in enumerate(plan):
        left = started + fits_budget - time.monotonic()
        if left <= 0 and repeat > 0:
            log.info("--assess: the time budget is spent; %d repeat fit(s) skipped (the interval is narrower for it)",
                     len(plan) - i)
            break
        share = max(left, 1.0) / (len(plan) - i)
        for family in ("lightgbm", "linear"):
            score, seconds = _fit_score(prep, family, fraction, seed + 1000 * repeat, metric, share / 2)
            points.append({"family": family, "fraction": fraction, "rows": int(round(fraction * n_train)),
                           "repeat": repeat, "score": score, "seconds": round(seconds, 2)})
    baseline = _baseline(prep, metric)
    result: dict[str, Any] = {"source": name, "target": target, "task": task.kind, "metric": metric,
                              "higher_is_better": sign > 0, "rows": {"train": n_train, "held_out": len(prep.valid)},
                              "baseline": baseline, "points": points}
    result["simple"] = _simple(points, sign, metric)
    result.update(_curves(points, sign, metric, n_train, seed, result["simple"]["best_family"]))
    result["signal"] = _signal(result, baseline, sign, metric)
    if serving:
        best = result["simple"]["best_family"]
        result["serving"] = _serving(df, cfg, best, prep, deadline, price_per_cpu_hour)
    result["verdict"] = _verdict(result, price_per_cpu_hour)
    result["seconds"] = round(time.monotonic() - started, 1)
    if report is not None:
        from takeoff.assess.page import write_assessment

        write_assessment(report, result)
        result["report"] = str(report)
    return result


# ------------------------------------------------------------------------------- checks
def _check_rows(task, y: np.ndarray, n_train: int, n_rows: int, name: str) -> None:
    smallest = int(math.floor(FRACTIONS[0] * n_train))
    needed = int(math.ceil(MIN_ROWS_SMALLEST / FRACTIONS[0] / 0.8))  # rows of the table, 20% held out
    if smallest < MIN_ROWS_SMALLEST:
        raise DataError(f"--assess needs at least {MIN_ROWS_SMALLEST} training rows in its smallest share "
                        f"({FRACTIONS[0]:.0%} of the rows left after holding out 20%), so about {needed} rows in "
                        f"all; {name} has {n_rows}. Fix: add rows, or train directly with `takeoff train`.")
    if task.is_classification:
        rare = int(np.bincount(y.astype(np.int64)).min())
        if rare * FRACTIONS[0] < 2:
            raise DataError(f"--assess: the rarest class has {rare} training rows, so the {FRACTIONS[0]:.0%} share would "
                            f"hold fewer than 2 of them. Fix: add rows of that class (at least {int(2 / FRACTIONS[0])}).",
                            column=task.target)


# ------------------------------------------------------------------------------- fits
def _subsample(prep, fraction: float, seed: int) -> np.ndarray:
    """Rows of a seeded share of the training split (stratified for classification)."""
    n = len(prep.train)
    if fraction >= 1.0:
        return np.arange(n)
    k = int(round(fraction * n))
    if prep.task.is_classification:
        from sklearn.model_selection import train_test_split

        rows, _ = train_test_split(np.arange(n), train_size=k, stratify=prep.train.y, random_state=seed)
        return np.sort(rows)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _fit_score(prep, family: str, fraction: float, seed: int, metric: str, seconds: float) -> tuple[float, float]:
    """Fit ``family`` on a share of the training rows (early stopping on an inner split of it)
    and score it on the held-out part."""
    from takeoff import registry
    from takeoff.data.split import train_valid_split
    from takeoff.evaluation.metrics import compute_metrics
    from takeoff.models.base import Dataset
    from takeoff.training.context import FitContext

    started = time.monotonic()
    rows = _subsample(prep, fraction, seed)
    X, y = prep.train.X.take(rows), prep.train.y[rows]
    fit_idx, stop_idx = train_valid_split(y, prep.task, INNER_VALID, seed)
    train = Dataset(X.take(fit_idx), y[fit_idx])
    inner = Dataset(X.take(stop_idx), y[stop_idx])
    params = LGBM_PARAMS if family == "lightgbm" else {}
    model = registry.get(family).create(prep.task, params)
    ctx = FitContext(deadline=time.monotonic() + max(seconds, 2.0), seed=seed, progress=False, warn=log.info)
    model.fit(train, inner, ctx)
    pred = np.asarray(model.predict(prep.valid.X), dtype=np.float64)
    score = float(compute_metrics(prep.task, prep.valid.y, pred)[metric])
    return score, time.monotonic() - started


def _baseline(prep, metric: str) -> float:
    """The metric of a constant prediction: the training class shares, or the training mean."""
    from takeoff.evaluation.metrics import compute_metrics

    task, n = prep.task, len(prep.valid)
    if task.is_classification:
        prior = np.bincount(prep.train.y.astype(np.int64), minlength=len(task.classes)) / len(prep.train)
        pred = np.tile(prior, (n, 1))
    else:
        pred = np.full(n, float(np.mean(prep.train.y)))
    value = compute_metrics(task, prep.valid.y, pred).get(metric)
    return float(value) if value is not None and np.isfinite(value) else (0.5 if metric == "roc_auc" else float("nan"))


# ------------------------------------------------------------------------------- curves
def _scores(points, family: str, fraction: float, sign: float) -> list[float]:
    return [sign * p["score"] for p in points if p["family"] == family and p["fraction"] == fraction]


def _upper(metric: str, sign: float) -> float | None:
    if metric in ("roc_auc", "pr_auc", "accuracy", "balanced_accuracy", "f1", "macro_f1", "micro_f1", "r2"):
        return 1.0
    return 0.0 if sign < 0 else None  # a negated loss or error is at most 0


def _curves(points, sign: float, metric: str, n_train: int, seed: int, family: str) -> dict[str, Any]:
    """The learning curve of ``family`` (the better model at 100%): fitted on 10-50% to check
    it against the 100% score, and on every share to predict twice the rows."""
    from takeoff.assess.curve import fit_curve

    fractions = [f for f in FRACTIONS if _scores(points, family, f, sign)]
    if fractions[-1] != 1.0 or len(fractions) < 4:
        return {"curve": None, "check": None, "doubling": None}
    rows = [int(round(f * n_train)) for f in fractions]
    scores = [_scores(points, family, f, sign) for f in fractions]
    if min(len(s) for s in scores[:3]) < 2:  # no repeats, no spread: an interval would be a point
        return {"curve": None, "check": None, "doubling": None,
                "curve_skipped": "the time budget left no repeated fits to measure the spread; raise --time-budget"}
    upper = _upper(metric, sign)
    partial = fit_curve(rows[:3], scores[:3], n_train, upper, seed)
    lo, hi = partial.interval(n_train)
    actual = float(np.mean(scores[3]))
    predicted = float(partial.predict(n_train))
    full = fit_curve(rows, scores, n_train, upper, seed)
    gain, gain_lo, gain_hi = full.gain(n_train)
    out_sign = 1.0 if sign > 0 else -1.0
    return {
        "curve": {"family": family, "a": full.a * out_sign, "b": full.b, "c": full.c, "rows": n_train,
                  "limit": full.a * out_sign,
                  "fitted": [{"rows": r, "score": float(full.predict(r)) * out_sign} for r in
                             np.unique(np.geomspace(rows[0], 2 * n_train, 24).round().astype(int)).tolist()],
                  "band": [{"rows": r, "low": out_sign * (min if out_sign > 0 else max)(full.interval(r)),
                            "high": out_sign * (max if out_sign > 0 else min)(full.interval(r))}
                           for r in np.unique(np.geomspace(rows[0], 2 * n_train, 24).round().astype(int)).tolist()]},
        "check": {"predicted": predicted * out_sign, "low": (lo if out_sign > 0 else -hi),
                  "high": (hi if out_sign > 0 else -lo), "actual": actual * out_sign, "inside": bool(lo <= actual <= hi),
                  "level": 0.9},
        "doubling": {"gain": gain, "low": gain_lo, "high": gain_hi, "rows": 2 * n_train,
                     "expected": float(full.predict(2 * n_train)) * out_sign},
    }


def _simple(points, sign: float, metric: str) -> dict[str, Any]:
    full = {f: float(np.mean([p["score"] for p in points if p["family"] == f and p["fraction"] == 1.0]))
            for f in ("lightgbm", "linear")}
    best = max(full, key=lambda f: sign * full[f])
    gap = sign * (full[best] - full["linear"])  # ≥ 0: how much the simple model trails
    tolerance = 0.005 if _upper(metric, sign) == 1.0 else 0.01 * abs(full[best])
    return {"scores": full, "best_family": best, "gap": gap, "tolerance": tolerance,
            "as_good": bool(gap <= tolerance)}


def _signal(result, baseline: float, sign: float, metric: str) -> dict[str, Any]:
    best = result["simple"]["scores"][result["simple"]["best_family"]]
    if not np.isfinite(baseline):
        return {"score": best, "baseline": baseline, "closed": None, "level": "unknown"}
    perfect = 1.0 if _upper(metric, sign) == 1.0 else 0.0
    gap = perfect - baseline
    closed = (best - baseline) / gap if gap != 0 else 0.0  # share of the way from the baseline to perfect
    level = "none" if closed < 0.05 else "weak" if closed < 0.2 else "moderate" if closed < 0.5 else "strong"
    return {"score": best, "baseline": baseline, "closed": float(closed), "level": level}


# ------------------------------------------------------------------------------- serving
def _serving(df: pd.DataFrame, cfg, family: str, prep, deadline: float, price: float) -> dict[str, Any]:
    """Train the candidate bundle, export it to ONNX (int8 where it has network weights) and
    measure both."""
    from takeoff.compression.compress import applicable, compress
    from takeoff.pipelines.prediction.train import train as train_bundle

    left = max(deadline - time.monotonic(), 10.0)
    with tempfile.TemporaryDirectory(prefix="takeoff-assess-") as scratch:
        scratch = Path(scratch)
        config = cfg.model_copy(update={"family": family, "time_budget": max(0.4 * left, 5.0), "refit": False,
                                        "folds": 1})
        model = train_bundle(df, config, scratch / "candidate")
        quantize = "int8" if "quantize" in applicable(model) else None
        sample = df.sample(min(len(df), 1000), random_state=cfg.seed)
        result = compress(model, sample, scratch / "onnx", onnx=True, quantize=quantize, measure_seconds=1.0,
                          seed=cfg.seed)
        from takeoff.api import load

        onnx_model = load(scratch / "onnx")
        rows = sample.drop(columns=[cfg.target]).head(512)
        out = {}
        for label, m, measured in (("bundle", model, result.original), ("onnx" + (" int8" if quantize else ""), onnx_model,
                                                                        result.compressed)):
            cpu = _cpu_per_row(m, rows)
            out[label] = {
                "p50_ms_one_row": measured.latency_ms["1"]["p50"],
                "rows_per_second": 64 / (measured.latency_ms["64"]["p50"] / 1000),
                "cpu_seconds_per_row": cpu,
                "cpu_hours_per_million": cpu * 1e6 / 3600,
                "cost_per_million": cpu * 1e6 / 3600 * price,
                "bytes": measured.bytes,
            }
    return {"family": family, "price_per_cpu_hour": price, "int8": quantize is not None, "forms": out,
            "note": "CPU time of predict calls in batches of 64 rows, this process, this machine"}


def _cpu_per_row(model, frame: pd.DataFrame, seconds: float = 1.0) -> float:
    """CPU-seconds per row of ``model.predict`` in batches of 64 (process CPU time, so every
    thread the runtime uses counts)."""
    from takeoff.compression.measure import records

    rows = records(frame, [c.name for c in model.schema.features])
    batches = [rows[i:i + 64] for i in range(0, len(rows), 64)] or [rows]
    model.predict_features(model.features(batches[0])[0])  # warm
    cpu0, wall_end, done = time.process_time(), time.perf_counter() + seconds, 0
    while time.perf_counter() < wall_end or done == 0:
        batch = batches[done % len(batches)]
        model.predict_features(model.features(batch)[0])
        done += 1
    n = sum(len(batches[i % len(batches)]) for i in range(done))
    return (time.process_time() - cpu0) / max(n, 1)


# ------------------------------------------------------------------------------- words
def _fmt(value: float, metric: str) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"


def _verdict(result: dict[str, Any], price: float) -> list[str]:
    metric = result["metric"]
    shown = metric.upper().replace("_", "-") if metric in ("roc_auc", "pr_auc", "rmse", "mae") else metric.replace("_", " ")
    lines = []
    s = result["signal"]
    levels = {"none": "no usable signal", "weak": "weak signal", "moderate": "moderate signal", "strong": "strong signal",
              "unknown": "signal (no baseline to compare)"}
    closed = f" (it closes {s['closed']:.0%} of the gap from the baseline to a perfect score)" if s["closed"] is not None else ""
    lines.append(f"Signal: {levels[s['level']]}. The best quick model scores {shown} {_fmt(s['score'], metric)} on "
                 f"{result['rows']['held_out']:,} held-out rows, against {_fmt(s['baseline'], metric)} for a constant "
                 f"guess{closed}.")
    check, doubling = result.get("check"), result.get("doubling")
    if result.get("curve_skipped"):
        lines.append(f"More data: no learning curve: {result['curve_skipped']}.")
    if doubling is not None:
        better = "raise" if result["higher_is_better"] else "lower"
        sign = 1 if result["higher_is_better"] else -1
        lo, hi = sorted((sign * doubling["low"], sign * doubling["high"]))
        gain = abs(doubling["gain"])
        if doubling["high"] <= _small(metric, s["score"]):
            lines.append(f"More data: doubling the rows ({result['rows']['train']:,} → {doubling['rows']:,}) is expected "
                         f"to change {shown} by {lo:+.4f} to {hi:+.4f}: the curve has flattened; more rows of the same "
                         "kind are unlikely to help much (new columns might).")
        else:
            lines.append(f"More data: doubling the rows ({result['rows']['train']:,} → {doubling['rows']:,}) is expected "
                         f"to {better} {shown} by {gain:.4f} ({result['curve']['family']}'s curve; 90% interval {abs(lo):.4f}–{abs(hi):.4f} in that "
                         "direction)." if lo * hi >= 0 else
                         f"More data: doubling the rows is expected to {better} {shown} by about {gain:.4f} "
                         f"(90% interval {lo:+.4f} to {hi:+.4f}).")
    if check is not None:
        lines.append(f"Curve check: fitted on 10–50% of the rows, the curve predicted {shown} {_fmt(check['predicted'], metric)} "
                     f"(interval {_fmt(check['low'], metric)}–{_fmt(check['high'], metric)}) at 100%; measured "
                     f"{_fmt(check['actual'], metric)} ({'inside' if check['inside'] else 'outside'} the interval).")
    simple = result["simple"]
    if simple["best_family"] == "linear" or simple["as_good"]:
        lines.append(f"Simple model: the linear model is as good ({shown} {_fmt(simple['scores']['linear'], metric)} vs "
                     f"LightGBM {_fmt(simple['scores']['lightgbm'], metric)}); prefer it: cheaper, easier to explain.")
    else:
        lines.append(f"Simple model: LightGBM is better by {simple['gap']:.4f} {shown} "
                     f"({_fmt(simple['scores']['lightgbm'], metric)} vs linear {_fmt(simple['scores']['linear'], metric)}).")
    serving = result.get("serving")
    if serving:
        forms = serving["forms"]
        parts = [f"{name}: p50 {f['p50_ms_one_row']:.2f} ms per single-row call, {f['rows_per_second']:,.0f} rows/s in "
                 f"batches of 64, {f['cpu_hours_per_million']:.2g} CPU-hours ≈ {f['cost_per_million']:.2g} per 1M "
                 "predictions" for name, f in forms.items()]
        lines.append(f"Serving ({serving['family']}, this machine, at {price:g} per CPU-hour): " + "; ".join(parts) + ".")
    return lines


def _small(metric: str, score: float) -> float:
    """A gain too small to matter: 0.002 on a [0, 1] score, 0.2% of an error or loss."""
    return 0.002 if metric in ("roc_auc", "pr_auc", "accuracy", "balanced_accuracy", "f1", "macro_f1", "r2") else 0.002 * abs(score)
