"""The rows being explained, and what every method shares: which output is explained, and how
feature columns fold back onto the input columns the user knows.

Every attribution is reported per input column, in the unit of the explained output: the
probability of the explained class (classification: the positive class for binary, the
predicted class for multiclass) or the predicted value (regression).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from takeoff.data.schema import Task
from takeoff.features.block import Features


@dataclass
class Rows:
    """Conformed rows with their features and outputs.

    Attributes:
        frame: the conformed input columns (schema order), index 0..n-1.
        X: the rows' features.
        member_outputs: per blend member, its outputs: probabilities (n, k) or values (n,).
        output: the model's outputs (the weighted sum of the members').
        classes: the explained class code of each row (classification), else None.
        positions: each row's position in the data as given (from 0).
        cache: results shared by several methods (occlusion variants' outputs).
    """

    frame: pd.DataFrame
    X: Features
    member_outputs: list[np.ndarray]
    output: np.ndarray
    classes: np.ndarray | None
    positions: np.ndarray
    cache: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)


def make_rows(model, frame: pd.DataFrame, positions: np.ndarray) -> Rows:
    """Features and outputs of conformed rows; the explained class follows the model's output."""
    frame = frame.reset_index(drop=True)
    if getattr(model, "redactor", None) is not None:  # personal data as the model saw it in training: tokens
        frame = model.redactor.apply(frame)
    X = model.pipeline.transform(frame)
    member_outputs = predict_members(model, X)
    output = blend(model, member_outputs)
    return Rows(frame, X, member_outputs, output, explained_classes(model.task, output), np.asarray(positions))


def predict_members(model, X: Features) -> list[np.ndarray]:
    """Each blend member's outputs for ``X``."""
    return [np.asarray(member.predict(X)) for member in model.blend.members]


def blend(model, member_outputs: Sequence[np.ndarray]) -> np.ndarray:
    """The model's outputs from its members' (the same sum as :class:`~takeoff.models.blend.Blend`)."""
    out = None
    for output, weight in zip(member_outputs, model.blend.weights):
        part = output.astype(np.float64) * weight
        out = part if out is None else out + part
    return out


def explained_classes(task: Task, output: np.ndarray) -> np.ndarray | None:
    """The class code explained per row: the positive class (binary), the predicted class
    (multiclass), the most probable label (multilabel), or None (regression)."""
    if task.kind == "binary":
        return np.ones(len(output), dtype=np.int64)
    if task.is_classification or task.is_multilabel:
        return np.argmax(output, axis=1).astype(np.int64)
    return None


def pick(output: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """The explained output per row: the probability of each row's class, or the value."""
    output = np.asarray(output, dtype=np.float64)
    if classes is None:
        return output.reshape(len(output))
    return output[np.arange(len(output)), classes]


def fold(values: np.ndarray, sources: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """Sum feature-column attributions (n, d) into input-column ones (n, len(columns)).

    ``sources[j]`` names the input column feature ``j`` came from (see ``Features.sources``).
    """
    index = {name: i for i, name in enumerate(columns)}
    onehot = np.zeros((len(sources), len(columns)))
    onehot[np.arange(len(sources)), [index[s] for s in sources]] = 1.0
    return np.asarray(values, dtype=np.float64) @ onehot


def explained_label(task: Task) -> str:
    """What the attributions are in, for people: "probability of 'yes'", ..."""
    if task.kind == "binary":
        return f"probability of '{task.positive_label}'"
    if task.is_classification:
        return "probability of the predicted class"
    if task.is_multilabel:
        return "probability of the row's most probable label"
    return f"predicted value of '{task.target}'"


def jsonable(value: Any) -> Any:
    """A cell of the data as JSON: numpy scalars to Python, missing and non-finite to None,
    dates to ISO strings."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (str, int, bool)):
        return value
    return str(value)


def number(value: float) -> float | None:
    """A float for JSON: None when not finite."""
    value = float(value)
    return value if np.isfinite(value) else None
