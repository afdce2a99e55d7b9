"""The public Python API: ``train``, ``load``, ``inspect`` and :class:`Model`.

This module only sequences the layers (data → features → models → evaluation → bundle).

Example:
    >>> import takeoff
    >>> model = takeoff.train("credit.csv", target="Status", time_budget=60, out="runs/credit")
    >>> model.predict(new_rows)          # labels
    >>> model.evaluate("holdout.csv")    # {"roc_auc": ..., ...}
    >>> same = takeoff.load("runs/credit")
"""

from __future__ import annotations

import functools
import json
import logging
import platform
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff import bundle, registry
from takeoff._version import __version__
from takeoff.data.conform import SMALL_FRAME, ConformNotes, conform, conform_records
from takeoff.data.schema import (
    Schema,
    Task,
    combine_label_columns,
    infer_schema,
    infer_task,
    require_columns,
    split_target,
)
from takeoff.errors import BundleError, ConfigError, DataError
from takeoff.features.block import Features
from takeoff.features.pipeline import FeaturePipeline
from takeoff.models.blend import Blend

log = logging.getLogger("takeoff")

def _config(config, **overrides):
    from takeoff.config import config_class, load_config, make_config

    if config is None or isinstance(config, (str, Path)):
        return load_config(config, **overrides)
    if isinstance(config, dict):
        return make_config({**config, **{k: v for k, v in overrides.items() if v is not None}})
    if isinstance(config, config_class()):
        data = config.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return make_config(data)
    raise ConfigError(f"config must be a path, a dict or a Config, got {type(config).__name__}")


def _read(data, table=None, sql=None, encoding=None) -> tuple[pd.DataFrame, str]:
    from takeoff.data.sources import read_table, source_name

    return read_table(data, table=table, sql=sql, encoding=encoding), source_name(data, table=table, sql=sql)


def train(
    data=None,
    target: str | list[str] | None = None,
    *,
    time_budget: float | None = None,
    config=None,
    out: str | Path | None = None,
    seed: int | None = None,
    drop: list[str] | None = None,
    task: str | None = None,
    family: str | None = None,
    table: str | None = None,
    sql: str | None = None,
    encoding: str | None = None,
    resume: str | Path | None = None,
    strict: bool | None = None,
    user: str | None = None,
    item: str | None = None,
    rating: str | None = None,
    time_column: str | None = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
    embed_encoder: bool | None = None,
) -> Model:
    """Train a model on a table and (with ``out``) write it as a bundle directory.

    Args:
        data: a path (CSV, TSV, Parquet, JSON lines, Excel), a SQLAlchemy URL (with ``table``
            or ``sql``), or a DataFrame.
        target: the column to predict.
        time_budget: seconds the whole run may take (default 120).
        config: a YAML path, a dict, or a Config; the keyword arguments override it.
        out: bundle directory to write; also holds checkpoints while training, so that an
            interrupted run can be resumed.
        seed, drop, task, family, strict: see ``takeoff config show``.
        resume: an interrupted run directory to finish (``data`` and options are taken from it).
        user, item, rating, time_column, items, users: recommendation (``task="recommend"``,
            also inferred from ``user`` + ``item``): the interaction log's columns and optional
            item and user feature tables (paths); see :mod:`takeoff.recommender`.

    Returns:
        The trained :class:`Model` (a :class:`~takeoff.recommender.RecommenderModel` for
        recommendation).

    Raises:
        DataSourceError, DataError, ConfigError, BudgetError: nothing is written then.
    """
    _require_training()
    from takeoff.evaluation.report import write_report
    from takeoff.training import run

    state: dict[str, Any] = {}
    if resume is not None:
        out, state = Path(resume), _resume_state(Path(resume))
        cfg = _config(state["config"])
        src = state["source"]
        data, table, sql, encoding = src["data"], src.get("table"), src.get("sql"), src.get("encoding")
    else:
        cfg = _config(config, target=target, time_budget=time_budget, seed=seed, drop=drop, task=task, family=family,
                      strict=strict)
        given = {"user": user, "item": item, "rating": rating, "time": time_column,
                 "items": str(items) if items is not None else None,
                 "users": str(users) if users is not None else None}
        for key, value in given.items():
            if value is not None:
                setattr(cfg.recommend, key, value)
        if embed_encoder is not None:  # the text families' encoder: copied into the bundle, or referenced
            for name in ("text-embed", "text-finetune"):
                params = getattr(cfg.models, name, None)
                if params is not None and "embed_encoder" in type(params).model_fields:
                    params.embed_encoder = embed_encoder
    if cfg.task == "recommend" or (cfg.task is None and cfg.target is None and cfg.recommend.user and cfg.recommend.item):
        if resume is not None:
            raise ConfigError("recommendation runs cannot be resumed; train again")
        return _train_recommender(data, cfg, out, table, sql, encoding)
    if cfg.target is None and isinstance(data, (str, Path)) and Path(data).expanduser().is_dir():
        from takeoff.data.images import LABEL_COLUMN

        cfg = cfg.model_copy(update={"target": LABEL_COLUMN})  # an image folder: its class subfolders
    if cfg.target is None:
        raise ConfigError("no target column given. Fix: pass --target COLUMN (or target: in the config); "
                          "for recommendations, pass --user COLUMN --item COLUMN.")
    started = time.monotonic()
    deadline = started + cfg.time_budget - state.get("elapsed", 0.0)
    df, name = _read(data, table, sql, encoding)
    prep = run.prepare(df, cfg, name)
    del df

    run_dir = Path(out) if out is not None else None
    created = False
    if run_dir is not None and resume is None:
        _new_output_dir(run_dir)
        created = True
        state = {
            "status": "running",
            "source": {"data": _rereadable(data), "table": table, "sql": sql, "encoding": encoding},
            "config": cfg.model_dump(mode="json"),
            "elapsed": 0.0,
        }
        bundle.write_json(run_dir / bundle.RUN_STATE, state)
    try:
        outcome = run.fit(prep, cfg, run_dir, deadline, state)
        model = Model._from_outcome(outcome, cfg, name, time.monotonic() - started + state.get("elapsed", 0.0))
        if run_dir is not None:
            report = run_dir / "report.html"
            write_report(
                report, title=f"{prep.task.target} — validation report", task=prep.task,
                metrics=outcome.metrics, y=prep.valid.y, pred=outcome.valid_pred,
                threshold=outcome.threshold, importance=outcome.importance, history=outcome.history,
                findings=[f.to_json() for f in prep.findings], model_info=model._model_info(),
                data_name=f"{name} (validation split)", images=next(iter(prep.valid.X.images.values()), None),
            )
            model._attachments["report.html"] = report
            model.save(run_dir)
    except KeyboardInterrupt:
        if run_dir is not None and run_dir.exists():
            state.update(status="interrupted", elapsed=state.get("elapsed", 0.0) + time.monotonic() - started)
            bundle.write_json(run_dir / bundle.RUN_STATE, state)
        raise
    except BaseException:
        if created:
            _remove_unfinished(run_dir)
        raise
    return model


def _train_recommender(data, cfg, out, table, sql, encoding):
    from takeoff.recommender import train_recommender

    started = time.monotonic()
    df, name = _read(data, table, sql, encoding)
    run_dir = _new_output_dir(Path(out)) if out is not None else None
    try:
        return train_recommender(df, cfg, name, run_dir, started + cfg.time_budget)
    except BaseException:
        if run_dir is not None:
            _remove_unfinished(run_dir)
        raise


def _require_training() -> None:
    """Training needs the `train` extra; the base and lite installs only predict and serve."""
    from importlib.util import find_spec

    from takeoff.errors import MissingDependencyError

    for module, package in (("sklearn", "scikit-learn"), ("lightgbm", "lightgbm"), ("torch", "torch")):
        try:
            found = find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            raise MissingDependencyError(package, "training", extra="train")


def _new_output_dir(run_dir: Path) -> Path:
    """Create the output directory of a run, refusing one that already holds something."""
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"output directory {run_dir} already exists and is not empty. Fix: choose another --out, or remove it.")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _remove_unfinished(run_dir: Path) -> None:
    """After a failed run: nothing half-written is left behind (a finished bundle stays)."""
    if run_dir.exists() and not (run_dir / bundle.MANIFEST).exists():
        shutil.rmtree(run_dir, ignore_errors=True)


def _rereadable(data) -> str | None:
    """How a resumed run finds its data again: an absolute path, a URL, or None (a DataFrame)."""
    if isinstance(data, str) and "://" in data:
        return data
    if isinstance(data, (str, Path)):
        return str(Path(data).resolve())
    return None


def _resume_state(path: Path) -> dict[str, Any]:
    state_file = path / bundle.RUN_STATE
    if (path / bundle.MANIFEST).exists():
        raise BundleError(str(path), "is a finished bundle; there is nothing to resume")
    if not state_file.exists():
        raise BundleError(str(path), "is not a takeoff training run (no run.json)", "pass the --out directory of an interrupted `takeoff train`")
    state = json.loads(state_file.read_text())
    if state["source"].get("data") is None:
        raise BundleError(str(path), "was trained from an in-memory DataFrame, which cannot be re-read", "train again")
    return state


def load(path: str | Path) -> Model:
    """Load a bundle written by :meth:`Model.save` or ``takeoff train``.

    Raises:
        BundleError: missing, unfinished, tampered with, or of an unknown format version.
    """
    path = Path(path)
    manifest = bundle.read_manifest(path)
    if manifest.get("task", {}).get("kind") == "recommend":
        from takeoff.recommender import RecommenderModel

        return RecommenderModel._load(path, manifest)
    if manifest.get("task", {}).get("kind") == "search":
        from takeoff.search import SearchIndex

        return SearchIndex._load(path, manifest)
    return Model._load(path, manifest)


def inspect(data, target: str | list[str] | None = None, *, table=None, sql=None, encoding=None, config=None) -> dict[str, Any]:
    """The inferred schema, task and data findings of a table, as a JSON-ready dict."""
    from takeoff.data.checks import run_checks

    cfg = _config(config, target=target)
    df, name = _read(data, table, sql, encoding)
    task = None
    target, label_columns = split_target(cfg.target, [str(c) for c in df.columns])
    if target is not None:
        require_columns(df, label_columns or [target], name, role="label column" if label_columns else "target column")
        if label_columns:  # several 0/1 columns: one multilabel target of their label sets
            df = df.assign(**{target: combine_label_columns(df, label_columns, target)})
        task = infer_task(df[target], target, "multilabel" if label_columns else cfg.task, cfg.positive_label)
        task.columns = label_columns
    schema = infer_schema(df, target, list(cfg.drop) + label_columns)
    findings = run_checks(df, schema, target, task, cfg.checks)
    return {
        "source": name,
        "rows": int(len(df)),
        "columns": schema.to_json(),
        "target": target,
        "task": task.to_json() if task else None,
        "findings": [f.to_json() for f in findings],
    }


class Model:
    """A trained model: the input schema, the fitted features and a blend of families.

    Use :func:`takeoff.train` or :func:`takeoff.load` to get one.
    """

    def __init__(self, manifest: dict[str, Any], schema: Schema, task: Task, pipeline: FeaturePipeline, blend: Blend):
        self.manifest, self.schema, self.task = manifest, schema, task
        self.pipeline, self.blend = pipeline, blend
        self.path: Path | None = None
        self._attachments: dict[str, Path] = {}

    # ----------------------------------------------------------------- info
    @property
    def runtime(self) -> str:
        """How the bundle predicts: "native" (its families' own libraries) or "onnx" (one ONNX
        graph run by ONNX Runtime, written by ``takeoff compress --onnx``)."""
        return self.manifest.get("runtime", "native")

    @property
    def threshold(self) -> float | list[float] | None:
        """The tuned decision threshold: binary, one float; multilabel, one per label."""
        return self.manifest.get("threshold")

    @property
    def metrics(self) -> dict[str, Any]:
        """Validation metrics measured at training time."""
        return self.manifest["metrics"]

    @property
    def classes(self) -> list[Any]:
        return list(self.task.classes)

    @functools.cached_property
    def version(self) -> str:
        """A short content hash of the manifest (which lists every file's hash)."""
        import hashlib

        text = json.dumps(self.manifest, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def input_fields(self, max_categories: int = 100) -> list[dict[str, Any]]:
        """The model's inputs, for request schemas and forms: name, kind, JSON type, and a hint
        (known categories, most frequent first; the training median of a number)."""
        json_type = {"numeric": "number", "boolean": "boolean"}
        fields = []
        for column in self.schema.features:
            kind = column.kind.value
            field: dict[str, Any] = {"name": column.name, "kind": kind, "type": json_type.get(kind, "string")}
            if kind == "categorical":
                field["categories"] = self.pipeline.categories.get(column.name, [])[:max_categories]
            elif kind == "numeric":
                field["median"] = self.pipeline.numeric[column.name]["median"]
            elif kind == "datetime":
                field["format"] = "date-time"
            fields.append(field)
        return fields

    def __repr__(self) -> str:
        members = ", ".join(f"{m['family']}×{m['weight']:.2f}" for m in self.manifest["members"])
        return f"<takeoff.Model {self.task.kind} target={self.task.target!r} [{members}]>"

    # -------------------------------------------------------------- predict
    def predict_outputs(self, df: pd.DataFrame, *, strict: bool = False, where: str = "the data",
                        notes: ConformNotes | None = None, row_offset: int = 0) -> tuple[np.ndarray, ConformNotes]:
        """Raw outputs for rows: probabilities (n, n_classes) or values (n,), with the notes of
        what was coerced or ignored. The one path shared by predict, evaluate and the server."""
        features, notes = self.features(df, strict=strict, where=where, notes=notes, row_offset=row_offset)
        return self.predict_features(features), notes

    def features(self, data: pd.DataFrame | list[dict[str, Any]], *, strict: bool = False, where: str = "the data",
                 notes: ConformNotes | None = None, row_offset: int = 0) -> tuple[Features, ConformNotes]:
        """Validate rows against the schema and turn them into model features (for an ONNX
        bundle, the graph's raw inputs: :class:`~takeoff.features.pipeline.RawInputs`).

        ``data`` is a DataFrame, or a list of records (dicts); a few clean, typed records (the
        server's requests) skip pandas, which costs milliseconds per call; any other records go
        through the same :func:`~takeoff.data.conform.conform` as a DataFrame.
        """
        if not isinstance(data, pd.DataFrame):
            columns = conform_records(data, self.schema, self._target_names) if len(data) <= SMALL_FRAME else None
            if columns is not None:
                return self._transform(columns), notes or ConformNotes()
            data = pd.DataFrame.from_records(data)
        frame, notes = conform(data, self.schema, where=where, strict=strict, notes=notes,
                               row_offset=row_offset, target=self._target_names)
        return self._transform(frame), notes

    @functools.cached_property
    def _target_names(self) -> list[str]:
        return [self.task.target, *self.task.columns]

    def _transform(self, columns):
        # an ONNX bundle's graph takes the raw columns (it imputes, scales and codes itself)
        return self.blend.transform(columns) if self.runtime == "onnx" else self.pipeline.transform(columns)

    def predict_features(self, features: Features) -> np.ndarray:
        """Raw outputs for features made by :meth:`features` (for an ONNX bundle, the graph's
        raw inputs, :class:`~takeoff.features.pipeline.RawInputs`)."""
        return self.blend.predict(features)

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        """Labels (classification, using the tuned threshold), label sets ("a|b", multilabel,
        using each label's threshold) or values (regression)."""
        from takeoff.evaluation.metrics import predicted_codes

        if not (self.task.is_classification or self.task.is_multilabel):
            return outputs
        return self.task.decode(predicted_codes(self.task, outputs, self.threshold))

    def predict_frame(self, df: pd.DataFrame, **kwargs) -> tuple[pd.DataFrame, ConformNotes]:
        """Predictions as a table: ``prediction`` and, for classification, ``proba_<label>``."""
        outputs, notes = self.predict_outputs(df, **kwargs)
        return self.output_frame(outputs, df.index), notes

    def output_frame(self, outputs: np.ndarray, index: pd.Index) -> pd.DataFrame:
        """Raw outputs as the prediction table of :meth:`predict_frame`."""
        out = pd.DataFrame({"prediction": self.decide(outputs)}, index=index)
        if self.task.is_classification or self.task.is_multilabel:
            for i, label in enumerate(self.task.classes):
                out[f"proba_{label}"] = outputs[:, i]
        return out

    def predict(self, data, *, strict: bool = False) -> np.ndarray:
        """Predicted labels (classification) or values (regression) for ``data`` (a DataFrame,
        a dict of one row, a list of dicts, or a path)."""
        outputs, _ = self._outputs(data, strict)
        return self.decide(outputs)

    def predict_proba(self, data, *, strict: bool = False) -> pd.DataFrame:
        """Class probabilities, one column per label (classification; for multilabel, each
        label's own probability)."""
        if not (self.task.is_classification or self.task.is_multilabel):
            raise DataError(f"predict_proba is for classification; this model does {self.task.kind}. Use predict.")
        outputs, index = self._outputs(data, strict)
        return pd.DataFrame(outputs, columns=[str(c) for c in self.task.classes], index=index)

    def _outputs(self, data, strict: bool) -> tuple[np.ndarray, pd.Index]:
        if isinstance(data, (dict, list)):  # records: no DataFrame unless they need one
            records = [data] if isinstance(data, dict) else data
            where = "the record" if isinstance(data, dict) else "the records"
            features, notes = self.features(records, strict=strict, where=where)
            outputs, index = self.predict_features(features), pd.RangeIndex(len(records))
        else:
            df, name = self._frame(data)
            outputs, notes = self.predict_outputs(df, strict=strict, where=name)
            index = df.index
        for message in notes.messages():
            log.info("%s", message)
        return outputs, index

    def evaluate(self, data, *, table=None, sql=None, encoding=None, report: str | Path | None = None) -> dict[str, Any]:
        """Metrics on ``data``, which must hold the target column; optionally an HTML report."""
        from takeoff.evaluation.metrics import compute_metrics
        from takeoff.evaluation.report import write_report

        df, name = self._frame(data, table=table, sql=sql, encoding=encoding)
        target = self.task.target
        require_columns(df, self.task.target_columns, name, role="target column")
        if not self.task.is_multilabel:  # a multilabel row without labels has the empty set
            df = df[df[target].notna()]
        if df.empty:
            raise DataError(f"{name} has no rows with a value in target '{target}'", column=target)
        y = self.task.encode(self.task.target_values(df))
        outputs, _ = self.predict_outputs(df, where=name)
        metrics = compute_metrics(self.task, y, outputs, self.threshold)
        if report is not None:
            write_report(
                report, title=f"{target} — evaluation on {name}", task=self.task, metrics=metrics,
                y=y, pred=outputs, threshold=self.threshold, importance=self.manifest.get("importance"),
                history=None, findings=None, model_info=self._model_info(), data_name=name,
                images=self._report_images(df),
            )
        return metrics

    def _report_images(self, df: pd.DataFrame) -> np.ndarray | None:
        """The first image column of ``df`` decoded as the model sees it, for the report."""
        for column, stats in self.pipeline.images.items():
            if column in df.columns:
                from takeoff.data.images import decode_many

                return decode_many(list(df[column]), stats["size"], stats["channels"]).pixels
        return None

    def _frame(self, data, **read) -> tuple[pd.DataFrame, str]:
        if isinstance(data, dict):
            return pd.DataFrame([data]), "the record"
        if isinstance(data, list):
            return pd.DataFrame(data), "the records"
        return _read(data, **read)

    # ---------------------------------------------------------------- bundle
    def save(self, path: str | Path) -> Path:
        """Write the model as a bundle directory (atomically: complete, or not at all)."""
        def fill(tmp: Path) -> None:
            bundle.write_json(tmp / "features.json", self.pipeline.state())
            if self.runtime == "onnx":
                self.blend.save(tmp)
            for member, family in zip(self.manifest["members"], self.blend.members):
                directory = tmp / member["dir"]
                directory.mkdir(parents=True)
                family.save(directory)
            for name, source in self._attachments.items():
                shutil.copyfile(source, tmp / name)
            bundle.write_json(tmp / "metrics.json", {"task": self.task.kind, "metrics": self.metrics})

        manifest = {k: v for k, v in self.manifest.items() if k not in ("format", "format_version", "files")}
        self.path = bundle.write(path, manifest, fill)
        self.manifest = bundle.read_manifest(self.path, verify=False)  # as a load would see it
        self.__dict__.pop("version", None)  # the cached hash was of the manifest before saving
        self._attachments = {n: self.path / n for n in self._attachments}
        return self.path

    @classmethod
    def _load(cls, path: Path, manifest: dict[str, Any] | None = None) -> Model:
        manifest = manifest or bundle.read_manifest(path)
        schema = Schema.from_json(manifest["schema"])
        task = Task.from_json(manifest["task"])
        pipeline = FeaturePipeline.from_state(schema, json.loads((path / "features.json").read_text()))
        if manifest.get("runtime", "native") != "native":
            return cls._load_runtime(path, manifest, schema, task, pipeline)
        families = []
        for member in manifest["members"]:
            if member["family"] not in registry.names():
                raise BundleError(str(path), f"uses model family '{member['family']}', unknown to this takeoff {__version__}", "upgrade takeoff")
            families.append(registry.get(member["family"]).restore(path / member["dir"], task, member["params"]))
        model = cls(manifest, schema, task, pipeline, Blend(families, [m["weight"] for m in manifest["members"]]))
        model.path = path
        model._attachments = {n: path / n for n in ("report.html",) if (path / n).exists()}
        return model

    @classmethod
    def _load_runtime(cls, path: Path, manifest: dict[str, Any], schema: Schema, task: Task,
                      pipeline: FeaturePipeline) -> Model:
        """A bundle that predicts through an exported graph (no model family is imported)."""
        runtime = manifest.get("runtime")
        if runtime != "onnx":
            raise BundleError(str(path), f"uses runtime {runtime!r}, unknown to this takeoff {__version__}", "upgrade takeoff")
        from takeoff.runtime.onnx import OnnxBlend

        width = len(task.classes) if task.is_classification or task.is_multilabel else None
        model = cls(manifest, schema, task, pipeline, OnnxBlend(path, manifest, pipeline, width))
        model.path = path
        model._attachments = {n: path / n for n in ("report.html",) if (path / n).exists()}
        return model

    @classmethod
    def _from_outcome(cls, outcome, cfg, source: str, seconds: float) -> Model:
        prep = outcome.prepared
        members = [
            {"family": m.name, "dir": f"members/{m.name}", "weight": w, "params": m.params.model_dump(mode="json")}
            for m, w in zip(outcome.blend.members, outcome.blend.weights)
        ]
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
            "libraries": _library_versions(),
        }
        return cls(manifest, prep.schema, prep.task, prep.pipeline, outcome.blend)

    def _model_info(self) -> dict[str, Any]:
        training = self.manifest.get("training", {})
        return {
            "members": {m["family"]: round(m["weight"], 3) for m in self.manifest["members"]},
            "validation scores": {k: round(v, 5) for k, v in self.manifest.get("member_scores", {}).items()},
            "refitted on all rows": ", ".join(training.get("refitted", [])) or "none",
            "training seconds": training.get("seconds"),
            "rows (train / valid)": f"{training.get('rows_train')} / {training.get('rows_valid')}",
            "decision threshold": self.threshold,
            "takeoff": self.manifest.get("takeoff_version"),
            "libraries": ", ".join(f"{k} {v}" for k, v in self.manifest.get("libraries", {}).items()),
        }


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("numpy", "pandas", "scikit-learn", "lightgbm", "torch", "safetensors"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
