"""Values made JSON-ready: numpy scalars to Python, non-finite floats to null."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def native(value: Any) -> Any:
    """A numpy scalar as the Python value; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def finite(value: Any) -> Any:
    """``value`` as a Python value, or None for NaN and infinities."""
    value = native(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def clean(obj: Any) -> Any:
    """JSON-ready: numpy scalars to Python, non-finite floats to None, recursively."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    return finite(obj)
