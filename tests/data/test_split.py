"""The train/validation split."""

from __future__ import annotations

import numpy as np
import pytest

from takeoff.data.schema import Task
from takeoff.data.split import train_valid_split
from takeoff.errors import ConfigError, TargetError

BINARY = Task("binary", "y", [0, 1])
MULTI = Task("multiclass", "y", ["a", "b", "c", "d"])
REGRESSION = Task("regression", "y")


def _assert_partition(train: np.ndarray, valid: np.ndarray, n: int) -> None:
    assert train.dtype == np.int64 and valid.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(valid) > 0)  # sorted, no repeats
    assert np.intersect1d(train, valid).size == 0
    np.testing.assert_array_equal(np.union1d(train, valid), np.arange(n))


def test_stratified_keeps_class_shares():
    y = np.array([0] * 900 + [1] * 100)
    np.random.default_rng(0).shuffle(y)
    train, valid = train_valid_split(y, BINARY, 0.2, seed=0)
    _assert_partition(train, valid, 1000)
    assert len(valid) == 200
    assert np.bincount(y[valid]).tolist() == [180, 20]
    assert np.bincount(y[train]).tolist() == [720, 80]


def test_every_class_reaches_validation_even_when_tiny():
    y = np.array(["a"] * 990 + ["b"] * 6 + ["c"] * 2 + ["d"] * 2)
    train, valid = train_valid_split(y, MULTI, 0.1, seed=3)
    _assert_partition(train, valid, 1000)
    assert set(y[valid]) == {"a", "b", "c", "d"} and set(y[train]) == {"a", "b", "c", "d"}
    assert len(valid) == 100  # the minimum per class still fits in 10%


def test_one_row_per_class_wins_over_the_fraction():
    y = np.repeat(np.arange(10), 2)  # 10 classes x 2 rows, 5% would be 1 row
    train, valid = train_valid_split(y, Task("multiclass", "y", list(range(10))), 0.05, seed=0)
    _assert_partition(train, valid, 20)
    assert sorted(y[valid].tolist()) == list(range(10)) and sorted(y[train].tolist()) == list(range(10))


def test_valid_never_exceeds_fraction_otherwise():
    rng = np.random.default_rng(1)
    for n, fraction in [(97, 0.2), (1000, 0.15), (31, 0.5), (10_001, 0.01)]:
        y = rng.choice([0, 1, 2], n, p=[0.5, 0.3, 0.2])
        _, valid = train_valid_split(y, Task("multiclass", "y", [0, 1, 2]), fraction, seed=5)
        assert len(valid) == int(n * fraction)


def test_regression_is_a_plain_shuffle():
    y = np.linspace(0, 1, 503)
    train, valid = train_valid_split(y, REGRESSION, 0.2, seed=11)
    _assert_partition(train, valid, 503)
    assert len(valid) == 100
    assert valid.max() > 400 and valid.min() < 100  # drawn from everywhere, not the tail
    assert len(train_valid_split(np.array([1.0, 2.0]), REGRESSION, 0.1, seed=0)[1]) == 1


def test_deterministic_for_a_seed_and_different_across_seeds():
    y = np.random.default_rng(2).choice([0, 1], 500)
    first = train_valid_split(y, BINARY, 0.25, seed=42)
    again = train_valid_split(y, BINARY, 0.25, seed=42)
    other = train_valid_split(y, BINARY, 0.25, seed=43)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])
    reg = [train_valid_split(y.astype(float), REGRESSION, 0.25, seed=7)[1] for _ in range(2)]
    np.testing.assert_array_equal(reg[0], reg[1])


def test_single_row_class_and_bad_arguments():
    with pytest.raises(TargetError, match="single row: 'c'.*remove or merge"):
        train_valid_split(np.array(["a", "a", "b", "b", "c"]), MULTI, 0.2, seed=0)
    with pytest.raises(ConfigError, match="valid_fraction must be between 0 and 1.*got 1.5"):
        train_valid_split(np.array([0, 1] * 5), BINARY, 1.5, seed=0)
    with pytest.raises(ConfigError):
        train_valid_split(np.array([0, 1] * 5), BINARY, 0.0, seed=0)
    with pytest.raises(TargetError, match="at least 2"):
        train_valid_split(np.array([1.0]), REGRESSION, 0.2, seed=0)
