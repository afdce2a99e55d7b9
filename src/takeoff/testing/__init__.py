"""Contract checks a model family or recommender ships with (as scikit-learn's
``check_estimator``): ``check_family`` for model families, ``check_recommender`` for
recommenders. A family in another package runs them in its own tests.

Example:
    >>> from takeoff.testing import check_family
    >>> check_family("lightgbm")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from takeoff.testing.families import check_family

__all__ = ["check_family", "check_recommender"]


def __getattr__(name: str) -> Any:
    # the recommender contract loads only when asked for (it needs the recommendation pieces)
    if name == "check_recommender":
        from takeoff.testing.recommenders import check_recommender

        return check_recommender
    raise AttributeError(f"module 'takeoff.testing' has no attribute '{name}'")
