"""``check_family``: the contract every model family keeps (as scikit-learn's ``check_estimator``).

For each task the family declares (natively, or one model per label for multilabel), on tiny
real-ish data (:mod:`takeoff.testing.data`, or tasks you pass): it fits, its outputs have the
task's shape and range, a save → restore round trip predicts the same, and a refit without a
validation split works. Once per family: the same seed gives the same model, bad input raises
takeoff's errors, and a family that declares ``exports_onnx`` gives the outputs of ``predict``
from its ONNX graph in ONNX Runtime.

Example:
    >>> from takeoff.testing import check_family
    >>> check_family("lightgbm")  # doctest: +SKIP
    ['binary: fit', 'binary: outputs', ...]
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from takeoff.data.schema import Task
from takeoff.errors import ConfigError, MissingDependencyError, TakeoffError
from takeoff.features.block import Features
from takeoff.models.base import Family, FitReport
from takeoff.testing.data import Split, tasks_for
from takeoff.training.context import FitContext

KINDS = ("binary", "multiclass", "multilabel", "regression")
# "tasks" runs per task kind; the others once, on the first single-label kind checked
CHECKS = ("tasks", "same_seed", "bad_input", "onnx")
TOLERANCE = 1e-6  # save/load and same-seed outputs: equal up to float noise
ONNX_ROWS = 32


def check_family(family: type[Family] | str, *, data: Mapping[str, Split] | None = None,
                 params: Mapping[str, Any] | None = None, kinds: Sequence[str] = KINDS,
                 checks: Sequence[str] = CHECKS, directory: str | Path | None = None,
                 onnx_tolerance: float = 1e-4) -> list[str]:
    """Check that ``family`` keeps the family contract.

    Args:
        family: the family class, or its registered name.
        data: task kind → ``(task, train, valid)``; default: tiny tasks that suit the family
            (:func:`takeoff.testing.data.tasks_for`).
        params: params for every fit, over the family's ``fast_params`` (keys its ``Params``
            lacks are left out).
        kinds: the task kinds to check (those the family does not support are skipped).
        checks: which of :data:`CHECKS` to run: ``"tasks"`` (fit, outputs, save/load, refit for
            each kind), ``"same_seed"``, ``"bad_input"`` and ``"onnx"`` (only for a family that
            declares ``exports_onnx``), these three once, on the first single-label kind.
        directory: where to save models (default: a temporary directory, removed after).
        onnx_tolerance: the largest ``|onnx − predict| / max(1, |predict|)`` accepted.

    Returns:
        The names of the checks that ran, e.g. ``"binary: save/load"``.

    Raises:
        AssertionError: a check failed (the message names the family and the check).
        MissingDependencyError: onnxruntime is missing for a family that exports to ONNX.
    """
    if isinstance(family, str):
        from takeoff import registry

        family = registry.get(family)
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="takeoff-check-") as scratch:
            return check_family(family, data=data, params=params, kinds=kinds, checks=checks,
                                directory=scratch, onnx_tolerance=onnx_tolerance)
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise ConfigError(f"unknown check(s) {', '.join(unknown)}; choose among: {', '.join(CHECKS)}")
    return _Checker(family, Path(directory), params).run(data, kinds, checks, onnx_tolerance)


class _Checker:
    def __init__(self, cls: type[Family], directory: Path, params: Mapping[str, Any] | None):
        self.cls, self.directory, self.passed = cls, directory, []
        fields = cls.Params.model_fields
        self.params = {k: v for k, v in {**cls.fast_params, **(params or {})}.items() if k in fields}

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        assert ok, f"model family '{self.cls.name}' fails the contract, {what}" + (f": {detail}" if detail else "")

    def run(self, data: Mapping[str, Split] | None, kinds: Sequence[str], checks: Sequence[str],
            onnx_tolerance: float) -> list[str]:
        cls = self.cls
        self.check(issubclass(cls, Family) and isinstance(cls.__dict__.get("name"), str),
                   "declaration", "a family subclasses takeoff.models.base.Family and sets its own `name`")
        self.check(all(field.description for field in cls.Params.model_fields.values()), "params",
                   "every field of its Params has a description")
        kinds = [k for k in kinds if cls.supports(k)]
        self.check(bool(kinds), "tasks", f"it supports none of the kinds checked; it declares {cls.tasks}")
        data = data if data is not None else tasks_for(cls, self.directory / "data")
        kinds = [k for k in kinds if k in data]
        self.check(bool(kinds), "tasks", f"no data for the kinds it supports; data has {sorted(data)}")
        fitted: dict[str, Family] = {}
        if "tasks" in checks:
            fitted = {kind: self.kind(kind, data[kind]) for kind in kinds}
        once = [c for c in checks if c != "tasks" and (c != "onnx" or cls.exports_onnx)]
        if once:
            kind = next((k for k in kinds if k != "multilabel"), kinds[0])
            split = data[kind]
            if kind not in fitted and ({"same_seed", "onnx"} & set(once)):
                fitted[kind] = self.fit(*split)
            if "same_seed" in once:
                self.same_seed(kind, fitted[kind], split)
            if "bad_input" in once:
                self.bad_input(split)
            if "onnx" in once and kind != "multilabel":
                self.onnx(kind, fitted[kind], split, onnx_tolerance)
        return self.passed

    def fit(self, task: Task, train, valid, params: Mapping[str, Any] | None = None) -> Family:
        family = self.cls.create(task, dict(self.params if params is None else params))
        report = family.fit(train, valid, FitContext(seed=0, progress=False))
        self.check(isinstance(report, FitReport) and bool(report.best_iteration) and report.best_iteration >= 1,
                   f"{task.kind}: fit", f"fit returns a FitReport with best_iteration >= 1; got {report!r}")
        return family

    def kind(self, kind: str, split: Split) -> Family:
        """Fit, outputs, save/restore and refit on one task; returns the fitted family."""
        task, train, valid = split
        family = self.fit(task, train, valid)
        self.passed.append(f"{kind}: fit")
        pred = family.predict(valid.X)
        self.outputs(task, pred, len(valid))
        self.passed.append(f"{kind}: outputs")

        where = self.directory / f"saved-{kind}"
        where.mkdir(parents=True, exist_ok=True)
        family.save(where)
        loaded = self.cls.restore(where, task, family.params.model_dump())
        self.close(loaded.predict(valid.X), pred, f"{kind}: save/load", "the restored model predicts what the saved one did")
        self.passed.append(f"{kind}: save/load")

        overrides = family.refit_params(1.25)
        if overrides is not None:
            refit = self.cls.create(task, {**family.params.model_dump(), **overrides})
            refit.fit(train, None, FitContext(seed=0, progress=False))
            got = refit.predict(valid.X).shape
            self.check(got == pred.shape, f"{kind}: refit", f"outputs of shape {got}, expected {pred.shape}")
            self.passed.append(f"{kind}: refit")
        return family

    def outputs(self, task: Task, pred: np.ndarray, n: int) -> None:
        what = f"{task.kind}: outputs"
        if task.is_classification or task.is_multilabel:
            shape = (n, len(task.classes))
            self.check(pred.shape == shape, what, f"shape {pred.shape}, expected {shape}")
            self.check(bool(((pred >= 0) & (pred <= 1)).all()), what, "probabilities lie in [0, 1]")
            if task.is_classification:
                self.check(bool(np.allclose(pred.sum(axis=1), 1.0, atol=1e-5)), what, "each row's probabilities sum to 1")
        else:
            self.check(pred.shape == (n,), what, f"shape {pred.shape}, expected {(n,)}")
            self.check(bool(np.isfinite(pred).all()), what, "values are finite")

    def close(self, got: np.ndarray, expected: np.ndarray, what: str, detail: str, tolerance: float = TOLERANCE) -> None:
        got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
        self.check(got.shape == expected.shape, what, f"{detail} (shape {got.shape}, expected {expected.shape})")
        # absolute within ±1, relative beyond (a value of 18,000 is not held closer in float32)
        gap = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
        worst = float(np.nan_to_num(gap, nan=np.inf).max(initial=0.0))
        self.check(worst <= tolerance, what, f"{detail} (largest difference {worst:.3g}, tolerance {tolerance:g})")

    def same_seed(self, kind: str, fitted: Family, split: Split) -> None:
        task, train, valid = split
        again = self.fit(task, train, valid)
        self.close(again.predict(valid.X), fitted.predict(valid.X), f"{kind}: same seed",
                   "two fits with the same data, params and seed predict the same")
        self.passed.append(f"{kind}: same seed")

    def bad_input(self, split: Split) -> None:
        task = split[0]
        unknown = Task("ranking", task.target, [])
        try:
            self.cls.create(unknown, dict(self.params))
        except TakeoffError:
            pass
        else:
            self.check(False, "bad input", "a task kind it does not declare ('ranking') raises a takeoff error")
        try:
            self.cls.create(task, {"not_a_param": 1})
        except ValueError:
            pass
        else:
            self.check(False, "bad input", "an unknown param raises an error")
        empty = self.directory / "empty"
        empty.mkdir(parents=True, exist_ok=True)
        try:
            self.cls.restore(empty, task, dict(self.params))
        except TakeoffError:
            pass
        except Exception as error:  # noqa: BLE001 - the check is that it is one of ours
            self.check(False, "bad input", f"loading from a folder without a saved model raises a takeoff error "
                                           f"(a BundleError), not {type(error).__name__}: {error}")
        else:
            self.check(False, "bad input", "loading from a folder without a saved model raises a takeoff error")
        self.passed.append("bad input")

    def onnx(self, kind: str, fitted: Family, split: Split, tolerance: float) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "the ONNX check of check_family", extra="train") from None
        X = split[2].X.take(np.arange(min(ONNX_ROWS, len(split[2]))))
        graph = fitted.to_onnx(X.take(np.arange(min(4, len(X)))))
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = _feeds(fitted, X, self.directory / "onnx-assets")
        names = [i.name for i in session.get_inputs()]
        missing = [n for n in names if n not in feeds]
        self.check(not missing, f"{kind}: onnx", f"graph inputs {missing} are not among the contract's inputs {sorted(feeds)}")
        (got,) = session.run(["outputs"], {n: feeds[n] for n in names})
        self.close(got, fitted.predict(X), f"{kind}: onnx", "ONNX Runtime gives the outputs of predict", tolerance)
        self.passed.append(f"{kind}: onnx")


def _feeds(family: Family, X: Features, directory: Path) -> dict[str, np.ndarray]:
    """The graph inputs of ``Family.to_onnx``'s contract for the rows ``X``."""
    feeds = {"numeric": X.numeric.astype(np.float32), "categorical": X.categorical.astype(np.int64)}
    if hasattr(family, "onnx_assets"):  # a family that reads text: token ids from its tokenizer
        from takeoff.features.tokens import encode_texts

        directory.mkdir(parents=True, exist_ok=True)
        for column, asset in family.onnx_assets(directory).items():
            ids, mask = encode_texts(directory / asset["tokenizer"], X.text[column], asset["max_length"])
            feeds[f"text.{column}.input_ids"], feeds[f"text.{column}.attention_mask"] = ids, mask
    return feeds
