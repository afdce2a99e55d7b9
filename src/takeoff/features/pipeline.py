"""The fitted feature pipeline: conformed columns in, :class:`Features` out.

Fitted on the training split only; its state is plain JSON, so the same code turns rows into
features at training, predict and serve time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from takeoff.data.schema import Kind, Schema
from takeoff.features.block import Features

STATE_VERSION = 1
CLIP = 1e6  # standard deviations; far beyond any real value, well inside float32
DATETIME_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "epoch_days")


class FeatureParams(BaseModel):
    """How columns become features."""

    model_config = ConfigDict(extra="forbid")

    max_categories: int = Field(
        1000, ge=2, description="Most frequent categories kept per column; the rest share one 'other' code."
    )
    min_category_count: int = Field(
        2, ge=1, description="A category seen fewer times than this in training joins 'other'."
    )
    text_hash_features: int = Field(
        256, ge=8, le=65536, description="Hashed bag-of-words width per free-text column."
    )


class FeaturePipeline:
    """Turns conformed columns (see :func:`takeoff.data.conform.conform`) into Features."""

    def __init__(self, schema: Schema, params: FeatureParams | None = None):
        self.schema = schema
        self.params = params or FeatureParams()
        self.numeric: dict[str, dict[str, float]] = {}  # name -> {median, mean, std, indicator}
        self.categories: dict[str, list[str]] = {}  # name -> vocabulary, code = index + 2
        self.datetime_parts: dict[str, list[str]] = {}  # name -> parts that vary in training
        self._lookup: dict[str, dict[str, int]] = {}

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame) -> FeaturePipeline:
        """Learn imputation, scaling and vocabularies from the training rows."""
        for column in self.schema.features:
            series = df[column.name]
            if column.kind == Kind.DATETIME:
                parts = _datetime_parts(series)
                self.datetime_parts[column.name] = [p for p in DATETIME_PARTS if parts[p].nunique() > 1]
                for part in self.datetime_parts[column.name]:
                    self.numeric[f"{column.name}__{part}"] = _numeric_stats(parts[part])
            elif column.kind in (Kind.NUMERIC, Kind.BOOLEAN):
                self.numeric[column.name] = _numeric_stats(series)
            elif column.kind == Kind.CATEGORICAL:
                counts = series.value_counts(dropna=True)
                counts = counts[counts >= self.params.min_category_count]
                # most frequent first; ties broken by the value so the vocabulary is stable
                ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                self.categories[column.name] = [str(k) for k, _ in ordered[: self.params.max_categories]]
        self._build_lookups()
        return self

    def _build_lookups(self) -> None:
        # vocabulary value -> code (known categories start at 2)
        self._lookup = {name: {v: i + 2 for i, v in enumerate(vocab)} for name, vocab in self.categories.items()}

    # ------------------------------------------------------------ transform
    def transform(self, df: pd.DataFrame) -> Features:
        """Features for conformed rows (same columns as at fit time)."""
        n = len(df)
        numeric_blocks, numeric_names, sources = [], [], []
        for column in self.schema.features:
            if column.kind == Kind.DATETIME:
                parts = _datetime_parts(df[column.name])
                for part in self.datetime_parts[column.name]:
                    name = f"{column.name}__{part}"
                    self._scale(parts[part], name, numeric_blocks, numeric_names, sources, column.name)
            elif column.kind in (Kind.NUMERIC, Kind.BOOLEAN):
                self._scale(df[column.name], column.name, numeric_blocks, numeric_names, sources, column.name)
            elif column.kind == Kind.TEXT:
                block = self._hash_text(df[column.name])
                numeric_blocks.append(block)
                numeric_names += [f"{column.name}__h{i}" for i in range(block.shape[1])]
                sources += [column.name] * block.shape[1]
        cat_names = self.schema.names(Kind.CATEGORICAL)
        categorical = np.zeros((n, len(cat_names)), dtype=np.int64)
        for j, name in enumerate(cat_names):
            categorical[:, j] = self._codes(df[name], name)
        numeric = (
            np.column_stack(numeric_blocks).astype(np.float32, copy=False)
            if numeric_blocks
            else np.zeros((n, 0), dtype=np.float32)
        )
        return Features(
            numeric=numeric,
            categorical=categorical,
            numeric_names=numeric_names,
            categorical_names=cat_names,
            cardinalities=[len(self.categories[c]) + 2 for c in cat_names],
            sources=sources + cat_names,
        )

    def _scale(self, series, name, blocks, names, sources, source) -> None:
        stats = self.numeric[name]
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values)
        values = np.where(missing, stats["median"], values)
        # clipped so that absurd inputs (1e300) stay finite in float32; monotone, so trees
        # split the same way
        blocks.append(np.clip((values - stats["mean"]) / stats["std"], -CLIP, CLIP))
        names.append(name)
        sources.append(source)
        if stats["indicator"]:
            blocks.append(missing.astype(np.float32))
            names.append(f"{name}__missing")
            sources.append(source)

    def _codes(self, series: pd.Series, name: str) -> np.ndarray:
        """0 for missing, 1 for rare or unseen, 2.. for known categories."""
        lookup = self._lookup[name]
        raw = series.to_numpy(dtype=object)
        missing = pd.isna(raw)
        return np.fromiter(
            (0 if m else lookup.get(v, 1) for v, m in zip(raw, missing)), dtype=np.int64, count=len(raw)
        )

    def _hash_text(self, series: pd.Series) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        vectorizer = HashingVectorizer(
            n_features=self.params.text_hash_features, alternate_sign=False, norm="l2"
        )
        return vectorizer.transform(series.fillna("").astype(str)).toarray().astype(np.float32)

    # -------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        """JSON-serialisable state (the schema is stored beside it, in the bundle manifest)."""
        return {
            "version": STATE_VERSION,
            "params": self.params.model_dump(),
            "numeric": self.numeric,
            "categories": self.categories,
            "datetime_parts": self.datetime_parts,
        }

    @classmethod
    def from_state(cls, schema: Schema, state: dict[str, Any]) -> FeaturePipeline:
        if state.get("version") != STATE_VERSION:
            from takeoff.errors import BundleError

            raise BundleError("features.json", f"unknown feature state version {state.get('version')!r}")
        pipeline = cls(schema, FeatureParams(**state["params"]))
        pipeline.numeric = state["numeric"]
        pipeline.categories = state["categories"]
        pipeline.datetime_parts = state["datetime_parts"]
        pipeline._build_lookups()
        return pipeline


def _numeric_stats(series: pd.Series) -> dict[str, float]:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    if missing.all():
        return {"median": 0.0, "mean": 0.0, "std": 1.0, "indicator": True}
    median = float(np.median(values[~missing]))
    filled = np.where(missing, median, values)
    std = float(filled.std())
    return {
        "median": median,
        "mean": float(filled.mean()),
        "std": std if std > 1e-12 else 1.0,
        "indicator": bool(missing.any()),
    }


def _datetime_parts(series: pd.Series) -> pd.DataFrame:
    dt = series.dt
    epoch = (series - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return pd.DataFrame(
        {
            "year": dt.year,
            "month": dt.month,
            "day": dt.day,
            "dayofweek": dt.day_of_week,
            "dayofyear": dt.day_of_year,
            "hour": dt.hour,
            "epoch_days": epoch,
        },
        index=series.index,
    ).astype("float64")
