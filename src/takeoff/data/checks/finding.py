"""What a data check reports (:class:`Finding`) and the thresholds it uses (:class:`CheckParams`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from takeoff.errors import preview

SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    """One thing the data checks found."""

    check: str
    severity: str  # "error" | "warning" | "info"
    message: str
    fix: str
    column: str | None = None
    count: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f" column '{self.column}'" if self.column is not None else ""
        message = self.message if self.message.endswith(".") else self.message + "."
        return f"{self.severity} [{self.check}]{where}: {message} Fix: {self.fix}"


class CheckParams(BaseModel):
    """Thresholds of the data checks."""

    model_config = ConfigDict(extra="forbid")

    leakage_threshold: float = Field(
        0.98,
        ge=0.5,
        le=1.0,
        description="Single-feature score above which a column leaks the target: out-of-fold "
        "ROC-AUC (macro one-vs-rest for multiclass) for classification, R² for regression.",
    )
    imbalance_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="Rows of the smallest class / rows of the largest below this warn."
    )
    mostly_missing: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of missing values above which a column warns."
    )
    high_cardinality: int = Field(
        1000, ge=2, description="Distinct values of a categorical column above which it warns."
    )
    min_class_rows: int = Field(
        2, ge=1, description="A class with fewer rows than this is an error (cannot stratify)."
    )
    long_text_chars: int = Field(
        10_000, ge=100, description="A text longer than this many characters is reported (encoders truncate it)."
    )
    sample_rows: int = Field(
        5000, ge=100, le=1_000_000, description="Rows sampled (fixed seed) for the leakage check."
    )
    verify_images: int = Field(
        5000, ge=0, description="Images fully decoded to find truncated files (the first N; all are hashed and probed)."
    )
    tiny_image_px: int = Field(
        16, ge=1, description="An image whose shorter side has fewer pixels than this is reported as tiny."
    )



def rows_preview(mask: np.ndarray, index: pd.Index, limit: int = 5) -> str:
    """The index labels of the first ``limit`` rows where ``mask`` holds, for messages."""
    positions = np.flatnonzero(mask)[:limit]
    return preview([index[p] for p in positions], limit)
