"""What :meth:`Model.predict` and :meth:`Model.predict_proba` accept, turned into a table.

A DataFrame, a dict (one row), a list of dicts (records), a pandas Series (one row, named by its
index), a NumPy array or a list of lists (with ``feature_names``: the column of each position),
or a path / SQLAlchemy URL. Anything else is refused with what is accepted and how to convert.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from takeoff.errors import DataError, preview

ACCEPTED = ("a DataFrame, a dict (one row), a list of dicts, a pandas Series (one row), a NumPy array or a list of "
            "lists with feature_names=[...], or a path")


def is_records(data) -> bool:
    """A dict, or a list of dicts (an empty list included): the records path that may skip pandas."""
    return isinstance(data, dict) or (isinstance(data, list) and all(isinstance(r, dict) for r in data))


def as_table(data, feature_names: Sequence[str] | None, expected: Sequence[str]):
    """``data`` as something :meth:`Model._frame` reads (a DataFrame, or a path / URL as given).

    Args:
        data: see the module docstring.
        feature_names: the column of each position of an array's rows; required for arrays.
        expected: the model's input columns, named in the messages.

    Raises:
        DataError: an array without ``feature_names`` or of the wrong width, or a type takeoff
            does not read (the message says what is accepted).
    """
    if isinstance(data, pd.DataFrame):
        return data if feature_names is None else _renamed(data, feature_names, expected)
    if isinstance(data, pd.Series):  # one row, its index the column names
        return data.to_frame().T.infer_objects().reset_index(drop=True)
    if isinstance(data, (str, Path)):
        return data
    if isinstance(data, np.ndarray) or (isinstance(data, (list, tuple)) and not is_records(data)):
        return _array_frame(data, feature_names, expected)
    raise DataError(f"cannot predict from a {type(data).__module__}.{type(data).__name__}; takeoff reads {ACCEPTED}. "
                    "Fix: convert it, e.g. pd.DataFrame(data, columns=[...]).")


def _array_frame(data, feature_names, expected) -> pd.DataFrame:
    array = np.asarray(data, dtype=object) if not isinstance(data, np.ndarray) else data
    if array.ndim == 1:
        array = array.reshape(1, -1)  # one row
    if array.ndim != 2:
        raise DataError(f"a {array.ndim}-D array cannot be a table of rows; pass a 2-D array (rows × columns) "
                        "with feature_names=[...].")
    if feature_names is None:
        raise DataError(f"a NumPy array has no column names, and the model needs its columns by name "
                        f"({preview(list(expected), 12)}). Fix: pass feature_names=[...] (the column of each "
                        "position), or a DataFrame.")
    names = list(feature_names)
    if len(names) != array.shape[1]:
        raise DataError(f"feature_names has {len(names)} names but the array has {array.shape[1]} columns. "
                        "Fix: give one name per column.")
    return pd.DataFrame({name: array[:, i] for i, name in enumerate(names)}).infer_objects()


def _renamed(frame: pd.DataFrame, feature_names, expected) -> pd.DataFrame:
    names = list(feature_names)
    if len(names) != frame.shape[1]:
        raise DataError(f"feature_names has {len(names)} names but the DataFrame has {frame.shape[1]} columns. "
                        "Fix: give one name per column, or leave feature_names out to use the DataFrame's own.")
    return frame.set_axis(names, axis=1)
