"""The model of the prediction pipeline (tables, text, images): the input schema, the fitted
features and a blend of families, and its bundle files.

Example:
    >>> model = takeoff.load("runs/credit")
    >>> model.predict(new_rows)          # labels
    >>> model.evaluate("holdout.csv")    # {"roc_auc": ..., ...}
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff import bundle, registry
from takeoff._version import __version__
from takeoff.data.conform import SMALL_FRAME, ConformNotes, conform, conform_records
from takeoff.data.schema import Kind, Schema, Task, require_columns
from takeoff.errors import BundleError, DataError, preview
from takeoff.features.block import Features
from takeoff.features.pipeline import FeaturePipeline
from takeoff.models.blend import Blend
from takeoff.models.target_transform import wrap
from takeoff.pipelines.base import Predictor
from takeoff.pipelines.run_dir import read_data

log = logging.getLogger("takeoff")


class Model(Predictor):
    """A trained model: the input schema, the fitted features and a blend of families.

    Use :func:`takeoff.train` or :func:`takeoff.load` to get one.
    """

    kind = "predict"

    def __init__(self, manifest: dict[str, Any], schema: Schema, task: Task, pipeline: FeaturePipeline, blend: Blend):
        super().__init__(manifest)
        self.schema, self.task = schema, task
        self.pipeline, self.blend = pipeline, blend
        self.redactor = None  # a fitted Redactor (takeoff.data.pii) when personal data is redacted
        self.monitor = None  # called with every batch of conformed rows (the server's drift window)

    # ----------------------------------------------------------------- info
    @property
    def runtime(self) -> str:
        """How the bundle predicts: "native" (its families' own libraries) or "onnx" (one ONNX
        graph run by ONNX Runtime, written by ``takeoff compress --onnx``)."""
        return self.manifest.get("runtime", "native")

    @property
    def threshold(self) -> float | list[float] | None:
        """The decision rule tuned for the run's metric: binary, one threshold; multilabel, one
        threshold per label; multiclass, one weight per class (the largest weighted probability
        is predicted), or None for the most probable class."""
        return self.manifest.get("threshold")

    @property
    def metrics(self) -> dict[str, Any]:
        """Validation metrics measured at training time."""
        return self.manifest["metrics"]

    @property
    def classes(self) -> list[Any]:
        return list(self.task.classes)

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
                notes = notes or ConformNotes()
                columns = self._observed(columns)
                self._note_surprises(columns, notes)
                return self._transform(columns), notes
            data = pd.DataFrame.from_records(data)
        frame, notes = conform(data, self.schema, where=where, strict=strict, notes=notes,
                               row_offset=row_offset, target=self._target_names)
        frame = self._observed(frame)
        self._note_surprises(frame, notes)
        return self._transform(frame), notes

    def _observed(self, columns):
        """Conformed rows, redacted the way the training rows were, shown to the monitor."""
        if self.redactor is not None:
            columns = self.redactor.apply(columns)
        if self.monitor is not None:
            self.monitor(columns)
        return columns

    def _note_surprises(self, columns, notes: ConformNotes) -> None:
        """Note categories the model never learned and numbers far outside the training range
        (the response's ``warnings``, ``takeoff predict``'s notes): plain Python over the few
        values of a request, array operations over a chunk."""
        for name, known, low, high in self._surprise_checks:
            values = columns[name]
            if known is not None:
                if len(values) <= SMALL_FRAME:
                    unknown = [v for v in values if v is not None and v == v and v not in known]
                else:
                    present = pd.Series(values, dtype=object).dropna()
                    unknown = present[~present.isin(known)].tolist()
                if unknown:
                    notes.add_unseen(name, np.asarray(unknown, dtype=object))
                continue
            # "far": beyond the training range by more than the range's own width
            width = max(high - low, 1e-12)
            if len(values) <= SMALL_FRAME:
                far = sum(1 for v in values if v < low - width or v > high + width)  # NaN compares False
            else:
                array = np.asarray(values, dtype=np.float64)
                far = int(((array < low - width) | (array > high + width)).sum())
            if far:
                notes.add_far(name, far, low, high)

    @functools.cached_property
    def _surprise_checks(self) -> list[tuple[str, set[str] | None, float, float]]:
        """(column, its vocabulary, or None and its training range) per feature column to check;
        numbers only where the bundle knows the range (features.json from this version on)."""
        pipeline, checks = self.pipeline, []
        if pipeline is None or not hasattr(pipeline, "categories"):
            return checks
        for column in self.schema.features:
            if column.kind == Kind.CATEGORICAL and column.name in pipeline.categories:
                checks.append((column.name, set(pipeline.categories[column.name]), 0.0, 0.0))
            elif column.kind == Kind.NUMERIC and "max" in pipeline.numeric.get(column.name, {}):
                stats = pipeline.numeric[column.name]
                checks.append((column.name, None, float(stats["min"]), float(stats["max"])))
        return checks

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

    @property
    def mitigation(self) -> dict[str, Any] | None:
        """The per-group thresholds of ``--mitigate threshold`` (fairness post-processing), or None."""
        return self.manifest.get("fairness", {}).get("mitigation")

    def fair_decide(self, outputs: np.ndarray, df: pd.DataFrame) -> np.ndarray:
        """Labels under the stored per-group thresholds (:mod:`takeoff.evaluation.mitigation`):
        ``df`` must hold the sensitive columns they were fitted by."""
        from takeoff.evaluation.fairness import group_keys
        from takeoff.evaluation.metrics import predicted_codes
        from takeoff.evaluation.mitigation import apply_thresholds

        rule = self.mitigation
        missing = [c for c in rule["columns"] if c not in df.columns]
        if missing:
            raise DataError(f"this model applies per-group decision thresholds by {', '.join(rule['columns'])} "
                            f"(--mitigate threshold); the rows lack {', '.join(missing)}. Fix: include those columns "
                            "(they are read for the thresholds only, not as features).", column=missing[0])
        fallback = predicted_codes(self.task, outputs, self.threshold)
        codes = apply_thresholds(rule, outputs[:, 1], group_keys(df, rule["columns"]), fallback)
        return self.task.decode(codes)

    def predict_frame(self, df: pd.DataFrame, **kwargs) -> tuple[pd.DataFrame, ConformNotes]:
        """Predictions as a table: ``prediction`` and, for classification, ``proba_<label>``."""
        outputs, notes = self.predict_outputs(df, **kwargs)
        out = self.output_frame(outputs, df.index)
        if self.mitigation is not None:
            out["prediction"] = self.fair_decide(outputs, df)
        return out, notes

    def output_frame(self, outputs: np.ndarray, index: pd.Index) -> pd.DataFrame:
        """Raw outputs as the prediction table of :meth:`predict_frame`."""
        out = pd.DataFrame({"prediction": self.decide(outputs)}, index=index)
        if self.task.is_classification or self.task.is_multilabel:
            for i, label in enumerate(self.task.classes):
                out[f"proba_{label}"] = outputs[:, i]
        return out

    def predict(self, data, *, strict: bool = False, feature_names=None) -> np.ndarray:
        """Predicted labels (classification) or values (regression) for ``data``: a DataFrame,
        a dict of one row, a list of dicts, a pandas Series (one row), a NumPy array or list of
        lists with ``feature_names`` (the column of each position), or a path."""
        if self.mitigation is not None:  # the per-group thresholds read the sensitive columns
            from takeoff.pipelines.prediction.inputs import as_table, is_records

            if not is_records(data):
                data = as_table(data, feature_names, self.schema.names())
            df, _ = self._frame(data)
            outputs, _ = self._outputs(df, strict)
            return self.fair_decide(outputs, df)
        outputs, _ = self._outputs(data, strict, feature_names)
        return self.decide(outputs)

    def predict_proba(self, data, *, strict: bool = False, feature_names=None) -> pd.DataFrame:
        """Class probabilities, one column per label (classification; for multilabel, each
        label's own probability); ``data`` as for :meth:`predict`."""
        if not (self.task.is_classification or self.task.is_multilabel):
            raise DataError(f"predict_proba is for classification; this model does {self.task.kind}. Use predict.")
        outputs, index = self._outputs(data, strict, feature_names)
        return pd.DataFrame(outputs, columns=[str(c) for c in self.task.classes], index=index)

    def leaderboard(self) -> pd.DataFrame:
        """Every candidate the run tried, best first: id, family, its score by the run's metric,
        fit seconds, predict seconds (when measured), kept and blend weight."""
        from takeoff.pipelines.prediction.leaderboard import leaderboard

        return leaderboard(self.manifest)

    def _repr_html_(self) -> str:
        from takeoff.pipelines.prediction.leaderboard import repr_html

        return repr_html(self)

    def _outputs(self, data, strict: bool, feature_names=None) -> tuple[np.ndarray, pd.Index]:
        from takeoff.pipelines.prediction.inputs import as_table, is_records

        if not is_records(data):
            data = as_table(data, feature_names, self.schema.names())
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

    def evaluate(self, data, *, table=None, sql=None, encoding=None, report: str | Path | None = None,
                 sep=None, decimal=None) -> dict[str, Any]:
        """Metrics on ``data``, which must hold the target column; optionally an HTML report
        (``table`` ... ``decimal``: how ``data`` is read, as for :func:`takeoff.train`)."""
        from takeoff.evaluation.metrics import compute_metrics
        from takeoff.evaluation.report import write_report

        df, name = self._frame(data, table=table, sql=sql, encoding=encoding, sep=sep, decimal=decimal)
        target = self.task.target
        require_columns(df, self.task.target_columns, name, role="target column")
        if not self.task.is_multilabel:  # a multilabel row without labels has the empty set
            df = df[df[target].notna()]
        if df.empty:
            raise DataError(f"{name} has no rows with a value in target '{target}'", column=target)
        y = self.task.encode(self.task.target_values(df))
        if self.task.kind == "regression" and not np.isfinite(y).all():  # placeholders such as '?', as in training
            keep = np.isfinite(y)
            seen = preview(sorted({str(v) for v in df[target][~keep]}), 5)
            log.warning("target '%s': %d row(s) of %s hold a value that is not a number (%s); they are left out",
                        target, int((~keep).sum()), name, seen)
            df, y = df[keep], y[keep]
            if df.empty:
                raise DataError(f"{name} has no rows with a number in target '{target}'", column=target)
        outputs, _ = self.predict_outputs(df, where=name)
        metrics = compute_metrics(self.task, y, outputs, self.threshold)
        if report is not None:
            write_report(
                report, title=f"{target} — evaluation on {name}", task=self.task, metrics=metrics,
                y=y, pred=outputs, threshold=self.threshold, importance=self.manifest.get("importance"),
                history=None, findings=None, model_info=self.model_info(), data_name=name,
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
        return read_data(data, **read)


    # ---------------------------------------------------------------- bundle
    def write_files(self, directory: Path, manifest: dict[str, Any]) -> None:
        bundle.write_json(directory / "features.json", self.pipeline.state())
        if self.runtime == "onnx":
            self.blend.save(directory)
        for member, family in zip(self.manifest["members"], self.blend.members):
            folder = directory / member["dir"]
            folder.mkdir(parents=True)
            family.save(folder)
        bundle.write_json(directory / "metrics.json", {"task": self.task.kind, "metrics": self.metrics})
        if self.redactor is not None:
            self.redactor.save(directory)
        from takeoff.pipelines.prediction.card import CARD_FILE, model_card

        bundle.write_atomic(directory / CARD_FILE, lambda tmp: tmp.write_text(model_card(manifest), encoding="utf-8"))

    def card(self) -> str:
        """The model card (Markdown): the bundle's ``MODEL_CARD.md``, else made from the manifest."""
        from takeoff.pipelines.prediction.card import CARD_FILE, model_card

        if self.path is not None and (self.path / CARD_FILE).is_file():
            return (self.path / CARD_FILE).read_text(encoding="utf-8")
        return model_card(self.manifest)

    @classmethod
    def from_bundle(cls, path: Path, manifest: dict[str, Any]) -> Model:
        schema = Schema.from_json(manifest["schema"])
        task = Task.from_json(manifest["task"])
        pipeline = FeaturePipeline.from_state(schema, json.loads((path / "features.json").read_text()))
        if manifest.get("runtime", "native") != "native":
            return cls._from_runtime(path, manifest, schema, task, pipeline)
        families = []
        for member in manifest["members"]:
            if member["family"] not in registry.names():
                raise BundleError(str(path), f"uses model family '{member['family']}', unknown to this takeoff {__version__}", "upgrade takeoff")
            family = registry.get(member["family"]).restore(path / member["dir"], task, member["params"])
            families.append(wrap(family, member.get("target_transform")))
        model = cls(manifest, schema, task, pipeline, Blend(families, [m["weight"] for m in manifest["members"]]))
        model.redactor = _redactor(path)
        return model

    @classmethod
    def _from_runtime(cls, path: Path, manifest: dict[str, Any], schema: Schema, task: Task,
                      pipeline: FeaturePipeline) -> Model:
        """A bundle that predicts through an exported graph (no model family is imported)."""
        runtime = manifest.get("runtime")
        if runtime != "onnx":
            raise BundleError(str(path), f"uses runtime {runtime!r}, unknown to this takeoff {__version__}", "upgrade takeoff")
        from takeoff.runtime.onnx import OnnxBlend

        width = len(task.classes) if task.is_classification or task.is_multilabel else None
        model = cls(manifest, schema, task, pipeline, OnnxBlend(path, manifest, pipeline, width))
        model.redactor = _redactor(path)
        return model

    def model_info(self) -> dict[str, Any]:
        """What the report shows of the model: members and weights, scores, threshold, versions."""
        training = self.manifest.get("training", {})
        return {
            "members": {m.get("id", m["family"]): round(m["weight"], 3) for m in self.manifest["members"]},
            "metric": training.get("metric"),
            "judged on": (f"out-of-fold predictions, {training['folds']}-fold cross-validation"
                          if training.get("folds", 1) > 1 else "the validation split"),
            "validation scores": {k: round(v, 5) for k, v in self.manifest.get("member_scores", {}).items()},
            "refitted on all rows": ", ".join(training.get("refitted", [])) or "none",
            "training seconds": training.get("seconds"),
            "where the time went (s)": ", ".join(f"{k} {v}" for k, v in training.get("time", {}).items()) or None,
            "failed candidates": [{"candidate": f["candidate"], "reason": f["reason"], "seconds": f["seconds"]}
                                  for f in training.get("failed", [])] or "none",
            "rows (train / valid)": f"{training.get('rows_train')} / {training.get('rows_valid')}",
            ("class weights of the decision" if self.task.kind == "multiclass" else "decision threshold"): self.threshold,
            **({"differential privacy": "ε = {epsilon:.3f} spent (δ = {delta:.1e}, {accountant} accountant)".format(
                **self.manifest["privacy"]["dp"])} if self.manifest.get("privacy", {}).get("dp") else {}),
            **({"fairness mitigation": f"per-group thresholds by {', '.join(self.mitigation['columns'])} "
                f"({self.mitigation['constraint']})"} if self.mitigation else {}),
            "takeoff": self.manifest.get("takeoff_version"),
            "libraries": ", ".join(f"{k} {v}" for k, v in self.manifest.get("libraries", {}).items()),
        }


def _redactor(path: Path):
    """The bundle's fitted redaction step (``redaction.json``), or None."""
    from takeoff.data.pii import Redactor

    return Redactor.load(path)
