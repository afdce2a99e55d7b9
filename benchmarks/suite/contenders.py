"""The contenders of the public suite, each fitted on one train frame and asked about one test
frame. Every contender is a function

    fit_predict(train, test, target, task, budget, metric) -> Prediction

where ``test`` has no target column, ``task`` is binary / multiclass / regression, ``budget``
is the time budget in seconds (used by takeoff and AutoGluon; the defaults baselines ignore it)
and ``metric`` is the ranked metric of the task (roc_auc, accuracy, rmse).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SEED = 0
HGB_MAX_CATEGORIES = 255  # HistGradientBoosting's limit for a native categorical column
TEXT_UNIQUE_SHARE = 0.5  # the linear model: a string column more unique than this is text or an id
TEXT_MIN_WORDS = 3  # ... and text when its median value has this many words


@dataclass
class Prediction:
    """What a contender says about the test rows.

    classification: ``labels`` (its decision) and ``proba`` (one column per class, as str);
    regression: ``values``. ``fit_seconds`` covers fitting only, ``wall_seconds`` everything
    (subprocess start, fit, predict); ``info`` holds what is worth keeping (members, best model).
    """

    fit_seconds: float
    wall_seconds: float
    labels: np.ndarray | None = None
    proba: pd.DataFrame | None = None
    values: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def as_categories(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """String columns as pandas categories (same categories in both), as the libraries expect."""
    train, test = train.copy(), test.copy()
    for col in train.columns:
        if not pd.api.types.is_numeric_dtype(train[col]):
            cats = pd.Index(pd.concat([train[col], test[col]]).dropna().astype(str).unique())
            train[col] = pd.Categorical(train[col].astype("string"), categories=cats)
            test[col] = pd.Categorical(test[col].astype("string"), categories=cats)
    return train, test


def _classes_proba(model, X) -> pd.DataFrame:
    return pd.DataFrame(model.predict_proba(X), columns=[str(c) for c in model.classes_])


def _sklearn_like(model, train, test, target, task) -> Prediction:
    X, y = train.drop(columns=[target]), train[target]
    started = time.perf_counter()
    model.fit(X, y)
    fitted = time.perf_counter()
    if task == "regression":
        out = Prediction(0, 0, values=np.asarray(model.predict(test), dtype=float))
    else:
        proba = _classes_proba(model, test)
        out = Prediction(0, 0, labels=proba.columns.to_numpy()[proba.to_numpy().argmax(axis=1)], proba=proba)
    out.fit_seconds, out.wall_seconds = fitted - started, time.perf_counter() - started
    return out


def lightgbm(train, test, target, task, budget, metric) -> Prediction:
    """LightGBM with its defaults; string columns as pandas categories."""
    import lightgbm as lgb

    Xtr, Xte = as_categories(train.drop(columns=[target]), test)
    model = (lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier)(verbosity=-1, random_state=SEED)
    return _sklearn_like(model, Xtr.assign(**{target: train[target].to_numpy()}), Xte, target, task)


def hgb(train, test, target, task, budget, metric) -> Prediction:
    """scikit-learn HistGradientBoosting with its defaults and native categoricals. A string
    column with more than 255 levels (its limit) goes in as its category codes instead."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    Xtr, Xte = as_categories(train.drop(columns=[target]), test)
    for col in Xtr.columns:
        if isinstance(Xtr[col].dtype, pd.CategoricalDtype) and len(Xtr[col].cat.categories) > HGB_MAX_CATEGORIES:
            Xtr[col] = Xtr[col].cat.codes.replace(-1, np.nan).astype(float)
            Xte[col] = Xte[col].cat.codes.replace(-1, np.nan).astype(float)
    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    model = cls(categorical_features="from_dtype", random_state=SEED)
    return _sklearn_like(model, Xtr.assign(**{target: train[target].to_numpy()}), Xte, target, task)


def string_roles(X: pd.DataFrame) -> dict[str, list[str]]:
    """The linear model's view of the string columns: ``categorical`` (repeated values),
    ``text`` (mostly unique, three words or more at the median) and ``dropped`` (mostly
    unique and short: ids, names)."""
    roles = {"categorical": [], "text": [], "dropped": []}
    for col in X.columns:
        if pd.api.types.is_numeric_dtype(X[col]) or pd.api.types.is_bool_dtype(X[col]):
            continue
        values = X[col].dropna().astype(str)
        if values.nunique() <= TEXT_UNIQUE_SHARE * len(X):
            roles["categorical"].append(col)
        elif values.str.split().str.len().median() >= TEXT_MIN_WORDS:
            roles["text"].append(col)
        else:
            roles["dropped"].append(col)
    return roles


def linear_pipeline(X: pd.DataFrame, task: str):
    """The tuned linear baseline: numbers median-imputed (with missing flags) and standardised,
    categorical strings one-hot encoded (levels under 10 rows pooled), free text as TF-IDF
    word uni- and bigrams, ids and names dropped (see :func:`string_roles`); then
    LogisticRegressionCV (classification) or RidgeCV (regression) over a log-spaced grid, 5-fold."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    roles = string_roles(X)
    numeric = [c for c in X.columns if c not in sum(roles.values(), [])]
    parts = [
        ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                                      OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=10)),
         roles["categorical"]),
    ]
    parts += [(f"text:{col}", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50_000), col)
              for col in roles["text"]]
    if task == "regression":
        head = RidgeCV(alphas=np.logspace(-3, 4, 15), cv=5)
    else:
        scoring = "roc_auc" if task == "binary" else "neg_log_loss"
        head = LogisticRegressionCV(Cs=np.logspace(-4, 3, 8), cv=5, scoring=scoring, max_iter=2000)
    return make_pipeline(ColumnTransformer(parts), head)


def linear(train, test, target, task, budget, metric) -> Prediction:
    """The tuned linear model of :func:`linear_pipeline`."""
    X = train.drop(columns=[target])
    roles = string_roles(X)

    def plain(frame):  # object strings for the encoders; empty text where missing
        frame = frame.assign(**{c: frame[c].astype(object) for c in roles["categorical"] + roles["text"]})
        return frame.assign(**{c: frame[c].fillna("").astype(str) for c in roles["text"]})

    with warnings.catch_warnings():  # scikit-learn 1.9 announces LogisticRegressionCV's 1.10 defaults
        warnings.simplefilter("ignore", FutureWarning)
        return _sklearn_like(linear_pipeline(X, task), plain(train), plain(test), target, task)


def takeoff(train, test, target, task, budget, metric) -> Prediction:
    """takeoff ``auto``: ``takeoff.train(train, target, time_budget=budget, seed=0, task=task)``,
    and the ranked metric as ``config={"metric": ...}`` once the config has a ``metric`` field.
    The task is given, as it is to AutoGluon: takeoff infers multiclass for an integer target
    with a few dozen values (tate_year, restaurant_scores)."""
    import takeoff as tk
    from takeoff.config import config_class

    config = {"metric": metric} if "metric" in config_class().model_fields else None
    started = time.perf_counter()
    model = tk.train(train, target=target, time_budget=budget, seed=SEED, task=task, config=config)
    fitted = time.perf_counter()
    if task == "regression":
        out = Prediction(0, 0, values=np.asarray(model.predict(test), dtype=float))
    else:
        proba = model.predict_proba(test).reset_index(drop=True)
        out = Prediction(0, 0, labels=np.asarray(model.predict(test)).astype(str), proba=proba)
    out.fit_seconds, out.wall_seconds = fitted - started, time.perf_counter() - started
    members = model.manifest.get("members", [])
    out.info = {"members": {m.get("id", m["family"]): round(m["weight"], 3) for m in members}, "config_metric": bool(config),
                "time": model.manifest.get("training", {}).get("time")}
    return out


def autogluon(train, test, target, task, budget, metric) -> Prediction:
    """AutoGluon ``medium_quality`` with the same budget, in its own virtual environment."""
    from .autogluon_peer import fit_predict

    return fit_predict(train, test, target, task, budget, metric)


CONTENDERS = {"takeoff": takeoff, "autogluon": autogluon, "lightgbm": lightgbm, "hgb": hgb, "linear": linear}
