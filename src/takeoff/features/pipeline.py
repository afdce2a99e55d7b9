"""The fitted feature pipeline: conformed columns in, :class:`Features` out.

Fitted on the training split only; its state is plain JSON, so the same code turns rows into
features at training, predict and serve time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    image_size: int | None = Field(
        None, ge=8, le=1024,
        description="Side in pixels images are decoded to (shorter side resized, centre crop); "
                    "None: the median shorter side of the training images, between 16 and 224.",
    )


class FeaturePipeline:
    """Turns conformed columns (see :func:`takeoff.data.conform.conform`) into Features."""

    def __init__(self, schema: Schema, params: FeatureParams | None = None):
        self.schema = schema
        self.params = params or FeatureParams()
        self.numeric: dict[str, dict[str, float]] = {}  # name -> {median, mean, std, indicator}
        self.categories: dict[str, list[str]] = {}  # name -> vocabulary, code = index + 2
        self.datetime_parts: dict[str, list[str]] = {}  # name -> parts that vary in training
        self.images: dict[str, dict[str, Any]] = {}  # name -> {size, channels}
        self._lookup: dict[str, dict[str, int]] = {}
        self._layout: _Layout | None = None  # built on first transform, from the fitted state

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
            elif column.kind == Kind.IMAGE:
                self.images[column.name] = _image_stats(series, self.params.image_size, column.name)
        self._build_lookups()
        return self

    def _build_lookups(self) -> None:
        # vocabulary value -> code (known categories start at 2); the layout follows the state
        self._layout = None
        self._lookup = {name: {v: i + 2 for i, v in enumerate(vocab)} for name, vocab in self.categories.items()}

    # ------------------------------------------------------------ transform
    def transform(self, df: pd.DataFrame | Mapping[str, np.ndarray]) -> Features:
        """Features for conformed rows (same columns as at fit time): a DataFrame from
        :func:`~takeoff.data.conform.conform`, or the column arrays of
        :func:`~takeoff.data.conform.conform_records`.

        Numbers, booleans and datetime parts are imputed, standardised and clipped together as
        one matrix (a few numpy calls whatever the column count: a one-row request costs
        microseconds); hashed text fills its own block; categories become codes.
        """
        return self.finish(self.raw(df))

    def raw(self, df: pd.DataFrame | Mapping[str, np.ndarray], *, hashed: bool = True,
            image_errors: str = "raise") -> RawInputs:
        """The first stage of :meth:`transform`: conformed rows as arrays, nothing fitted applied
        yet (what an exported ONNX graph takes in; :meth:`finish` does the rest in numpy).

        Args:
            df: conformed rows, as for :meth:`transform`.
            hashed: hash the free-text columns (needs scikit-learn); False leaves
                ``RawInputs.hashed`` empty, for graphs that do not read the numeric block.
            image_errors: "raise": an image that cannot be read raises DataError naming the
                rows and reasons; "collect": its pixels stay zero and ``RawInputs.image_failures``
                lists it (training drops those rows).
        """
        n = len(df) if isinstance(df, pd.DataFrame) else len(next(iter(df.values()), ()))
        layout = self._layout or self._build_layout()
        numbers = np.empty((n, len(layout.keys)), dtype=np.float64)
        blocks, texts, pictures, failures = {}, {}, {}, {}
        for column in self.schema.features:
            name = column.name
            if column.kind == Kind.IMAGE:
                pictures[name], failures[name] = self._decode(df[name], name, image_errors)
                continue
            if column.kind == Kind.DATETIME:
                parts = _datetime_parts(pd.Series(df[name]))
                for part in self.datetime_parts[name]:
                    numbers[:, layout.index[f"{name}__{part}"]] = parts[part].to_numpy(dtype=np.float64)
            elif column.kind in (Kind.NUMERIC, Kind.BOOLEAN):
                numbers[:, layout.index[name]] = _floats(df[name])
            elif column.kind == Kind.TEXT:
                texts[name] = _texts(df[name])
                if hashed:
                    blocks[name] = self._hash_text(texts[name])
        categories = np.empty((n, len(layout.categorical)), dtype=object)
        for j, name in enumerate(layout.categorical):
            values = df[name]
            categories[:, j] = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else values
        return RawInputs(numbers=numbers, categories=categories, hashed=blocks, text=texts,
                         images=pictures, image_failures={k: v for k, v in failures.items() if v})

    def _decode(self, values: Any, name: str, errors: str) -> tuple[np.ndarray, dict[int, str]]:
        from takeoff.data.images import decode_many
        from takeoff.errors import DataError

        stats = self.images[name]
        raw = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
        decoded = decode_many(list(raw), stats["size"], stats["channels"])
        if decoded.failed and errors == "raise":
            rows = list(decoded.failed)
            shown = "; ".join(f"row {r}: {decoded.failed[r]}" for r in rows[:5])
            raise DataError(
                f"image column '{name}': {len(rows)} image(s) cannot be read ({shown}). Fix: "
                "correct or remove those rows (give image files, their bytes, or base64 text).",
                column=name, rows=rows[:100],
            )
        return decoded.pixels, decoded.failed

    def finish(self, raw: RawInputs) -> Features:
        """The second stage of :meth:`transform`: imputation, scaling, clipping, missing
        indicators, hashed text and category codes, in the numeric block's column order."""
        n = len(raw)
        layout = self._layout or self._build_layout()
        values = raw.numbers
        missing = np.isnan(values)
        if missing.any():
            values = np.where(missing, layout.median, values)
        scaled = (values - layout.mean) / layout.std
        # clipped so that absurd inputs (1e300) stay finite in float32; monotone, so trees
        # split the same way
        np.clip(scaled, -CLIP, CLIP, out=scaled)
        numeric = np.empty((n, len(layout.names)), dtype=np.float32)
        numeric[:, layout.value_at] = scaled
        numeric[:, layout.indicator_at] = missing[:, layout.indicator_of]
        for name, block in raw.hashed.items():
            start = layout.text_at[name]
            numeric[:, start:start + block.shape[1]] = block
        cat_names = layout.categorical
        categorical = np.zeros((n, len(cat_names)), dtype=np.int64)
        for j, name in enumerate(cat_names):
            categorical[:, j] = self._codes(raw.categories[:, j], name)
        return Features(
            numeric=numeric,
            categorical=categorical,
            numeric_names=list(layout.names),
            categorical_names=list(cat_names),
            cardinalities=[len(self.categories[c]) + 2 for c in cat_names],
            sources=layout.sources + list(cat_names),
            text=dict(raw.text),
            images=dict(raw.images),
        )

    def layout(self) -> _Layout:
        """Where each column goes in the numeric block (built from the fitted state)."""
        return self._layout or self._build_layout()

    def _build_layout(self) -> _Layout:
        """Where each numeric feature goes, in the order features have always had: per input
        column, its value then its missing indicator (datetime: per part), or its hashed text."""
        layout = _Layout(categorical=self.schema.names(Kind.CATEGORICAL))
        for column in self.schema.features:
            if column.kind == Kind.DATETIME:
                keys = [f"{column.name}__{part}" for part in self.datetime_parts[column.name]]
            elif column.kind in (Kind.NUMERIC, Kind.BOOLEAN):
                keys = [column.name]
            elif column.kind == Kind.TEXT:
                layout.text_at[column.name] = len(layout.names)
                width = self.params.text_hash_features
                layout.names += [f"{column.name}__h{i}" for i in range(width)]
                layout.sources += [column.name] * width
                continue
            else:
                continue
            for key in keys:
                stats = self.numeric[key]
                layout.index[key] = len(layout.keys)
                layout.keys.append(key)
                layout.value_at.append(len(layout.names))
                layout.names.append(key)
                layout.sources.append(column.name)
                for stat in ("median", "mean", "std"):
                    getattr(layout, stat).append(stats[stat])
                if stats["indicator"]:
                    layout.indicator_of.append(layout.index[key])
                    layout.indicator_at.append(len(layout.names))
                    layout.names.append(f"{key}__missing")
                    layout.sources.append(column.name)
        for stat in ("median", "mean", "std"):
            setattr(layout, stat, np.asarray(getattr(layout, stat), dtype=np.float64))
        for where in ("value_at", "indicator_at", "indicator_of"):
            setattr(layout, where, np.asarray(getattr(layout, where), dtype=np.intp))
        self._layout = layout
        return layout

    def _codes(self, series: pd.Series | np.ndarray, name: str) -> np.ndarray:
        """0 for missing, 1 for rare or unseen, 2.. for known categories."""
        lookup = self._lookup[name]
        raw = series.to_numpy(dtype=object) if isinstance(series, pd.Series) else series
        # conformed values are strings or None; ``v != v`` also catches a NaN
        return np.fromiter(
            (0 if v is None or v != v else lookup.get(v, 1) for v in raw), dtype=np.int64, count=len(raw)
        )

    def _hash_text(self, series: pd.Series) -> np.ndarray:
        import sklearn
        from sklearn.feature_extraction.text import HashingVectorizer

        vectorizer = HashingVectorizer(
            n_features=self.params.text_hash_features, alternate_sign=False, norm="l2"
        )
        texts = pd.Series(series, dtype=object).fillna("").astype(str)
        # our own arguments and strings: scikit-learn's checks would cost more than the hashing
        # on a request of a few rows
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return vectorizer.transform(texts).toarray().astype(np.float32)

    # -------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        """JSON-serialisable state (the schema is stored beside it, in the bundle manifest)."""
        return {
            "version": STATE_VERSION,
            "params": self.params.model_dump(),
            "numeric": self.numeric,
            "categories": self.categories,
            "datetime_parts": self.datetime_parts,
            "images": self.images,
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
        pipeline.images = state.get("images", {})
        pipeline._build_lookups()
        return pipeline


@dataclass
class RawInputs:
    """Conformed rows as arrays, before anything fitted is applied: what
    :meth:`FeaturePipeline.finish` turns into :class:`Features`, and what an exported (ONNX)
    bundle's graph takes in.

    Attributes:
        numbers: float64 (n, k): numbers, booleans and datetime parts in the pipeline's layout
            order (``_Layout.keys``); NaN = missing.
        categories: object (n, c): each categorical column's string; None = missing.
        hashed: free-text column → its hashed bag of words, float32 (n, text_hash_features)
            (empty when not asked for).
        text: free-text column → its raw strings (object array, "" when missing).
    """

    numbers: np.ndarray
    categories: np.ndarray
    hashed: dict[str, np.ndarray] = field(default_factory=dict)
    text: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    image_failures: dict[str, dict[int, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.numbers.shape[0])

    def take(self, index: np.ndarray) -> RawInputs:
        """The rows at ``index`` (a copy; ``image_failures`` is not carried over)."""
        return RawInputs(self.numbers[index], self.categories[index],
                         {k: v[index] for k, v in self.hashed.items()}, {k: v[index] for k, v in self.text.items()},
                         {k: v[index] for k, v in self.images.items()})

    @staticmethod
    def concat(parts: list[RawInputs]) -> RawInputs:
        first = parts[0]
        return RawInputs(
            np.concatenate([p.numbers for p in parts]),
            np.concatenate([p.categories for p in parts]),
            {k: np.concatenate([p.hashed[k] for p in parts]) for k in first.hashed},
            {k: np.concatenate([p.text[k] for p in parts]) for k in first.text},
            {k: np.concatenate([p.images[k] for p in parts]) for k in first.images},
        )


@dataclass
class _Layout:
    """The numeric block's columns: scaled inputs (``keys``, with their statistics) and where
    their values, missing indicators and hashed-text blocks sit among ``names``."""

    keys: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    median: Any = field(default_factory=list)
    mean: Any = field(default_factory=list)
    std: Any = field(default_factory=list)
    value_at: Any = field(default_factory=list)
    indicator_at: Any = field(default_factory=list)
    indicator_of: Any = field(default_factory=list)
    text_at: dict[str, int] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)


def _texts(values: pd.Series | np.ndarray) -> np.ndarray:
    """Raw strings of a conformed text column, "" for missing (object array)."""
    raw = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else values
    return np.array(["" if v is None or v != v else str(v) for v in raw], dtype=object)


def _floats(values: pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


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
        # the training range, for the warning on numbers far outside it (bundles before it lack these)
        "min": float(values[~missing].min()),
        "max": float(values[~missing].max()),
    }


_IMAGE_SAMPLE = 500


def _image_stats(series: pd.Series, size: int | None, name: str) -> dict[str, Any]:
    """Decode size and channels from the headers of a sample of the training images: one
    channel when every sampled image is grayscale, else three. (Normalisation is fitted by the
    image families on the decoded training pixels and stored in their own spec.)"""
    from takeoff.data.images import GRAY_MODES, ImageError, probe
    from takeoff.errors import DataError

    values = series.dropna().to_numpy(dtype=object)
    rng = np.random.default_rng(0)
    sample = values[np.sort(rng.permutation(len(values))[:_IMAGE_SAMPLE])] if len(values) else values
    infos = []
    for value in sample:
        try:
            infos.append(probe(value))
        except ImageError:
            continue
    if not infos:
        raise DataError(
            f"image column '{name}': none of the {len(sample)} sampled training images can be read. "
            "Fix: check the paths (relative paths are read against the table's folder) and the files.",
            column=name,
        )
    channels = 1 if all(i.mode in GRAY_MODES for i in infos) else 3
    if size is None:
        size = int(np.clip(np.median([min(i.width, i.height) for i in infos]), 16, 224))
    return {"size": int(size), "channels": channels}


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
