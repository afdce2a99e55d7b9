"""``takeoff compress``: a smaller or faster bundle, and a report of what it cost.

Steps run in a fixed order, each on the result of the one before: distillation (a new, smaller
model trained on the original's outputs) → pruning → ONNX export → int8 quantization. The
original and the compressed bundle are then measured in the same run, on the same labelled
rows: file size, CPU latency at batch 1 and 64, and the task's metrics with their deltas.

Which rows: when ``data`` is the table the bundle was trained on (same row count after the
target filter), its validation split is re-created from the bundle's seed and used for
measuring, and its training split for fitting (distillation, the fine-tune after pruning).
Any other labelled table is measured whole; steps that fit split it 80/20 first.

Without ``data``, ONNX export and quantization (which fit nothing) run on rows drawn from what
the bundle keeps of its training data (each number's range, each category's vocabulary): the
parity check and the latencies are measured on them, the metrics are not compared.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff import registry
from takeoff.compression.measure import Measurement, measure
from takeoff.errors import ConfigError, DataError, UnknownNameError

log = logging.getLogger("takeoff")

QUANTIZE_KINDS = ("int8",)
OWN_SPLIT_VALID = 0.2


@dataclass
class Rows:
    """The labelled rows a compression run fits on and measures on."""

    fit: pd.DataFrame
    fit_y: np.ndarray
    measure: pd.DataFrame
    measure_y: np.ndarray | None  # None: rows drawn from the bundle, without labels
    how: str


@dataclass
class CompressionResult:
    """The new bundle, both measurements and what each step did."""

    path: Path
    original: Measurement
    compressed: Measurement
    steps: list[dict[str, Any]] = field(default_factory=list)
    rows: str = ""

    def ratios(self) -> dict[str, float]:
        """original / compressed: above 1 means smaller or faster."""
        out = {"size": self.original.bytes / max(self.compressed.bytes, 1)}
        for batch, times in self.original.latency_ms.items():
            new = self.compressed.latency_ms.get(batch)
            if new:
                out[f"speed_b{batch}_p50"] = times["p50"] / max(new["p50"], 1e-9)
        return out

    def deltas(self) -> dict[str, float]:
        """compressed − original, per metric both have."""
        return {k: float(self.compressed.metrics[k] - v) for k, v in self.original.metrics.items()
                if isinstance(v, (int, float)) and isinstance(self.compressed.metrics.get(k), (int, float))}

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.path),
            "rows": self.rows,
            "steps": self.steps,
            "original": self.original.to_json(),
            "compressed": self.compressed.to_json(),
            "ratios": self.ratios(),
            "metric_deltas": self.deltas(),
        }


def applicable(model) -> dict[str, str]:
    """Which methods apply to ``model`` and why (method → reason); missing = not applicable."""
    families = _families(model)
    out = {"distill": "any table model can teach a smaller student"}
    if model.manifest.get("runtime") == "onnx":
        return out | {"quantize": "the bundle already runs on ONNX Runtime"} if _has_neural(model) else out
    if all(_declares(f, "exports_onnx") for f in families):
        out["onnx"] = f"every member ({', '.join(families)}) exports to ONNX"
    if any(_declares(f, "quantizes_int8") for f in families) and "onnx" in out:
        out["quantize"] = ("int8 weights for the network members ("
                           + ", ".join(f for f in families if _declares(f, "quantizes_int8")) + ")")
    if any(_declares(f, "prunable") for f in families):
        out["prune"] = "weights (networks) or trailing trees (LightGBM)"
    return out


def _families(model) -> list[str]:
    return [m["family"] for m in model.manifest.get("members", [])]


def _declares(family: str, capability: str) -> bool:
    """Whether the family named ``family`` declares ``capability`` (False when unknown here)."""
    try:
        return bool(getattr(registry.get(family), capability, False))
    except UnknownNameError:
        return False


def _has_neural(model) -> bool:
    return any(_declares(f, "quantizes_int8") for f in _families(model))


def compress(
    bundle,
    data,
    out: str | Path,
    *,
    onnx: bool = False,
    quantize: str | None = None,
    prune: float | None = None,
    structured: bool = False,
    distill: str | None = None,
    unlabeled=None,
    eval_data=None,
    time_budget: float = 120.0,
    seed: int = 0,
    tolerance: float = 1e-4,
    table: str | None = None,
    sql: str | None = None,
    encoding: str | None = None,
    measure_seconds: float = 4.0,
) -> CompressionResult:
    """Compress a bundle into ``out`` and measure it against the original.

    A generate bundle (a causal language model) takes ``quantize="int8"`` only, measured on
    held-out pairs (``eval_data`` or ``data``): see :mod:`takeoff.compression.generate`.

    Args:
        bundle: a bundle path or a loaded model (:class:`~takeoff.api.Model`, a generate model).
        data: labelled rows (a path, URL or DataFrame holding the target column); None for an
            ONNX export or quantization alone: rows are then drawn from the bundle (see above).
        onnx: export the whole pipeline to one ONNX graph (``runtime: onnx``).
        quantize: ``"int8"``: dynamic int8 weights for the network members (implies ``onnx``).
        prune: share of weights (networks) or of trailing trees (LightGBM) to remove, in (0, 1).
        structured: prune whole hidden units (mlp), which shrinks the matrices, instead of
            single weights.
        distill: a family name: train that family on the bundle's outputs (the student
            replaces the bundle's members).
        unlabeled: extra rows without the target for distillation (path or DataFrame).
        eval_data: labelled rows to measure on (a held-out table); ``data`` is then used
            whole for fitting.
        time_budget: seconds for the fitting steps (distillation, the fine-tune after pruning).
        tolerance: the largest ONNX-vs-original output difference accepted (fp32 export).

    Raises:
        ConfigError: no method asked for, or one that does not apply to this bundle (the
            message lists the ones that do).
        DataError: ``data`` lacks the target or the model's columns (as predict says).
    """
    from takeoff.api import load
    from takeoff.pipelines.run_dir import read_data

    model = load(bundle) if isinstance(bundle, (str, Path)) else bundle
    source = Path(model.path) if model.path is not None else None
    if model.manifest.get("task", {}).get("kind") == "generate":
        out = _fresh_out(out, source)
        from takeoff.compression.generate import compress_generate

        return compress_generate(model, out, data=data, eval_data=eval_data, table=table, sql=sql, encoding=encoding,
                                 onnx=onnx, quantize=quantize, prune=prune, structured=structured, distill=distill,
                                 unlabeled=unlabeled)
    if getattr(model, "task", None) is not None and model.task.is_multilabel:
        raise ConfigError(f"{source} is a multilabel bundle; compress handles binary, multiclass and regression bundles "
                          "(ONNX export, quantization, pruning and distillation of per-label models are not built). "
                          "Fix: serve this bundle as it is.")
    if getattr(model, "task", None) is None or model.task.kind not in ("binary", "multiclass", "regression"):
        raise ConfigError("compress works on table models (classification or regression); "
                          f"{source} is a {model.manifest.get('task', {}).get('kind')} bundle")
    if quantize is not None:
        if quantize not in QUANTIZE_KINDS:
            raise ConfigError(f"--quantize {quantize!r} is not supported; choose one of: {', '.join(QUANTIZE_KINDS)}")
        onnx = True
    if not (onnx or prune or distill):
        raise ConfigError("nothing to do: pass at least one of --onnx, --quantize int8, --prune AMOUNT, --distill FAMILY. "
                          + _describe_applicable(model))
    if prune is not None and not 0 < prune < 1:
        raise ConfigError(f"--prune must be a share between 0 and 1 (exclusive); got {prune}")
    out = _fresh_out(out, source)
    _check_methods(model, onnx=onnx, quantize=quantize, prune=prune, structured=structured, distill=distill)

    if data is None and eval_data is None:
        if prune or distill:
            raise ConfigError("--prune and --distill fit on labelled rows: pass the training table with --data")
        rows = drawn_rows(model, seed)
    else:
        df, name = read_data(data if data is not None else eval_data, table, sql, encoding)
        held_out = read_data(eval_data, encoding=encoding) if eval_data is not None and data is not None else None
        rows = split_rows(model, df, name, needs_fit=bool(prune or distill), seed=seed, held_out=held_out)
    extra = None
    if unlabeled is not None:
        extra, _ = read_data(unlabeled)
    deadline = time.monotonic() + time_budget
    steps: list[dict[str, Any]] = []

    with tempfile.TemporaryDirectory(prefix="takeoff-compress-") as scratch:
        scratch = Path(scratch)
        if source is None:
            source = model.save(scratch / "original")
        current = model
        if distill:
            from takeoff.compression.distill import distill as run_distill

            current, info = run_distill(current, distill, rows, extra, deadline, seed)
            steps.append(info)
        if prune:
            from takeoff.compression.prune import prune as run_prune

            current, info = run_prune(current, prune, structured, rows, deadline, seed)
            steps.append(info)
        stage = scratch / "stage"
        if onnx:
            if current.manifest.get("runtime") == "onnx":
                stage = source
            else:
                from takeoff.compression.onnx import write_onnx_bundle

                started = time.monotonic()
                current = write_onnx_bundle(current, stage, frame=rows.measure.head(512), tolerance=tolerance)
                steps.append({"step": "onnx", "seconds": round(time.monotonic() - started, 2),
                              "max_abs_diff": current.manifest.get("onnx", {}).get("max_abs_diff")})
            if quantize:
                from takeoff.compression.quantize import quantize_bundle

                current, info = quantize_bundle(current, scratch / "quantized", quantize)
                steps.append(info)
                stage = scratch / "quantized"
        else:
            current.save(stage)
            current = load(stage)
        original, compressed = measure({"original": (model, source), "compressed": (current, stage)},
                                       rows.measure, rows.measure_y, seconds=measure_seconds)
        result = CompressionResult(out, original, compressed, steps, rows.how)
        _finish(stage, out, result, source)
    log.info("compressed bundle written to %s", out)
    return result


def _fresh_out(out: str | Path, source: Path | None) -> Path:
    out = Path(out)
    if source is not None and out.resolve() == source.resolve():
        raise ConfigError("--out must differ from the bundle being compressed")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output directory {out} already exists and is not empty. Fix: choose another --out, or remove it.")
    return out


def _describe_applicable(model) -> str:
    methods = applicable(model)
    return "For this bundle: " + "; ".join(f"{k}: {v}" for k, v in methods.items()) + "."


def _check_methods(model, *, onnx, quantize, prune, structured, distill) -> None:
    families = _families(model)
    onnx_runtime = model.manifest.get("runtime") == "onnx"
    if onnx_runtime and (prune or distill or (onnx and not quantize)):
        raise ConfigError(f"{model.path} is already an ONNX bundle: compress the original bundle instead "
                          "(an ONNX bundle can only be quantized)")
    if onnx and not onnx_runtime:
        blocked = [f for f in families if not _declares(f, "exports_onnx")]
        if blocked and not distill:
            raise ConfigError(
                f"ONNX export does not apply to member(s) {', '.join(blocked)}; families that export: "
                f"{', '.join(registry.capable('exports_onnx'))}. Fix: distill into one of them first (--distill mlp), "
                "or drop --onnx. " + _describe_applicable(model))
    if quantize and not distill and not any(_declares(f, "quantizes_int8") for f in families):
        raise ConfigError(
            f"int8 quantization applies to network members ({', '.join(registry.capable('quantizes_int8'))}); this bundle has "
            f"{', '.join(families)}, whose ONNX graph has no weight matrices to quantize. Fix: use --onnx alone, "
            "or --prune for trees. " + _describe_applicable(model))
    if prune and not distill and not any(_declares(f, "prunable") for f in families):
        raise ConfigError(f"pruning applies to {', '.join(registry.capable('prunable'))}; this bundle has {', '.join(families)}. "
                          + _describe_applicable(model))
    if structured and not prune:
        raise ConfigError("--structured goes with --prune AMOUNT")
    if distill:
        cls = registry.get(distill)  # lists the valid names when unknown
        if model.task.kind not in cls.tasks:
            raise ConfigError(f"student family '{distill}' does not do {model.task.kind}; it does: {', '.join(cls.tasks)}")
        from takeoff.data.schema import Kind

        if cls.needs_text and not model.schema.names(Kind.TEXT):
            raise ConfigError(f"student family '{distill}' reads free text, and this bundle has no text column")


def split_rows(model, df: pd.DataFrame, name: str, *, needs_fit: bool, seed: int,
               held_out: tuple[pd.DataFrame, str] | None = None) -> Rows:
    """The rows to fit on and to measure on (see the module docstring)."""
    from takeoff.data.split import train_valid_split

    df, y = _labelled(model, df, name)
    if held_out is not None:
        measure_df, measure_y = _labelled(model, *held_out)
        return Rows(df, y, measure_df, measure_y, f"{held_out[1]}: all {len(measure_df)} rows (fitting on {name})")
    training = model.manifest.get("training", {})
    config = model.manifest.get("config", {})
    trained_rows = (training.get("rows_train") or 0) + (training.get("rows_valid") or 0)
    if trained_rows == len(df) and "valid_fraction" in config:
        fit_idx, valid_idx = train_valid_split(y, model.task, config["valid_fraction"], config.get("seed", 0))
        how = f"{name}: the bundle's validation split ({len(valid_idx)} rows) re-created from its seed"
        if training.get("refitted"):
            how += (f"; {', '.join(training['refitted'])} were refitted on all rows, so the original's metrics "
                    "here are optimistic: pass a held-out table (--eval) for fair deltas")
    elif needs_fit:
        fit_idx, valid_idx = train_valid_split(y, model.task, OWN_SPLIT_VALID, seed)
        how = f"{name}: {len(valid_idx)} rows held out for measuring, {len(fit_idx)} for fitting"
    else:
        fit_idx, valid_idx = np.arange(0), np.arange(len(df))
        how = f"{name}: all {len(df)} rows"
    return Rows(df.iloc[fit_idx].reset_index(drop=True), y[fit_idx],
                df.iloc[valid_idx].reset_index(drop=True), y[valid_idx], how)


DRAWN_ROWS = 256


def drawn_rows(model, seed: int, n: int = DRAWN_ROWS) -> Rows:
    """Unlabelled rows drawn from what the bundle keeps of its training data: numbers uniform
    over their training range (or around their mean and spread, for bundles that predate the
    range), categories from their vocabulary, a few missing values; for the parity check and
    the latencies of an export that fits nothing.

    Raises:
        ConfigError: the inputs include text, images or dates, which the bundle keeps no
            sample of (pass ``data``).
    """
    from takeoff.data.schema import Kind

    kept = {Kind.NUMERIC, Kind.BOOLEAN, Kind.CATEGORICAL}
    others = [c.name for c in model.schema.features if c.kind not in kept]
    if others:
        raise ConfigError(f"without --data, compress draws rows from the bundle's numbers and categories; column(s) "
                          f"{', '.join(others[:5])} hold text, images or dates. Fix: pass rows with --data.")
    rng = np.random.default_rng(seed)
    pipeline, columns = model.pipeline, {}
    for column in model.schema.features:
        stats = pipeline.numeric.get(column.name, {})
        if column.kind == Kind.CATEGORICAL:
            vocabulary = pipeline.categories.get(column.name) or ["a"]
            values = rng.choice(np.asarray(vocabulary, dtype=object), n).astype(object)
        elif column.kind == Kind.BOOLEAN:
            values = rng.integers(0, 2, n).astype(np.float64)
        elif "max" in stats:
            values = rng.uniform(stats["min"], stats["max"], n)
        else:
            values = rng.normal(stats.get("mean", 0.0), stats.get("std", 1.0), n)
        values = pd.Series(values, dtype=object if column.kind == Kind.CATEGORICAL else np.float64)
        values[rng.random(n) < 0.05] = None  # missing values take their own path through the graph
        columns[column.name] = values
    frame = pd.DataFrame(columns)
    how = (f"{n} rows drawn from the bundle's training ranges and categories (no --data: metrics not compared; "
           "pass --data to compare them)")
    return Rows(frame.iloc[:0], np.zeros(0), frame, None, how)


def _labelled(model, df: pd.DataFrame, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows with a target value the model knows, and their encoded target."""
    from takeoff.data.schema import require_columns

    target = model.task.target
    require_columns(df, [target], name, role="target column (compress measures the model on labelled rows)")
    n = len(df)
    df = df[df[target].notna()]
    if model.task.is_classification:
        known = {str(c) for c in model.task.classes}
        df = df[df[target].map(str).isin(known)]
    if len(df) < n:
        log.warning("%s: %d row(s) without a target value the model knows are left out", name, n - len(df))
    if len(df) < 10:
        raise DataError(f"{name} has {len(df)} labelled row(s) the model can score; compress needs at least 10", column=target)
    df = df.reset_index(drop=True)
    return df, model.task.encode(df[target])


def _finish(stage: Path, out: Path, result: CompressionResult, source: Path) -> None:
    """Add the report files to the staged bundle and move it into place (all or nothing)."""
    from takeoff import bundle
    from takeoff.compression.report import write_compression_report

    document = result.to_json()
    document["original_bundle"] = str(source)

    def add(tmp: Path) -> None:
        for item in stage.iterdir():
            if item.name == bundle.MANIFEST:
                continue
            (shutil.copytree if item.is_dir() else shutil.copyfile)(item, tmp / item.name)
        bundle.write_json(tmp / "compression.json", document)
        write_compression_report(tmp / "compression.html", result)

    manifest = bundle.read_manifest(stage, verify=False)
    manifest = {k: v for k, v in copy.deepcopy(manifest).items() if k not in ("format", "format_version", "files")}
    manifest["compression"] = {"steps": result.steps, "ratios": result.ratios(), "metric_deltas": result.deltas(),
                               "rows": result.rows, "original_bundle": str(source)}
    if result.compressed.metrics:  # measured on labelled rows (else the bundle's own metrics stay)
        manifest["metrics"] = result.compressed.metrics
    bundle.write(out, manifest, add)
