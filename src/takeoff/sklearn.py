"""takeoff as scikit-learn estimators: :class:`TakeoffClassifier` and :class:`TakeoffRegressor`.

Each ``fit`` runs :func:`takeoff.train` on ``X`` (a DataFrame, kept as it is: text, categories
and dates included; or a numeric array, its columns named ``x0``, ``x1``...) within
``time_budget`` seconds, so takeoff sits in a ``Pipeline``, ``cross_val_score`` or
``GridSearchCV`` like any estimator. The fitted takeoff model is ``model_`` (its
:meth:`~takeoff.Model.leaderboard`, :meth:`~takeoff.Model.save`...).

Example:
    >>> from sklearn.model_selection import cross_val_score
    >>> from takeoff.sklearn import TakeoffClassifier
    >>> cross_val_score(TakeoffClassifier(family="lightgbm", time_budget=10), X, y, cv=5)

scikit-learn's estimator checks (``sklearn.utils.estimator_checks``) pass: every check that
``parametrize_with_checks`` yields for these estimators. Two kinds are not run: the sample-weight
checks (``fit`` takes no ``sample_weight``: takeoff does not weight rows) and
``check_array_api_input`` (scikit-learn skips it unless ``SCIPY_ARRAY_API=1``; takeoff reads
NumPy and pandas). :data:`SKIPPED_CHECKS` names any check expected to fail, with why (none).

Pickling (``pickle``, ``joblib``) stores the fitted model as its bundle's files (JSON,
safetensors, LightGBM text), and unpickling loads them as :func:`takeoff.load` does; the
estimator itself is never the bundle format: save ``model_`` for that.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff.errors import DataError

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_array, check_is_fitted
except ImportError as error:  # pragma: no cover - the train extra is missing
    from takeoff.errors import MissingDependencyError

    raise MissingDependencyError("scikit-learn", "takeoff.sklearn", extra="train") from error

__all__ = ["SKIPPED_CHECKS", "TakeoffClassifier", "TakeoffRegressor"]

TARGET = "__takeoff_target__"

# scikit-learn estimator checks expected to fail, by name, with the reason (none at present).
# tests/test_sklearn.py runs every check of ``parametrize_with_checks`` with these as expected
# failures. Not run at all: the sample-weight checks (``fit`` takes no ``sample_weight``), and
# ``check_array_api_input``, which scikit-learn itself skips unless SCIPY_ARRAY_API=1.
SKIPPED_CHECKS: dict[str, str] = {}


class _TakeoffEstimator(BaseEstimator):
    """What both estimators share: the parameters of :func:`takeoff.train` and the X handling."""

    def __init__(self, time_budget: float = 60.0, family: str = "auto", metric: str | None = None,
                 seed: int = 0, config: dict | None = None):
        self.time_budget = time_budget
        self.family = family
        self.metric = metric
        self.seed = seed
        self.config = config

    # ---------------------------------------------------------------- X
    def _table(self, X, *, reset: bool) -> pd.DataFrame:
        """``X`` as the table takeoff reads: a DataFrame keeps its columns and dtypes; anything
        else becomes a 2-D array (NaN allowed: takeoff imputes) with columns x0, x1..."""
        if isinstance(X, pd.DataFrame):
            names = [str(c) for c in X.columns]
            if reset:
                self.feature_names_in_ = np.asarray(names, dtype=object)
                self.n_features_in_ = len(names)
            else:
                self._check_width(len(names))
                expected = list(getattr(self, "feature_names_in_", []))
                if expected and names != expected:
                    raise DataError(f"X has columns {names[:8]} but the estimator was fitted with {expected[:8]}. "
                                    "Fix: pass the same columns, in the same order, as at fit.")
            if X.shape[0] == 0:
                raise DataError(f"X has 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
            return X.set_axis(names, axis=1).reset_index(drop=True)
        array = check_array(X, dtype=None, ensure_all_finite="allow-nan", ensure_min_samples=1)
        if array.dtype.kind not in "biufcOUSMm":
            raise DataError(f"X has dtype {array.dtype}; takeoff reads numbers, text and dates.")
        if np.isinf(array.astype(float, copy=False) if array.dtype.kind in "biuf" else np.zeros(1)).any():
            raise DataError("X holds infinity; takeoff reads finite numbers (missing values may be NaN). "
                            "Fix: replace inf with NaN or a large number.")
        if reset:
            self.n_features_in_ = array.shape[1]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            names = [f"x{i}" for i in range(array.shape[1])]
        else:
            self._check_width(array.shape[1])
            # fitted on a DataFrame, predicting on an array: its columns by position
            names = [str(n) for n in getattr(self, "feature_names_in_", [f"x{i}" for i in range(array.shape[1])])]
        return pd.DataFrame({n: array[:, i] for i, n in enumerate(names)}).infer_objects()

    def _check_width(self, width: int) -> None:
        if width != self.n_features_in_:
            raise DataError(f"X has {width} features, but {type(self).__name__} is expecting "
                            f"{self.n_features_in_} features as input.")

    def _fit(self, table: pd.DataFrame, y: np.ndarray):
        import takeoff

        if len(y) != len(table):
            raise DataError(f"X has {len(table)} rows but y has {len(y)}. Fix: give one target value per row.")
        if len(table) < 2:
            raise DataError(f"X has 1 sample; takeoff needs at least 2 rows (n_samples=1): one to learn from and one "
                            "to validate on.")
        data = table.assign(**{TARGET: y})
        # a class with a single row cannot be both learned and validated: its rows are dropped (with a
        # warning) rather than failing, as scikit-learn estimators fit any labels they are given
        config = {"drop_rare_classes": self._task_of(y) != "regression", **(self.config or {})}
        return takeoff.train(data, target=TARGET, time_budget=self.time_budget, family=self.family,
                             metric=self.metric, seed=self.seed, task=self._task_of(y), config=config)

    def _task_of(self, y: np.ndarray) -> str:
        raise NotImplementedError

    # --------------------------------------------------------------- pickle
    def __getstate__(self) -> dict[str, Any]:
        """The fitted model travels as its bundle's files, never as pickled Python objects."""
        state = dict(self.__dict__)
        model = state.pop("model_", None)
        if model is not None:
            with tempfile.TemporaryDirectory() as tmp:
                model.save(Path(tmp) / "bundle")
                root = Path(tmp) / "bundle"
                state["_bundle_files"] = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        files = state.pop("_bundle_files", None)
        self.__dict__.update(state)
        if files is not None:
            import takeoff

            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp) / "bundle"
                for name, content in files.items():
                    (root / name).parent.mkdir(parents=True, exist_ok=True)
                    (root / name).write_bytes(content)
                self.model_ = takeoff.load(root)
                self.model_.path = None  # the folder is gone once loaded

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # takeoff imputes missing values
        tags.input_tags.string = True  # and reads text and categories (in a DataFrame)
        tags.input_tags.categorical = True
        return tags


class TakeoffClassifier(ClassifierMixin, _TakeoffEstimator):
    """A takeoff model as a scikit-learn classifier (binary or multiclass).

    Args:
        time_budget: seconds each ``fit`` may take (default 60).
        family: model family, or ``"auto"`` to try several and keep the best or a blend.
        metric: what the run is judged by (default ``roc_auc`` for two classes, ``log_loss``
            for more); it picks the models and the blend.
        seed: random seed.
        config: any other :func:`takeoff.train` settings, as a dict (see ``takeoff config show``).

    Attributes:
        classes_: the labels, sorted.
        model_: the fitted :class:`takeoff.Model`.
        n_features_in_, feature_names_in_: as scikit-learn defines them.

    ``predict`` returns the most probable class (the scikit-learn convention, consistent with
    ``predict_proba``); ``model_.predict`` applies takeoff's decision rule tuned for ``metric``.
    """

    def fit(self, X, y) -> TakeoffClassifier:
        table = self._table(X, reset=True)
        y = _column(y, self)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least 2 classes.")
        self.model_ = self._fit(table, codes)
        return self

    def _task_of(self, y: np.ndarray) -> str:
        return "binary" if len(self.classes_) == 2 else "multiclass"

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        check_is_fitted(self)
        proba = self.model_.predict_proba(self._table(X, reset=False))
        # a class too rare to learn from (dropped at fit, see drop_rare_classes) has probability 0
        order = [str(i) for i in range(len(self.classes_))]
        return proba.reindex(columns=order, fill_value=0.0).to_numpy(dtype=float)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class TakeoffRegressor(RegressorMixin, _TakeoffEstimator):
    """A takeoff model as a scikit-learn regressor.

    Args:
        time_budget: seconds each ``fit`` may take (default 60).
        family: model family, or ``"auto"`` to try several and keep the best or a blend.
        metric: what the run is judged by (default ``rmse``; also ``mae``, ``mape``, ``r2``).
        seed: random seed.
        config: any other :func:`takeoff.train` settings, as a dict (see ``takeoff config show``).

    Attributes:
        model_: the fitted :class:`takeoff.Model`.
        n_features_in_, feature_names_in_: as scikit-learn defines them.
    """

    def fit(self, X, y) -> TakeoffRegressor:
        table = self._table(X, reset=True)
        y = _column(y, self).astype(float)
        if not np.isfinite(y).all():
            raise DataError("y holds NaN or infinity; a regressor needs a finite target on every row.")
        self.model_ = self._fit(table, y)
        return self

    def _task_of(self, y: np.ndarray) -> str:
        return "regression"

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.model_.predict(self._table(X, reset=False)), dtype=float)


def _column(y, estimator) -> np.ndarray:
    """``y`` as a 1-D array; a column vector is accepted with scikit-learn's warning."""
    import warnings

    from sklearn.exceptions import DataConversionWarning

    if y is None:
        raise DataError(f"{type(estimator).__name__} requires y to be passed, but the target y is None.")
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y "
                      "to (n_samples, ), for example using ravel().", DataConversionWarning, stacklevel=3)
        array = array.ravel()
    if array.ndim != 1:
        raise DataError(f"y must be 1-D (one target value per row); got shape {array.shape}.")
    return array
