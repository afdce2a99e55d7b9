"""The matrix form of a table that every model family consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Features:
    """Model-ready features of n rows.

    Attributes:
        numeric: float32 (n, d_num): standardised numbers, missing indicators, datetime parts,
            hashed text.
        categorical: int64 (n, d_cat): category codes; 0 = missing, 1 = rare or unseen,
            2.. = a known category.
        numeric_names, categorical_names: one name per column.
        cardinalities: number of codes per categorical column (codes are < cardinality).
        sources: the input column each feature column came from (numeric then categorical),
            to fold importances back onto what the user knows.
        text: free-text column → its raw strings (object array, "" when missing), for the
            families that read text themselves (TF-IDF, pretrained encoders); the numeric block
            also holds a hashed bag of words of each, for the others.
        images: image column → its decoded pixels, uint8 (n, channels, size, size), for the
            image families (see :mod:`takeoff.data.images`).
    """

    numeric: np.ndarray
    categorical: np.ndarray
    numeric_names: list[str]
    categorical_names: list[str]
    cardinalities: list[int]
    sources: list[str]
    text: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.numeric.shape[0])

    @property
    def names(self) -> list[str]:
        return self.numeric_names + self.categorical_names

    def take(self, index: np.ndarray) -> Features:
        """The rows at ``index`` (a copy)."""
        return Features(
            self.numeric[index],
            self.categorical[index],
            self.numeric_names,
            self.categorical_names,
            self.cardinalities,
            self.sources,
            {name: values[index] for name, values in self.text.items()},
            {name: values[index] for name, values in self.images.items()},
        )

    def dense(self) -> np.ndarray:
        """All columns as one float32 matrix (numeric, then categorical codes)."""
        return np.hstack([self.numeric, self.categorical.astype(np.float32)])

    @staticmethod
    def concat(parts: list[Features]) -> Features:
        first = parts[0]
        return Features(
            np.concatenate([p.numeric for p in parts]),
            np.concatenate([p.categorical for p in parts]),
            first.numeric_names,
            first.categorical_names,
            first.cardinalities,
            first.sources,
            {name: np.concatenate([p.text[name] for p in parts]) for name in first.text},
            {name: np.concatenate([p.images[name] for p in parts]) for name in first.images},
        )
