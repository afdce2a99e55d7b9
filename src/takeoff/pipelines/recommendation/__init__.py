"""The recommendation pipeline: an interaction log (user, item, optional rating and time, with
optional item and user feature tables) → a model that answers "what should this user see next"
and "what is like this item".

prepare (the log and the features: ``features.py``) → select (recommender families on each
user's held-out last interaction, refit: ``train.py``) → model (:class:`RecommenderModel`,
``model.py``; its answers in ``ranking.py``).

Example:
    >>> import takeoff
    >>> model = takeoff.train("ratings.csv", task="recommend", user="userId", item="movieId", out="runs/recs")
    >>> model.recommend(42, k=10)
"""

from takeoff.pipelines.recommendation.model import RecommenderModel
from takeoff.pipelines.recommendation.ranking import Recommendations

__all__ = ["RecommenderModel", "Recommendations"]
