"""The train/validation split: stratified for classification, shuffled for regression."""

from __future__ import annotations

import math

import numpy as np

from takeoff.data.schema import Task
from takeoff.errors import ConfigError, TargetError, preview


def train_valid_split(
    y: np.ndarray, task: Task, valid_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions into training and validation sets.

    Classification is stratified: every class keeps its share in both sets (within rounding),
    and every class gets at least one validation row and one training row, even when that
    makes the validation set a little larger than ``valid_fraction``. Otherwise the
    validation set holds at most ``valid_fraction`` of the rows (at least one). Regression is
    a plain shuffle. The same ``y`` and ``seed`` always give the same split.

    Per class, the validation rows are ``floor(count * valid_fraction)`` (at least 1, at most
    count - 1); the rows left over by rounding go to the classes with the largest remainders,
    as sklearn's stratified splitters do, and rows taken by the one-row minimum are given back
    by the classes that can spare them, so the total is ``floor(n * valid_fraction)``
    whenever ``floor(n * valid_fraction) >= number of classes``. (sklearn's
    ``train_test_split`` is not used because it can leave a small class out of validation.)

    Args:
        y: the target, one value per row: class codes or labels for classification, numbers
            for regression; no missing values.
        task: the task; only ``task.is_classification`` is used.
        valid_fraction: share of rows for validation, between 0 and 1 (exclusive).
        seed: random seed.

    Returns:
        ``(train_idx, valid_idx)``: sorted int64 positions into ``y``, disjoint, covering all rows.

    Raises:
        ConfigError: ``valid_fraction`` is not between 0 and 1.
        TargetError: fewer than 2 rows, or a class with a single row (it cannot be in both sets).

    Example:
        >>> train, valid = train_valid_split(np.array([0, 1] * 50), Task("binary", "y", [0, 1]), 0.2, 0)
        >>> len(train), len(valid)
        (80, 20)
    """
    if not 0.0 < float(valid_fraction) < 1.0:
        raise ConfigError(
            f"valid_fraction must be between 0 and 1 (exclusive), got {valid_fraction!r}. "
            "Fix: use e.g. 0.2 for 20% validation rows.",
            path="valid_fraction",
        )
    y = np.asarray(y)
    n = len(y)
    if n < 2:
        raise TargetError(
            f"target '{task.target}' has {n} row(s) with a value; a training and a validation "
            "set need at least 2. Fix: add rows.",
            column=task.target,
        )
    if task.is_multilabel:
        # stratified on each row's rarest label, so that every label with rows to spare is
        # found in both sets (a plain shuffle can leave a rare label out of validation)
        return train_valid_split(_rarest_label(y), Task("multiclass", task.target), valid_fraction, seed)
    rng = np.random.default_rng(seed)
    if not task.is_classification:
        n_valid = max(1, math.floor(n * valid_fraction))
        valid = rng.permutation(n)[:n_valid]
        return _complement(valid, n), np.sort(valid).astype(np.int64)

    labels, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    codes = codes.reshape(-1)
    single = labels[counts < 2]
    if len(single):
        raise TargetError(
            f"target '{task.target}' has class(es) with a single row: "
            f"{preview([repr(v) for v in single.tolist()])}; a stratified split needs at least "
            "2 rows per class (one for training, one for validation). Fix: remove or merge "
            "those classes.",
            column=task.target,
        )
    per_class = _allocate(counts, valid_fraction, math.floor(n * valid_fraction))
    order = np.argsort(codes, kind="stable")  # positions grouped by class
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    valid_parts = []
    for k, (start, count) in enumerate(zip(starts, counts)):
        members = order[start : start + count]
        valid_parts.append(rng.permutation(members)[: per_class[k]])
    valid = np.concatenate(valid_parts)
    return _complement(valid, n), np.sort(valid).astype(np.int64)


def _rarest_label(indicator: np.ndarray) -> np.ndarray:
    """Per row, the code of its least frequent label (-1 for a row with none); keys held by a
    single row join the most common key."""
    counts = indicator.sum(axis=0)
    rarity = np.where(indicator > 0, counts[None, :], np.iinfo(np.int64).max)
    keys = np.where(indicator.any(axis=1), rarity.argmin(axis=1), -1).astype(np.int64)
    values, n = np.unique(keys, return_counts=True)
    lonely = values[n < 2]
    if len(lonely):
        keys[np.isin(keys, lonely)] = values[n.argmax()]
    return keys


def _allocate(counts: np.ndarray, fraction: float, target_total: int) -> np.ndarray:
    """Validation rows per class: proportional, 1 <= v <= count - 1, summing to
    ``target_total`` whenever the bounds allow (more only when one row per class needs it)."""
    exact = counts * fraction
    per_class = np.clip(np.floor(exact).astype(np.int64), 1, counts - 1)
    # hand out the rows left over by rounding down, largest shortfall first (ties: class order)
    while per_class.sum() < target_total:
        room = np.flatnonzero(per_class < counts - 1)
        if not len(room):
            break
        k = room[np.argmax(exact[room] - per_class[room])]
        per_class[k] += 1
    # the one-row minimum may overshoot: give rows back from classes that can spare them
    while per_class.sum() > target_total:
        spare = np.flatnonzero(per_class > 1)
        if not len(spare):
            break
        k = spare[np.argmax(per_class[spare] - exact[spare])]
        per_class[k] -= 1
    return per_class


def _complement(valid: np.ndarray, n: int) -> np.ndarray:
    mask = np.ones(n, dtype=bool)
    mask[valid] = False
    return np.flatnonzero(mask).astype(np.int64)
