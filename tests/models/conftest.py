"""Fixtures shared by the recommender family tests: a real MovieLens split."""

from __future__ import annotations

import pandas as pd
import pytest

from takeoff.data.interactions import interactions_from_frame, leave_last_out


@pytest.fixture(scope="session")
def movielens_split(datasets):
    """The first 20,000 MovieLens ratings (133 users, 4,721 movies), last rating per user held out."""
    df = pd.read_csv(datasets / "movielens_ratings.csv", nrows=20_000)
    log, _ = interactions_from_frame(df, "userId", "movieId", "rating", "timestamp")
    return leave_last_out(log)
