"""Small statistics on NumPy and pandas alone, shared by the data checks and the evaluation
metrics (and so importable on a ``takeoff[lite]`` install and on the serving path)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC of ``scores`` for the boolean ``positive`` (both sides present), as the
    Mann-Whitney U statistic over average ranks (ties count half): the value scikit-learn's
    ``roc_auc_score`` gives, computed with pandas alone, so that `takeoff inspect` and
    `takeoff evaluate` run on a ``takeoff[lite]`` install, which has no scikit-learn. Also the
    ROC-AUC of :mod:`takeoff.evaluation.metrics`."""
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
