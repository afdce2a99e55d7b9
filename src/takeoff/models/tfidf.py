"""TF-IDF n-grams and a linear model: the strong, fast choice for text on small tables.

Per free-text column two vectorizers, each capped at ``max_features`` terms (the most frequent):

* words: 1- and 2-grams, sublinear tf, terms in at least ``min_df`` rows;
* characters: 2- to 5-grams inside word boundaries (``char_wb``), sublinear tf, same ``min_df``.

The table's other columns join them: the numeric block *without* the hashed bags of words
(``<column>__h<i>``, which the n-grams replace) and one-hot categorical codes. All of it is one
sparse matrix, and the model is

* classification: logistic regression (liblinear for binary, multinomial saga for multiclass),
  its ``C`` chosen on the validation rows by log loss from ``C_grid``. By default each class
  weighs alike (``class_weight: balanced``: a row weighs n / (k * n_its_class), and the
  validation log loss is weighed the same way), so a class of 9% of the rows is predicted
  where the text says so instead of being drowned by the majority; ``none`` fits the plain
  likelihood, whose probabilities are calibrated to the training shares (``auto`` tries both);
* regression: ridge regression, its ``alpha`` chosen on the validation rows by squared error
  from ``alpha_grid``.

The grid is walked from the strongest regularisation to the weakest (the cheap fits first) and
stops one point past the best, or when the time budget runs out. The refit on train + validation
uses the chosen value. Predictions are computed with numpy from the saved coefficients, so a
loaded model (vocabularies in JSON, idf and coefficients in safetensors) predicts bit for bit
what the fitted one did.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from takeoff.bundle import read_spec, write_atomic, write_json
from takeoff.data.schema import Task
from takeoff.errors import BudgetError, BundleError, DataError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport, Params
from takeoff.training.context import FitContext

SPEC_FILE = "tfidf.json"
ARRAYS_FILE = "tfidf.safetensors"
FORMAT = "takeoff-tfidf"
FORMAT_VERSION = 1
HASHED = re.compile(r"__h\d+$")  # the pipeline's hashed bag-of-words columns
ANALYZERS = {"word": {"analyzer": "word", "ngram_range": (1, 2)}, "char": {"analyzer": "char_wb", "ngram_range": (2, 5)}}
# Without validation rows (the refit) and no C / alpha given: values that suit most texts.
_FALLBACK_C = 4.0
_FALLBACK_ALPHA = 1.0
_PROBA_EPS = 1e-15
_SAGA_TOL = 1e-3  # saga's default 1e-4 costs about twice the time for the same validation loss

PositiveFloat = Annotated[float, Field(gt=0)]


class TfidfParams(Params):
    """Hyperparameters of the tfidf family."""

    analyzers: Literal["word+char", "word", "char"] = Field(
        "word+char", description="Vectorizers per text column: word 1-2-grams, character 2-5-grams, or both."
    )
    max_features: int = Field(
        50_000, ge=1, description="Most terms kept per vectorizer and text column (the most frequent first)."
    )
    min_df: int = Field(2, ge=1, description="A term is kept when it occurs in at least this many training rows.")
    C: PositiveFloat | None = Field(
        None, description=f"Classification: inverse regularisation; None: chosen on validation from C_grid ({_FALLBACK_C:g} without)."
    )
    C_grid: tuple[PositiveFloat, ...] = Field(
        (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0), min_length=1, description="Classification: the C values tried on validation."
    )
    alpha: PositiveFloat | None = Field(
        None, description=f"Regression: ridge penalty; None: chosen on validation from alpha_grid ({_FALLBACK_ALPHA:g} without)."
    )
    alpha_grid: tuple[PositiveFloat, ...] = Field(
        (30.0, 10.0, 3.0, 1.0, 0.3, 0.1), min_length=1, description="Regression: the alpha values tried on validation."
    )
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", description="Classification: balanced = every class weighs alike in the fit and in the "
                                "validation loss (rows weighted n / (k * class count)); none = every row alike.")
    solver: Literal["auto", "liblinear", "saga", "lbfgs"] = Field(
        "auto", description="Logistic regression solver; auto: liblinear for binary, saga (multinomial) for multiclass."
    )
    max_iter: int = Field(1000, ge=1, description="Most solver iterations per fit.")


SAMPLE_TEXTS = 400  # texts a vectorizer is timed on before it is fitted with a deadline


def _check_vectorizing_time(vectorizer, texts, kind: str, ctx: FitContext) -> None:
    """Raise BudgetError when the deadline has passed, or when vectorizing ``texts`` (timed on
    :data:`SAMPLE_TEXTS` of them, scaled linearly, with a 20% margin) would run past it."""
    from sklearn.base import clone

    if ctx.expired():
        raise BudgetError(f"model family 'tfidf': the time budget ran out before the {kind} n-grams were made. "
                          "Fix: give a larger time budget.")
    if ctx.deadline is None or len(texts) <= 2 * SAMPLE_TEXTS:
        return
    began = time.monotonic()
    try:
        clone(vectorizer).fit_transform(texts[:SAMPLE_TEXTS])
    except ValueError:  # no term in the sample: the full fit decides
        return
    needed = (time.monotonic() - began) * len(texts) / SAMPLE_TEXTS * 1.2
    if needed > ctx.remaining():
        raise BudgetError(f"model family 'tfidf': the {kind} n-grams of {len(texts):,} texts would take ~{needed:.1f}s, "
                          f"{max(ctx.remaining(), 0):.1f}s are left. Fix: give a larger time budget, or set analyzers: word.")


class TfidfFamily(Family):
    """TF-IDF word and character n-grams of each text column, with the other columns, into a
    linear model.

    Example:
        >>> from takeoff.data.schema import Task
        >>> model = TfidfFamily(Task("binary", "y", ["no", "yes"]), {"C": 2.0})
    """

    name: ClassVar[str] = "tfidf"
    auto_order: ClassVar[int | None] = 30
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "regression")
    Params: ClassVar[type[Params]] = TfidfParams
    needs_text: ClassVar[bool] = True
    # vectorizing every text again per fold costs more than cross-validation gives: text tables
    # are judged on the holdout split
    cross_validates: ClassVar[bool] = False
    # balanced first (the better macro scores on imbalanced text), then the plain likelihood
    # (calibrated to the class shares: the better log loss where the metric is a probability one)
    portfolio: ClassVar[tuple[dict[str, Any], ...]] = ({}, {"class_weight": "none"})

    def __init__(self, task: Task, params: TfidfParams | dict[str, Any] | None = None):
        super().__init__(task, params)
        self.spec: dict[str, Any] | None = None  # layout of the matrix, chosen penalty
        self.vectorizers: list[tuple[str, str, Any]] = []  # (text column, "word"/"char", fitted vectorizer)
        self.coef: np.ndarray | None = None  # (n_outputs, n_matrix_columns)
        self.intercept: np.ndarray | None = None  # (n_outputs,)
        self.classes: np.ndarray | None = None  # class codes the coefficients are for (classification)

    # ------------------------------------------------------------------ fit
    @classmethod
    def warm_up(cls) -> None:
        import sklearn.feature_extraction.text  # noqa: F401 - seconds on a cold start
        import sklearn.linear_model  # noqa: F401

    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        """Vectorize, then fit the linear model for each grid point (see the module docstring).

        Raises:
            BudgetError: the deadline passed before a model could be fitted.
            DataError: fewer than 2 training rows, or no feature column at all.
        """
        start = time.monotonic()
        p: TfidfParams = self.params  # type: ignore[assignment]
        if len(train) < 2:
            raise DataError(f"model family 'tfidf' needs at least 2 training rows; received {len(train)}")
        if ctx.expired():
            raise BudgetError("model family 'tfidf': no time left to vectorize the texts. Fix: give a larger time budget.")
        if valid is not None and len(valid) == 0:
            valid = None
        text_blocks = self._fit_layout(train.X, ctx)
        M_train = self._matrix(train.X, text_blocks)
        M_valid = None if valid is None else self._matrix(valid.X)
        if M_train.shape[1] == 0:
            raise DataError("model family 'tfidf' found no feature column (no text terms, numbers or categories)")
        if ctx.expired():
            raise BudgetError(
                "model family 'tfidf': the time budget ran out while vectorizing the texts. "
                "Fix: give a larger time budget, or lower max_features."
            )

        classification = self.task.is_classification
        if classification and p.class_weight == "balanced":
            n_classes = len(self.task.classes)
            train = _balanced(train, n_classes)
            valid = None if valid is None else _balanced(valid, n_classes)
        fixed = p.C if classification else p.alpha
        if fixed is not None or valid is None:
            grid = [fixed if fixed is not None else (_FALLBACK_C if classification else _FALLBACK_ALPHA)]
        else:
            # strongest regularisation first: those fits are the fastest
            grid = sorted(set(p.C_grid)) if classification else sorted(set(p.alpha_grid), reverse=True)
        losses: list[float] = []
        best: tuple[float, float, Any] | None = None  # (loss, value, fitted state)
        stopped_by, last_seconds = "converged", 0.0
        warm: dict[str, Any] = {}  # the previous grid point's solution, to start the next from
        for value in grid:
            if best is not None and ctx.remaining() < 1.2 * last_seconds:
                stopped_by = "time_budget"
                break
            began = time.monotonic()
            state = self._fit_one(value, M_train, train, ctx.seed, warm)
            last_seconds = time.monotonic() - began
            if valid is None:
                best = (float("nan"), value, state)
                break
            loss = self._loss(self._outputs(M_valid, *state), valid)
            losses.append(loss)
            if best is None or loss < best[0]:
                best = (loss, value, state)
            else:
                break  # past the best: the validation loss is U-shaped in the penalty
        _, value, (self.coef, self.intercept, self.classes) = best
        self.spec["penalty"] = float(value)
        chosen = grid.index(value) + 1
        self.report = FitReport(
            best_iteration=chosen,
            history={f"valid_loss_per_{'C' if classification else 'alpha'}": losses} if losses else {},
            stopped_by=stopped_by,
            seconds=time.monotonic() - start,
        )
        return self.report

    def _fit_layout(self, X: Features, ctx: FitContext | None = None) -> list[Any]:
        """Fit the vectorizers and fix which numeric columns and one-hot widths join them.

        Returns the training rows' TF-IDF blocks (one per vectorizer), so they are not made twice.
        With a deadline in ``ctx``, each vectorizer is timed on a sample of the texts first: one
        that would not finish in the time left is not started (BudgetError), since scikit-learn
        cannot stop it half-way.
        """
        from sklearn.feature_extraction.text import TfidfVectorizer

        p: TfidfParams = self.params  # type: ignore[assignment]
        kinds = ["word", "char"] if p.analyzers == "word+char" else [p.analyzers]
        self.vectorizers, blocks = [], []
        for column in sorted(X.text):
            for kind in kinds:
                vectorizer = TfidfVectorizer(**_vectorizer_args(kind, p.min_df, p.max_features))
                if ctx is not None:
                    _check_vectorizing_time(vectorizer, X.text[column], kind, ctx)
                try:
                    blocks.append(vectorizer.fit_transform(X.text[column]))
                except ValueError:  # no term left (empty texts, or all rarer than min_df)
                    continue
                self.vectorizers.append((column, kind, vectorizer))
        text_columns = set(X.text)
        keep = [
            j for j, name in enumerate(X.numeric_names)
            if not (HASHED.search(name) and X.sources[j] in text_columns)
        ]
        self.spec = {
            "text_columns": sorted(X.text),
            "n_numeric": int(X.numeric.shape[1]),
            "numeric_keep": keep,
            "cardinalities": [int(c) for c in X.cardinalities],
            "penalty": None,
        }
        return blocks

    def _fit_one(self, value: float, M, data: Dataset, seed: int, warm: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(coef, intercept, classes) of one linear model with penalty ``value``.

        ``warm`` carries the previous grid point's model: saga and lbfgs start from its solution.
        """
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        p: TfidfParams = self.params  # type: ignore[assignment]
        weight = None if data.weight is None else np.asarray(data.weight, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the best model so far is still good
            if not self.task.is_classification:
                from sklearn.linear_model import Ridge

                model = Ridge(alpha=value, random_state=seed).fit(M, data.y.astype(np.float64), sample_weight=weight)
                return np.atleast_2d(model.coef_).astype(np.float64), np.atleast_1d(model.intercept_).astype(np.float64), None
            present = np.unique(data.y)
            if len(present) == 1:  # a single class seen: predict it
                return np.zeros((1, M.shape[1])), np.zeros(1), present.astype(np.int64)
            from sklearn.linear_model import LogisticRegression

            solver = p.solver
            if solver == "auto":
                solver = "liblinear" if len(present) == 2 else "saga"
            if solver == "liblinear" and len(present) > 2:
                solver = "saga"  # liblinear is one-vs-rest only; multiclass gets the multinomial loss
            model = warm.get("model")
            if model is None or model.solver != solver:
                model = LogisticRegression(
                    solver=solver,
                    max_iter=p.max_iter,
                    random_state=seed,
                    # liblinear: the dual problem is far faster with more columns than rows
                    dual=solver == "liblinear" and M.shape[1] > M.shape[0],
                    tol=_SAGA_TOL if solver == "saga" else 1e-4,
                    warm_start=solver != "liblinear",
                )
                warm["model"] = model
            # the objective is C * sum(w_i * loss_i) + penalty: the same with weights divided by
            # their largest and C times it; saga's step size assumes weights of at most 1 and
            # crawls with larger ones (balanced weights of a 9% class are ~3.7)
            scale = 1.0 if weight is None else float(weight.max())
            model.C = value * scale
            model.fit(M, data.y.astype(np.int64), sample_weight=None if weight is None else weight / scale)
            # copies: a warm-started fit may write into the arrays of the previous one
            return model.coef_.astype(np.float64, copy=True), model.intercept_.astype(np.float64, copy=True), model.classes_.astype(np.int64)

    def _loss(self, outputs: np.ndarray, data: Dataset) -> float:
        """Validation log loss (classification) or mean squared error (regression), weighted."""
        if self.task.is_classification:
            picked = outputs[np.arange(len(data)), data.y.astype(np.int64)]
            per_row = -np.log(np.clip(picked, _PROBA_EPS, 1.0))
        else:
            per_row = (outputs - data.y.astype(np.float64)) ** 2
        return float(np.average(per_row, weights=data.weight))

    # -------------------------------------------------------------- predict
    def _matrix(self, X: Features, text_blocks: list[Any] | None = None):
        """The sparse design matrix (n, terms + kept numbers + one-hot codes), float64 CSR.

        Each TF-IDF row has unit length; the numbers and the one-hot codes are divided by the
        square root of their column count, so that each block weighs about as much as one text
        column in a row. That keeps the solvers fast (liblinear needs 5-10x more iterations on
        a few unscaled heavy-tailed counts) at no cost in accuracy on the tweets data.
        """
        import scipy.sparse as sp

        spec = self.spec
        n = len(X)
        if text_blocks is None:
            text_blocks = [vectorizer.transform(X.text[column]) for column, _, vectorizer in self.vectorizers]
        blocks = list(text_blocks)
        keep = spec["numeric_keep"]
        if keep:
            numbers = X.numeric[:, keep].astype(np.float64) / np.sqrt(len(keep))
            blocks.append(sp.csr_matrix(numbers))
        cards = spec["cardinalities"]
        if cards:
            offsets = np.concatenate([[0], np.cumsum(cards)[:-1]]).astype(np.int64)
            columns = (X.categorical.astype(np.int64) + offsets).ravel()  # row-major: row i's codes together
            indptr = np.arange(0, n * len(cards) + 1, len(cards), dtype=np.int64)
            ones = np.full(len(columns), 1.0 / np.sqrt(len(cards)))
            blocks.append(sp.csr_matrix((ones, columns, indptr), shape=(n, int(sum(cards)))))
        if not blocks:
            return sp.csr_matrix((n, 0))
        return sp.hstack(blocks, format="csr", dtype=np.float64)

    def _outputs(self, M, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
        z = np.asarray(M @ coef.T) + intercept  # (n, n_outputs)
        if not self.task.is_classification:
            return z[:, 0]
        if len(classes) == 2 and coef.shape[0] == 1:  # binary logistic: z is the logit of classes[1]
            positive = 1.0 / (1.0 + np.exp(-z[:, 0]))
            present = np.column_stack([1.0 - positive, positive])
        else:
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            present = e / e.sum(axis=1, keepdims=True)
        out = np.zeros((M.shape[0], len(self.task.classes)))
        out[:, classes] = present  # a class absent from training gets probability 0
        return out

    def predict(self, X: Features) -> np.ndarray:
        """Probabilities (n, n_classes) in ``task.classes`` order, or values (n,).

        Raises:
            DataError: not fitted, or the features do not have the layout the model was trained on.
        """
        if self.coef is None or self.spec is None:
            raise DataError("model family 'tfidf' has not been fitted or loaded; call fit() or load() first")
        self._check_features(X)
        if len(X) == 0:  # the vectorizers refuse zero rows
            return np.zeros((0, len(self.task.classes)) if self.task.is_classification else 0)
        import sklearn

        # the features are ours and already checked: scikit-learn's own argument and finiteness
        # checks cost more than the transform itself on a request of a few rows (~1 ms of 1.6)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return self._outputs(self._matrix(X), self.coef, self.intercept, self.classes)

    def _check_features(self, X: Features) -> None:
        spec = self.spec
        fix = "Fix: transform the rows with the model's own feature pipeline."
        missing = [c for c in spec["text_columns"] if c not in X.text]
        if missing:
            raise DataError(f"model family 'tfidf' was trained with text column(s) {missing}; the features lack them. {fix}", column=missing[0])
        if X.numeric.ndim != 2 or X.numeric.shape[1] != spec["n_numeric"]:
            raise DataError(
                f"model family 'tfidf' was trained with {spec['n_numeric']} numeric feature column(s); "
                f"received {X.numeric.shape[1] if X.numeric.ndim == 2 else X.numeric.shape}. {fix}"
            )
        cards = spec["cardinalities"]
        if X.categorical.ndim != 2 or X.categorical.shape[1] != len(cards):
            raise DataError(
                f"model family 'tfidf' was trained with {len(cards)} categorical column(s); received {X.categorical.shape}. {fix}"
            )
        if spec["numeric_keep"] and len(X):
            block = X.numeric[:, spec["numeric_keep"]]
            if not np.isfinite(block).all():
                rows = np.flatnonzero(~np.isfinite(block).all(axis=1))
                raise DataError(
                    f"numeric features hold nan or infinite values in {len(rows)} row(s), e.g. rows "
                    f"{rows[:5].tolist()}. {fix}",
                    rows=rows[:100].tolist(),
                )
        if len(X) and cards:
            bad = (X.categorical < 0) | (X.categorical >= np.asarray(cards))
            if bad.any():
                row, column = np.argwhere(bad)[0]
                name = X.categorical_names[column] if column < len(X.categorical_names) else column
                raise DataError(
                    f"categorical feature '{name}' has code {int(X.categorical[row, column])} in row {int(row)}; "
                    f"the model knows codes 0 to {cards[column] - 1}. {fix}",
                    column=str(name),
                    rows=[int(row)],
                )

    # ------------------------------------------------------------ save/load
    def save(self, directory: Path) -> None:
        """Write ``tfidf.json`` (layout, vocabularies, params) and ``tfidf.safetensors`` (idf
        weights, coefficients), each atomically."""
        from safetensors.numpy import save_file

        if self.coef is None or self.spec is None:
            raise DataError("model family 'tfidf' has not been fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {"coef": np.ascontiguousarray(self.coef), "intercept": np.ascontiguousarray(self.intercept)}
        if self.classes is not None:
            arrays["classes"] = np.ascontiguousarray(self.classes, dtype=np.int64)
        vectorizers = []
        for i, (column, kind, vectorizer) in enumerate(self.vectorizers):
            arrays[f"idf{i}"] = np.ascontiguousarray(vectorizer.idf_, dtype=np.float64)
            # term -> column index; JSON keeps any unicode term as it is
            vocabulary = {term: int(index) for term, index in vectorizer.vocabulary_.items()}
            vectorizers.append({"column": column, "kind": kind, "vocabulary": vocabulary})
        write_atomic(directory / ARRAYS_FILE, lambda tmp: save_file(arrays, str(tmp)))
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "task": self.task.kind,
            "layout": self.spec,
            "vectorizers": vectorizers,
            "params": self.params.model_dump(mode="json"),
            "report": {"best_iteration": self.report.best_iteration, "history": self.report.history},
        }
        write_json(directory / SPEC_FILE, document)

    @classmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> TfidfFamily:
        """Rebuild the vectorizers from their vocabularies and idf weights; read the coefficients."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
        from sklearn.feature_extraction.text import TfidfVectorizer

        directory = Path(directory)
        spec_path, arrays_path = directory / SPEC_FILE, directory / ARRAYS_FILE
        document = read_spec(directory, SPEC_FILE, (ARRAYS_FILE,), FORMAT, (FORMAT_VERSION,), "tfidf")
        if document.get("task") != task.kind:
            raise BundleError(str(spec_path), f"the model was fitted for task '{document.get('task')}', not '{task.kind}'")
        try:
            arrays = load_file(str(arrays_path))
        except (OSError, SafetensorError) as error:
            raise BundleError(str(arrays_path), f"cannot read the arrays ({error})")
        model = cls(task, params)
        saved = TfidfParams(**document["params"])  # the vectorizers are rebuilt as they were fitted
        model.spec = document["layout"]
        for i, entry in enumerate(document["vectorizers"]):
            vocabulary = entry["vocabulary"]
            vectorizer = TfidfVectorizer(**_vectorizer_args(entry["kind"], saved.min_df, saved.max_features), vocabulary=vocabulary)
            idf = arrays.get(f"idf{i}")
            if idf is None or idf.shape != (len(vocabulary),):
                raise BundleError(str(arrays_path), f"the idf weights of vectorizer {i} do not match its vocabulary")
            vectorizer.idf_ = idf
            model.vectorizers.append((entry["column"], entry["kind"], vectorizer))
        model.coef, model.intercept, model.classes = arrays["coef"], arrays["intercept"], arrays.get("classes")
        width = sum(len(v.vocabulary_) for _, _, v in model.vectorizers) + len(model.spec["numeric_keep"]) + sum(model.spec["cardinalities"])
        if model.coef.shape[1] != width or (task.is_classification and model.classes is None):
            raise BundleError(str(arrays_path), f"the coefficients ({model.coef.shape}) do not match the layout ({width} columns)")
        report = document.get("report", {})
        model.report = FitReport(best_iteration=report.get("best_iteration"), history=report.get("history", {}))
        return model

    # ---------------------------------------------------------------- refit
    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        """``{"C": c}`` or ``{"alpha": a}``: the penalty chosen on validation, without a grid."""
        if self.spec is None or self.spec.get("penalty") is None:
            return None
        return {("C" if self.task.is_classification else "alpha"): self.spec["penalty"]}


def _balanced(data: Dataset, n_classes: int) -> Dataset:
    """``data`` with each row's weight times n / (k * n_its_class) (k: the classes present), so
    that every class of ``data`` weighs alike in total."""
    from dataclasses import replace

    base = np.ones(len(data)) if data.weight is None else np.asarray(data.weight, dtype=np.float64)
    y = data.y.astype(np.int64)
    counts = np.bincount(y, weights=base, minlength=n_classes)
    present = counts > 0
    factor = np.ones(n_classes)
    factor[present] = counts.sum() / (present.sum() * counts[present])
    return replace(data, weight=base * factor[y])


def _vectorizer_args(kind: str, min_df: int, max_features: int) -> dict[str, Any]:
    return {**ANALYZERS[kind], "sublinear_tf": True, "min_df": min_df, "max_features": max_features, "dtype": np.float64}
