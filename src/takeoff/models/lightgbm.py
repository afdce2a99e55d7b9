"""Gradient-boosted trees with LightGBM: native categoricals, early stopping on the validation
split, and a hard stop at the time budget. Saved in LightGBM's own text format."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from takeoff.data.schema import Task
from takeoff.errors import BundleError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport, Params
from takeoff.training.context import FitContext


SMALL_ROWS = 20_000
_SPLIT = 100  # ONNX export of regression forests: trees per TreeEnsembleRegressor, summed in double


class LightGBMParams(Params):
    """LightGBM hyperparameters (the rest keep LightGBM's defaults)."""

    learning_rate: float = Field(0.05, gt=0, le=1, description="Shrinkage per boosting round.")
    num_leaves: int = Field(31, ge=2, le=4096, description="Leaves per tree.")
    min_child_samples: int = Field(20, ge=1, description="Rows a leaf needs at least.")
    feature_fraction: float = Field(0.9, gt=0, le=1, description="Share of features tried per tree.")
    bagging_fraction: float = Field(0.8, gt=0, le=1, description="Share of rows sampled per tree.")
    lambda_l2: float = Field(1.0, ge=0, description="L2 regularisation of leaf values.")
    cat_smooth: float = Field(10.0, ge=0, description="Smoothing of categorical splits.")
    extra_trees: bool = Field(False, description="Random split thresholds (extremely randomised trees): less variance on small or noisy tables.")
    min_data_per_group: int = Field(100, ge=1, description="Rows a category group needs to form its own split.")
    max_rounds: int = Field(5000, ge=1, description="Most boosting rounds (early stopping ends sooner).")
    early_stopping_rounds: int = Field(100, ge=1, description="Rounds without improvement before stopping.")
    rounds: int | None = Field(None, ge=1, description="Fixed round count (refit on all data; no early stopping).")
    threads: int = Field(
        0, ge=0, description="CPU threads; 0 = one for small tables (threads cost more than they give there), else all cores."
    )


class LightGBMFamily(Family):
    """LightGBM on the numeric block plus categorical codes as native categoricals."""

    name = "lightgbm"
    prunable = True
    Params = LightGBMParams
    auto_order = 10
    fast_params = {"max_rounds": 30}
    # what ``auto`` tries, in order: the defaults; larger trees learning slower (large tables
    # with interactions); randomised splits with column sampling (small, noisy tables); shallow
    # heavily regularised trees (near-additive signal); a middle ground with small leaves that
    # suits many categoricals
    portfolio = (
        {},
        {"learning_rate": 0.03, "num_leaves": 128, "min_child_samples": 5, "feature_fraction": 0.9, "lambda_l2": 0.0},
        {"extra_trees": True, "feature_fraction": 0.6, "num_leaves": 63, "min_child_samples": 10},
        {"num_leaves": 7, "min_child_samples": 30, "lambda_l2": 10.0, "learning_rate": 0.08, "feature_fraction": 0.7},
        {"num_leaves": 24, "min_child_samples": 3, "cat_smooth": 2.0, "min_data_per_group": 20, "feature_fraction": 0.8,
         "bagging_fraction": 0.9},
    )
    search_space = {
        "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
        "num_leaves": {"low": 4, "high": 256, "log": True},
        "min_child_samples": {"low": 2, "high": 100, "log": True},
        "feature_fraction": {"low": 0.4, "high": 1.0},
        "bagging_fraction": {"low": 0.5, "high": 1.0},
        "lambda_l2": {"low": 1e-3, "high": 30.0, "log": True},
        "extra_trees": {"choices": [False, True]},
        "min_data_per_group": {"low": 5, "high": 200, "log": True},
        "cat_smooth": {"low": 1.0, "high": 50.0, "log": True},
    }
    exports_onnx = True
    explains_trees = True
    serves_in_batches = False  # a row costs microseconds: batching requests would only add waiting

    def __init__(self, task: Task, params: LightGBMParams | dict[str, Any] | None = None):
        super().__init__(task, params)
        self.booster = None

    def _objective(self) -> dict[str, Any]:
        if self.task.kind == "binary":
            return {"objective": "binary", "metric": "binary_logloss"}
        if self.task.kind == "multiclass":
            return {"objective": "multiclass", "num_class": len(self.task.classes), "metric": "multi_logloss"}
        return {"objective": "regression", "metric": "l2"}

    def _dataset(self, lgb, data: Dataset, reference=None):
        X = data.X
        n_num = X.numeric.shape[1]
        return lgb.Dataset(
            X.dense(),
            label=data.y,
            weight=data.weight,
            feature_name=[f"f{i}" for i in range(len(X.names))],
            categorical_feature=list(range(n_num, n_num + X.categorical.shape[1])),
            reference=reference,
            free_raw_data=True,
        )

    @classmethod
    def warm_up(cls) -> None:
        import lightgbm  # noqa: F401 - with scikit-learn and scipy, seconds on a cold start

    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        import lightgbm as lgb

        started = time.monotonic()
        p = self.params
        config = {
            **self._objective(),
            "learning_rate": p.learning_rate,
            "num_leaves": p.num_leaves,
            "min_child_samples": min(p.min_child_samples, max(1, len(train) // 10)),
            "feature_fraction": p.feature_fraction,
            "bagging_fraction": p.bagging_fraction,
            "bagging_freq": 1 if p.bagging_fraction < 1 else 0,
            "lambda_l2": p.lambda_l2,
            "cat_smooth": p.cat_smooth,
            "extra_trees": p.extra_trees,
            "min_data_per_group": p.min_data_per_group,
            "max_cat_to_onehot": 8,
            "num_threads": p.threads or (1 if len(train) < SMALL_ROWS else 0),
            "seed": ctx.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }
        train_set = self._dataset(lgb, train)
        sets, names = [train_set], ["train"]
        if valid is not None and p.rounds is None:
            sets.append(self._dataset(lgb, valid, reference=train_set))
            names.append("valid")
        watcher = _Watcher(ctx, early_stopping=p.early_stopping_rounds if len(sets) > 1 else None)
        self.booster = lgb.train(
            config,
            train_set,
            num_boost_round=p.rounds or p.max_rounds,
            valid_sets=sets,
            valid_names=names,
            callbacks=[watcher],
        )
        best = self.booster.best_iteration or self.booster.current_iteration()
        self.report = FitReport(
            best_iteration=int(best),
            history=watcher.history,
            stopped_by=watcher.stopped_by,
            seconds=time.monotonic() - started,
        )
        return self.report

    def _best_rounds(self) -> int:
        return int(self.report.best_iteration or self.booster.current_iteration())

    def predict(self, X: Features) -> np.ndarray:
        # threads cost more than they give on small batches (a request of a few rows)
        threads = 1 if len(X) < SMALL_ROWS else self.params.threads
        out = self.booster.predict(X.dense(), num_iteration=self._best_rounds(), num_threads=threads)
        if self.task.kind == "binary":
            return np.column_stack([1.0 - out, out])
        return np.asarray(out, dtype=np.float64)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.booster.save_model(str(directory / "lightgbm.txt"), num_iteration=self._best_rounds())
        meta = {"best_iteration": self._best_rounds(), "history": self.report.history}
        (directory / "lightgbm.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> LightGBMFamily:
        """Read a model written by :meth:`save`. The model text is checked in Python first
        (:mod:`takeoff.models.lightgbm_text`): LightGBM's own parser crashes the process on a
        truncated or garbled file instead of raising.

        Raises:
            BundleError: a file is missing, malformed, or does not fit the task.
        """
        import lightgbm as lgb

        from takeoff.models.lightgbm_text import check_model_text

        directory = Path(directory)
        for name in ("lightgbm.txt", "lightgbm.json"):
            if not (directory / name).is_file():
                raise BundleError(str(directory), f"'{name}' is missing", "save the model again")
        model_file = directory / "lightgbm.txt"
        data = model_file.read_bytes()
        counts = check_model_text(data, str(model_file))
        outputs = len(task.classes) if task.kind == "multiclass" else 1
        if counts["num_class"] != outputs or counts["num_tree_per_iteration"] != outputs:
            raise BundleError(str(model_file), f"predicts {counts['num_class']} output(s) per row, the task "
                              f"'{task.kind}' needs {outputs}", "re-copy the bundle from its source, or re-train")
        family = cls(task, params)
        try:
            family.booster = lgb.Booster(model_str=data.decode("utf-8"))  # the bytes just checked
        except (lgb.basic.LightGBMError, ValueError) as error:  # ValueError: pandas_categorical's JSON, UTF-8
            raise BundleError(str(model_file), f"cannot be read by LightGBM {lgb.__version__} ({str(error)[:200]})",
                              "re-copy the bundle from its source, or re-train") from None
        meta_file = directory / "lightgbm.json"
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            best, history = meta["best_iteration"], meta["history"]
        except (ValueError, TypeError, KeyError, RecursionError) as error:
            raise BundleError(str(meta_file), f"is not a LightGBM member's metadata ({type(error).__name__}: {str(error)[:100]})",
                              "re-copy the bundle from its source, or re-train") from None
        if isinstance(best, bool) or not isinstance(best, int) or not 0 < best <= counts["trees"] // outputs:
            raise BundleError(str(meta_file), f"best_iteration {best!r} is not a round of the model's "
                              f"{counts['trees'] // outputs}", "re-copy the bundle from its source, or re-train")
        family.report = FitReport(best_iteration=best, history=history)
        return family

    def to_onnx(self, sample: Features):
        """The trees as an ONNX graph (onnxmltools' TreeEnsemble operators), inputs ``numeric``
        and ``categorical``, output ``outputs`` (see :meth:`Family.to_onnx`).

        Category codes reach the trees as floats, as in :meth:`predict` (``Features.dense``);
        regression forests are summed in double in chunks of trees (onnxmltools' ``split``),
        which keeps their float32 error small.
        """
        import lightgbm as lgb
        import onnx
        import onnxmltools
        from onnx import TensorProto, helper
        from onnxmltools.convert.common.data_types import FloatTensorType

        n_num, n_cat = sample.numeric.shape[1], sample.categorical.shape[1]
        # only the rounds predict uses (a fitted booster may hold more than the best ones)
        text = _float32_thresholds(self.booster.model_to_string(num_iteration=self._best_rounds()))
        booster = lgb.Booster(model_str=text)
        regression = self.task.kind == "regression"
        converted = onnxmltools.convert_lightgbm(
            booster, initial_types=[("X", FloatTensorType([None, n_num + n_cat]))], target_opset=15,
            zipmap=False, split=_SPLIT if regression and booster.num_trees() > _SPLIT else None,
        )
        graph = converted.graph
        result = [o.name for o in graph.output][-1]  # "probabilities" (after "label") or "variable"
        inputs, head = [], []
        parts = []
        if n_num:
            inputs.append(helper.make_tensor_value_info("numeric", TensorProto.FLOAT, ["N", n_num]))
            parts.append("numeric")
        if n_cat:
            inputs.append(helper.make_tensor_value_info("categorical", TensorProto.INT64, ["N", n_cat]))
            head.append(helper.make_node("Cast", ["categorical"], ["categorical_float"], to=TensorProto.FLOAT))
            parts.append("categorical_float")
        head.append(helper.make_node("Concat", parts, ["X"], axis=1) if len(parts) > 1 else
                    helper.make_node("Identity", parts, ["X"]))
        initializers = list(graph.initializer)
        if regression:  # [N, 1] -> [N]
            initializers.append(helper.make_tensor("flat_shape", TensorProto.INT64, [1], [-1]))
            tail = [helper.make_node("Cast", [result], ["values"], to=TensorProto.FLOAT),
                    helper.make_node("Reshape", ["values", "flat_shape"], ["outputs"])]
            output = helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["N"])
        else:
            tail = [helper.make_node("Identity", [result], ["outputs"])]
            output = helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["N", len(self.task.classes)])
        member = helper.make_graph(head + list(graph.node) + tail, "lightgbm", inputs, [output], initializers)
        model = helper.make_model(member, opset_imports=list(converted.opset_import))
        onnx.checker.check_model(model)
        return model

    def prune(self, amount: float, structured: bool, X: Features, deadline: float, seed: int):
        """This model without its last ``amount`` of boosting rounds (later trees correct
        less); no fine-tune, so ``X``, ``deadline`` and ``seed`` are not used."""
        rounds = self._best_rounds()
        kept = max(1, int(math.ceil(rounds * (1.0 - amount))))
        new = copy.copy(self)
        new.report = replace(self.report, best_iteration=kept)
        info: dict[str, Any] = {"member": self.name, "rounds_before": rounds, "rounds_after": kept}
        if structured:
            info["note"] = "trees are pruned by dropping rounds; --structured ignored"
        return new, info

    def tree_contributions(self, X: Features) -> np.ndarray:
        """TreeSHAP contributions to the raw score (LightGBM's exact ``pred_contrib``), float64
        (n, k, d + 1): k is 1 for binary and regression, the class count for multiclass; the
        last of the d + 1 is the expected value (the bias)."""
        dense = X.dense()
        out = self.booster.predict(dense, pred_contrib=True, num_iteration=self._best_rounds())
        out = np.asarray(out, dtype=np.float64)
        width = dense.shape[1] + 1
        return out.reshape(len(dense), out.shape[1] // width, width)  # (n, k*(d+1)) -> (n, k, d+1)

    def refit_params(self, n_rows_ratio: float) -> dict[str, Any]:
        # More rows support a few more rounds at the same learning rate.
        return {"rounds": max(1, round(self._best_rounds() * n_rows_ratio))}

    def feature_importance(self, X: Features) -> np.ndarray:
        return self.booster.feature_importance(importance_type="gain").astype(np.float64)


def _float32_thresholds(model: str) -> str:
    """A LightGBM model text whose numerical split thresholds are float32 values (each the
    largest float32 <= the threshold), so that the ONNX tree operators, which hold float32
    thresholds, send every float32 input down the same branch as LightGBM does.

    Rounding a threshold to the nearest float32 instead (what a converter does) can land on an
    input value that LightGBM sends right, and sends it left: a different leaf. For a float32
    ``x``, ``x <= t`` and ``x <= floor32(t)`` always agree, so LightGBM's own predictions on
    float32 features do not change.
    """
    # "tree_sizes" (bytes per tree, for parallel parsing) would no longer match: without it,
    # LightGBM reads the trees one after the other
    lines = [line for line in model.split("\n") if not line.startswith("tree_sizes=")]
    threshold_at = None  # the line of the current tree's thresholds (decision_type follows it)
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            threshold_at = i
        elif line.startswith("decision_type=") and threshold_at is not None:
            decisions = [int(v) for v in line.split("=", 1)[1].split()]
            thresholds = lines[threshold_at].split("=", 1)[1].split()
            lines[threshold_at] = "threshold=" + " ".join(
                value if decision & 1 else _floor32(float(value))  # bit 0: a categorical split
                for value, decision in zip(thresholds, decisions)
            )
            threshold_at = None
    return "\n".join(lines)


def _floor32(value: float) -> str:
    """The largest float32 <= ``value``, written so that it reads back exactly."""
    f = np.float32(value)
    if float(f) > value:
        f = np.nextafter(f, np.float32(-np.inf))
    return repr(float(f))


class _Watcher:
    """LightGBM callback: learning curves, early stopping and the time budget in one place."""

    order = 30

    def __init__(self, ctx: FitContext, early_stopping: int | None):
        self.ctx, self.patience = ctx, early_stopping
        self.history: dict[str, list[float]] = {}
        self.best, self.best_iter, self.best_result = float("inf"), 0, []
        self.stopped_by = "max"

    def __call__(self, env) -> None:
        import lightgbm as lgb

        for data_name, _metric, value, _higher in env.evaluation_result_list:
            self.history.setdefault(f"{data_name}_loss", []).append(float(value))
        valid = [r for r in env.evaluation_result_list if r[0] == "valid"]
        if valid:
            if valid[0][2] < self.best - 1e-12:
                self.best, self.best_iter, self.best_result = valid[0][2], env.iteration, valid
            elif self.patience and env.iteration - self.best_iter >= self.patience:
                self.stopped_by = "early_stopping"
                raise lgb.callback.EarlyStopException(self.best_iter, self.best_result)
        else:
            self.best_iter, self.best_result = env.iteration, env.evaluation_result_list
        if valid and self.ctx.report is not None:  # e.g. a search pruning this trial
            self.ctx.report(env.iteration, float(valid[0][2]))
        if self.ctx.expired():
            self.stopped_by = "time_budget"
            raise lgb.callback.EarlyStopException(self.best_iter, self.best_result)
