"""A regularised linear model: logistic regression for classes, ridge regression for values.

The fastest family, and the one that wins on small tables whose signal is close to linear. Its
inputs are the numeric block (hashed text included), standardised on the training rows and
clipped to the training range (a linear model extrapolates without bound: an absurd input
must not give an absurd output), and the categorical codes one-hot encoded, at most
``max_one_hot`` columns per categorical column (its most frequent categories; the rarer ones
share the column of code 1, "rare or unseen").

* classification: scikit-learn's ``LogisticRegression`` (lbfgs; the multinomial loss for
  multiclass), optionally with balanced class weights;
* regression: ``Ridge`` with ``alpha = 1 / C``.

``C`` is chosen on the validation rows (log loss or squared error) from a log-spaced grid,
walked from the strongest regularisation to the weakest with warm starts, stopping two points
past the best or when the time budget runs short. The refit on all rows reuses it.

Predicting needs numpy only: the coefficients and scaling vectors are saved in safetensors
(the layout in JSON), and a one-hot product is a gather of coefficient rows, in numpy as in
the exported ONNX graph.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from takeoff.bundle import read_spec, write_atomic, write_json
from takeoff.data.schema import Task
from takeoff.errors import BundleError, DataError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport, Params
from takeoff.training.context import FitContext

SPEC_FILE = "linear.json"
ARRAYS_FILE = "linear.safetensors"
FORMAT = "takeoff-linear"
FORMAT_VERSION = 1
C_GRID = tuple(float(c) for c in np.round(10.0 ** np.linspace(-3, 2, 8), 6))  # 0.001 .. 100
FALLBACK_C = 1.0  # no validation rows and no C given
PATIENCE = 2  # grid points past the best before stopping
DENSE_CELLS = 5_000_000  # a design matrix up to this many cells is dense, else sparse
_PROBA_EPS = 1e-15
_ARRAYS = ("mean", "std", "low", "high", "coef_num", "coef_cat", "intercept", "classes")

PositiveFloat = Annotated[float, Field(gt=0)]


class LinearParams(Params):
    """Hyperparameters of the linear family."""

    C: PositiveFloat | None = Field(
        None, description=f"Inverse regularisation strength (ridge: alpha = 1/C); None: chosen on validation "
                          f"from {C_GRID[0]:g} to {C_GRID[-1]:g} ({FALLBACK_C:g} without validation rows)."
    )
    class_weight: Literal["none", "balanced"] = Field(
        "none", description="Classification: 'balanced' weighs each class inversely to its frequency (fit and C choice)."
    )
    max_one_hot: int = Field(
        100, ge=2, le=100_000,
        description="Most one-hot columns per categorical column (its most frequent categories; the rest join 'rare or unseen').",
    )
    max_iter: int = Field(1000, ge=1, description="Most solver iterations per fit (logistic regression).")


class LinearFamily(Family):
    """Logistic or ridge regression on the standardised numeric block and one-hot categories.

    Example:
        >>> from takeoff.data.schema import Task
        >>> model = LinearFamily(Task("binary", "y", ["no", "yes"]), {"C": 0.5})
    """

    name: ClassVar[str] = "linear"
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "regression")
    Params: ClassVar[type[Params]] = LinearParams
    # right after LightGBM: seconds on most tables, but a wide one-hot block of a large table
    # can take longer than the trees, which every run must have first
    auto_order: ClassVar[int | None] = 15
    fast_params: ClassVar[dict[str, Any]] = {"max_iter": 200}
    search_space: ClassVar[dict[str, dict[str, Any]]] = {
        "C": {"low": 1e-3, "high": 100.0, "log": True},
        "class_weight": {"choices": ["none", "balanced"]},
        "max_one_hot": {"low": 10, "high": 1000, "log": True},
    }
    exports_onnx: ClassVar[bool] = True
    serves_in_batches: ClassVar[bool] = False  # a row costs a dot product

    def __init__(self, task: Task, params: LinearParams | dict[str, Any] | None = None):
        super().__init__(task, params)
        self.spec: dict[str, Any] | None = None  # layout: numeric width, one-hot widths, penalty
        self.arrays: dict[str, np.ndarray] = {}  # the names in _ARRAYS

    # ------------------------------------------------------------------ fit
    @classmethod
    def warm_up(cls) -> None:
        import scipy.sparse  # noqa: F401 - seconds on a cold start
        import sklearn.linear_model  # noqa: F401

    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        """Fix the layout on ``train``, then fit for each C of the grid (see the module docstring).

        Raises:
            DataError: fewer than 2 training rows, or no feature column at all.
        """
        started = time.monotonic()
        p: LinearParams = self.params  # type: ignore[assignment]
        if len(train) < 2:
            raise DataError(f"model family 'linear' needs at least 2 training rows; received {len(train)}")
        if valid is not None and len(valid) == 0:
            valid = None
        self._fit_layout(train.X, p.max_one_hot)
        M_train = self._design(train.X)
        if M_train.shape[1] == 0:
            raise DataError("model family 'linear' found no feature column (no numbers, no categories)")
        M_valid = None if valid is None else self._design(valid.X)

        if p.C is not None or valid is None:
            grid = [p.C if p.C is not None else FALLBACK_C]
        else:
            grid = list(C_GRID)  # strongest regularisation first: those fits are the fastest
        weight = self._weights(train)
        valid_weight = None if valid is None else self._weights(valid)
        losses: list[float] = []
        best: tuple[float, float, tuple] | None = None  # (loss, C, fitted arrays)
        since_best, last_seconds, stopped_by = 0, 0.0, "converged"
        warm: dict[str, Any] = {}
        for C in grid:
            if best is not None and ctx.remaining() < 1.2 * last_seconds:
                stopped_by = "time_budget"
                break
            began = time.monotonic()
            fitted = self._fit_one(C, M_train, train.y, weight, ctx.seed, warm)
            last_seconds = time.monotonic() - began
            if valid is None:
                best = (float("nan"), C, fitted)
                break
            loss = self._loss(self._outputs_from(M_valid, *fitted), valid.y, valid_weight)
            losses.append(loss)
            if best is None or loss < best[0] - 1e-12:
                best, since_best = (loss, C, fitted), 0
            else:
                since_best += 1
                if since_best >= PATIENCE:  # past the best: validation loss is U-shaped in C
                    break
        _, C, (coef, intercept, classes) = best
        n_num = self.spec["n_numeric"]
        self.arrays.update(coef_num=coef[:, :n_num], coef_cat=coef[:, n_num:], intercept=intercept, classes=classes)
        self.spec["C"] = float(C)
        if valid is None and ctx.expired():
            stopped_by = "time_budget"  # a refit past the deadline: the caller keeps the validated model
        self.report = FitReport(
            best_iteration=grid.index(C) + 1,
            history={"valid_loss_per_C": losses} if losses else {},
            stopped_by=stopped_by,
            seconds=time.monotonic() - started,
        )
        return self.report

    def _fit_layout(self, X: Features, max_one_hot: int) -> None:
        """Scaling and clipping of the numbers, one-hot widths of the codes, from the training rows."""
        numbers = X.numeric.astype(np.float64)  # fit checked there are rows
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column of NaN only: its mean is 0
            mean = np.nan_to_num(np.nanmean(numbers, axis=0))
            std = np.nan_to_num(np.nanstd(numbers, axis=0))
        std = np.where(std > 1e-12, std, 1.0)  # a constant column stays 0 after scaling
        z = (np.where(np.isnan(numbers), mean, numbers) - mean) / std
        self.arrays = {"mean": mean, "std": std, "low": z.min(axis=0), "high": z.max(axis=0)}
        widths = [int(min(c, max_one_hot)) for c in X.cardinalities]
        self.spec = {
            "n_numeric": int(X.numeric.shape[1]),
            "cardinalities": [int(c) for c in X.cardinalities],
            "widths": widths,
            "C": None,
        }

    def _scaled(self, X: Features) -> np.ndarray:
        """The numeric block standardised and clipped to the training range, float64 (n, d)."""
        a = self.arrays
        numbers = X.numeric.astype(np.float64)
        numbers = np.where(np.isnan(numbers), a["mean"], numbers)  # imputed upstream; NaN-safe anyway
        return np.clip((numbers - a["mean"]) / a["std"], a["low"], a["high"])

    def _columns(self, X: Features) -> np.ndarray:
        """Each code's one-hot column, int64 (n, c): codes past a column's width (rarer
        categories) take code 1's column, "rare or unseen"."""
        widths = np.asarray(self.spec["widths"], dtype=np.int64)
        codes = X.categorical.astype(np.int64)
        local = np.where(codes < widths, codes, 1)
        offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
        return local + offsets

    def _design(self, X: Features):
        """The matrix the solvers see: scaled numbers then one-hot codes; dense when small,
        else CSR."""
        import scipy.sparse as sp

        n, widths = len(X), self.spec["widths"]
        Z = self._scaled(X)
        if not widths:
            return Z
        total = int(sum(widths))
        columns = self._columns(X).ravel()  # row-major: row i's columns together
        indptr = np.arange(0, n * len(widths) + 1, len(widths), dtype=np.int64)
        onehot = sp.csr_matrix((np.ones(len(columns)), columns, indptr), shape=(n, total))
        if n * (Z.shape[1] + total) <= DENSE_CELLS:
            return np.hstack([Z, onehot.toarray()])
        return sp.hstack([sp.csr_matrix(Z), onehot], format="csr")

    def _weights(self, data: Dataset) -> np.ndarray | None:
        """Row weights: the data's own, times balanced class weights when asked for."""
        weight = None if data.weight is None else np.asarray(data.weight, dtype=np.float64)
        if not self.task.is_classification or self.params.class_weight != "balanced":
            return weight
        y = data.y.astype(np.int64)
        counts = np.bincount(y, minlength=len(self.task.classes)).astype(np.float64)
        present = counts > 0
        per_class = np.where(present, len(y) / (present.sum() * np.maximum(counts, 1.0)), 0.0)
        balanced = per_class[y]
        return balanced if weight is None else balanced * weight

    def _fit_one(self, C: float, M, y: np.ndarray, weight: np.ndarray | None, seed: int,
                 warm: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(coef (k, width), intercept (k,), classes) of one model with penalty ``C``; ``warm``
        carries the previous grid point's solver, which starts from its solution."""
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the best model so far is still good
            if not self.task.is_classification:
                from sklearn.linear_model import Ridge

                model = Ridge(alpha=1.0 / C).fit(M, y.astype(np.float64), sample_weight=weight)
                return (np.atleast_2d(model.coef_).astype(np.float64), np.atleast_1d(model.intercept_).astype(np.float64),
                        np.zeros(0, dtype=np.int64))
            present = np.unique(y.astype(np.int64))
            if len(present) == 1:  # one class seen: predict it
                return np.zeros((1, M.shape[1])), np.zeros(1), present
            from sklearn.linear_model import LogisticRegression

            model = warm.get("model")
            if model is None:
                model = warm["model"] = LogisticRegression(max_iter=self.params.max_iter, warm_start=True,
                                                           random_state=seed)
            model.C = C
            model.fit(M, y.astype(np.int64), sample_weight=weight)
            # copies: a warm-started fit may write into the arrays of the previous one
            return (model.coef_.astype(np.float64, copy=True), model.intercept_.astype(np.float64, copy=True),
                    model.classes_.astype(np.int64))

    def _loss(self, outputs: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> float:
        """Log loss (classification) or squared error (regression), weighted."""
        if self.task.is_classification:
            picked = outputs[np.arange(len(y)), y.astype(np.int64)]
            per_row = -np.log(np.clip(picked, _PROBA_EPS, 1.0))
        else:
            per_row = (outputs - y.astype(np.float64)) ** 2
        if weight is not None and not weight.sum() > 0:
            weight = None
        return float(np.average(per_row, weights=weight))

    # -------------------------------------------------------------- predict
    def _outputs_from(self, M, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return self._link(np.asarray(M @ coef.T) + intercept, classes)

    def _link(self, z: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Scores (n, k) → probabilities in ``task.classes`` order (n, n_classes), or values (n,)."""
        if not self.task.is_classification:
            return z[:, 0]
        if z.shape[1] == 1 and len(classes) == 2:  # binary logistic: z is the logit of classes[1]
            positive = 1.0 / (1.0 + np.exp(-z[:, 0]))
            present = np.column_stack([1.0 - positive, positive])
        else:
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            present = e / e.sum(axis=1, keepdims=True)
        out = np.zeros((len(z), len(self.task.classes)))
        out[:, classes] = present  # a class absent from training gets probability 0
        return out

    def _scores(self, X: Features) -> np.ndarray:
        """Linear scores (n, k): scaled numbers times their coefficients, plus each code's
        coefficient (the one-hot product as a gather), plus the intercept."""
        a = self.arrays
        z = self._scaled(X) @ a["coef_num"].T + a["intercept"]
        if self.spec["widths"]:
            z = z + a["coef_cat"].T[self._columns(X)].sum(axis=1)  # (n, c, k) -> (n, k)
        return z

    def predict(self, X: Features) -> np.ndarray:
        """Probabilities (n, n_classes) in ``task.classes`` order, or values (n,).

        Raises:
            DataError: not fitted, or the features do not have the layout the model was trained on.
        """
        self._check_features(X)
        return self._link(self._scores(X), self.arrays["classes"])

    def _check_features(self, X: Features) -> None:
        if self.spec is None or "coef_num" not in self.arrays:
            raise DataError("model family 'linear' has not been fitted or loaded; call fit() or load() first")
        fix = "Fix: transform the rows with the model's own feature pipeline."
        n_num, cards = self.spec["n_numeric"], self.spec["cardinalities"]
        if X.numeric.ndim != 2 or X.numeric.shape[1] != n_num:
            raise DataError(f"model family 'linear' was trained with {n_num} numeric feature column(s); "
                            f"received {X.numeric.shape[1] if X.numeric.ndim == 2 else X.numeric.shape}. {fix}")
        if X.categorical.ndim != 2 or X.categorical.shape[1] != len(cards):
            raise DataError(f"model family 'linear' was trained with {len(cards)} categorical column(s); "
                            f"received {X.categorical.shape}. {fix}")
        if len(X) and cards:
            bad = (X.categorical < 0) | (X.categorical >= np.asarray(cards))
            if bad.any():
                row, column = np.argwhere(bad)[0]
                name = X.categorical_names[column] if column < len(X.categorical_names) else column
                raise DataError(
                    f"categorical feature '{name}' has code {int(X.categorical[row, column])} in row {int(row)}; "
                    f"the model knows codes 0 to {cards[column] - 1}. {fix}", column=str(name), rows=[int(row)],
                )

    def feature_importance(self, X: Features) -> np.ndarray:
        """Per feature column of ``X`` (numeric then categorical): the spread (standard
        deviation over the rows of ``X``) of its term in the linear scores, summed over outputs."""
        self._check_features(X)
        a = self.arrays
        numeric = (self._scaled(X).std(axis=0)[:, None] * np.abs(a["coef_num"].T)).sum(axis=1)
        if not self.spec["widths"]:
            return numeric
        terms = a["coef_cat"].T[self._columns(X)]  # (n, c, k)
        return np.concatenate([numeric, terms.std(axis=0).sum(axis=1)])

    # ------------------------------------------------------------ save/load
    def save(self, directory: Path) -> None:
        """Write ``linear.json`` (layout, chosen C) and ``linear.safetensors`` (scaling,
        clipping, coefficients), each atomically."""
        from safetensors.numpy import save_file

        if self.spec is None or "coef_num" not in self.arrays:
            raise DataError("model family 'linear' has not been fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.ascontiguousarray(self.arrays[k]) for k in _ARRAYS}
        write_atomic(directory / ARRAYS_FILE, lambda tmp: save_file(arrays, str(tmp)))
        write_json(directory / SPEC_FILE, {
            "format": FORMAT, "version": FORMAT_VERSION, "task": self.task.kind, "layout": self.spec,
            "report": {"best_iteration": self.report.best_iteration, "history": self.report.history},
        })

    @classmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> LinearFamily:
        """Read a model written by :meth:`save` (JSON and safetensors; nothing executed)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        directory = Path(directory)
        document = read_spec(directory, SPEC_FILE, (ARRAYS_FILE,), FORMAT, (FORMAT_VERSION,), "linear")
        if document.get("task") != task.kind:
            raise BundleError(str(directory / SPEC_FILE), f"the model was fitted for task '{document.get('task')}', "
                                                          f"not '{task.kind}'")
        try:
            arrays = load_file(str(directory / ARRAYS_FILE))
        except (OSError, SafetensorError) as error:
            raise BundleError(str(directory / ARRAYS_FILE), f"cannot read the arrays ({error})") from None
        model = cls(task, params)
        model.spec, model.arrays = document["layout"], dict(arrays)
        missing = [k for k in _ARRAYS if k not in arrays]
        n_num, width = model.spec["n_numeric"], sum(model.spec["widths"])
        if missing or arrays["coef_num"].shape[1] != n_num or arrays["coef_cat"].shape[1] != width:
            raise BundleError(str(directory / ARRAYS_FILE), f"the arrays do not match the layout ({n_num} numeric "
                                                            f"columns, {width} one-hot columns; missing {missing})",
                              "save the model again")
        report = document.get("report", {})
        model.report = FitReport(best_iteration=report.get("best_iteration"), history=report.get("history", {}))
        return model

    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        """``{"C": c}``: the C chosen on validation. The penalty is not scaled with the rows:
        the summed loss grows with them, so the same C already regularises a bigger table less."""
        if self.spec is None or self.spec.get("C") is None:
            return None
        return {"C": self.spec["C"]}

    # ----------------------------------------------------------------- onnx
    def to_onnx(self, sample: Features):
        """The model as an ONNX graph computed in float64 as :meth:`predict` is: inputs
        ``numeric`` and ``categorical`` (each only when the model has such columns), output
        ``outputs`` (see :meth:`Family.to_onnx`)."""
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        self._check_features(sample)
        a, spec = self.arrays, self.spec
        nodes, inputs, inits = [], [], []

        def const(name: str, value: np.ndarray) -> str:
            inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
            return name

        def node(op: str, ins: list[str], out: str, **attrs) -> str:
            nodes.append(helper.make_node(op, ins, [out], **attrs))
            return out

        terms = []
        if spec["n_numeric"]:
            inputs.append(helper.make_tensor_value_info("numeric", TensorProto.FLOAT, ["N", spec["n_numeric"]]))
            x = node("Cast", ["numeric"], "x", to=TensorProto.DOUBLE)
            x = node("Where", [node("IsNaN", [x], "x_nan"), const("mean", a["mean"]), x], "x_filled")
            z = node("Div", [node("Sub", [x, "mean"], "x_centred"), const("std", a["std"])], "z")
            z = node("Min", [node("Max", [z, const("low", a["low"])], "z_low"), const("high", a["high"])], "z_clipped")
            terms.append(node("MatMul", [z, const("coef_num_t", a["coef_num"].T)], "numeric_scores"))
        if spec["widths"]:
            widths = np.asarray(spec["widths"], dtype=np.int64)
            inputs.append(helper.make_tensor_value_info("categorical", TensorProto.INT64, ["N", len(widths)]))
            inside = node("Less", ["categorical", const("widths", widths)], "code_inside")
            local = node("Where", [inside, "categorical", const("rare", np.ones(1, dtype=np.int64))], "code_local")
            offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
            columns = node("Add", [local, const("offsets", offsets)], "code_columns")
            gathered = node("Gather", [const("coef_cat_t", a["coef_cat"].T), columns], "code_terms", axis=0)  # (N, c, k)
            terms.append(node("ReduceSum", [gathered, const("axis_1", np.array([1], dtype=np.int64))], "categorical_scores",
                              keepdims=0))
        scores = node("Add", [terms[0], const("intercept", a["intercept"])], "scores")
        for i, term in enumerate(terms[1:]):
            scores = node("Add", [scores, term], f"scores_{i}")
        classes = a["classes"]
        if not self.task.is_classification:
            out = node("Reshape", [scores, const("flat", np.array([-1], dtype=np.int64))], "values")  # (N, 1) -> (N,)
            shape = ["N"]
        else:
            if a["coef_num"].shape[0] == 1 and len(classes) == 2:  # logit of classes[1]
                positive = node("Sigmoid", [scores], "positive")
                negative = node("Sub", [const("one", np.ones(1)), positive], "negative")
                present = node("Concat", [negative, positive], "present", axis=1)
            else:
                present = node("Softmax", [scores], "present", axis=1)
            placed = np.zeros((len(classes), len(self.task.classes)))
            placed[np.arange(len(classes)), classes] = 1.0  # absent classes get probability 0
            out = node("MatMul", [present, const("placed", placed)], "probabilities")
            shape = ["N", len(self.task.classes)]
        node("Cast", [out], "outputs", to=TensorProto.FLOAT)
        output = helper.make_tensor_value_info("outputs", TensorProto.FLOAT, shape)
        model = helper.make_model(helper.make_graph(nodes, "linear", inputs, [output], inits),
                                  opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = helper.find_min_ir_version_for(model.opset_import, ignore_unknown=True)
        onnx.checker.check_model(model)
        return model
