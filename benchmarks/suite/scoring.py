"""Test scores of one prediction, and the suite's summary over many: mean rank per contender,
wins/ties/losses of takeoff against each other contender, and a paired Wilcoxon signed-rank
test on the per-table relative differences."""

from __future__ import annotations

import numpy as np
import pandas as pd

RANKED = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
RECORDED = {"binary": ("roc_auc",), "multiclass": ("accuracy", "log_loss"), "regression": ("rmse",)}
HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "log_loss": False, "rmse": False}
PROBA_FLOOR = 1e-15


def score(task: str, y_true: pd.Series, prediction, classes: list[str]) -> dict[str, float]:
    """The recorded metrics of ``prediction`` (a contenders.Prediction) on ``y_true``;
    ``classes`` are the table's sorted class labels (the second is binary's positive class)."""
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score

    if task == "regression":
        return {"rmse": float(np.sqrt(mean_squared_error(y_true, prediction.values)))}
    proba = prediction.proba.reindex(columns=classes, fill_value=0.0).to_numpy(dtype=float)
    if task == "binary":
        return {"roc_auc": float(roc_auc_score(y_true.to_numpy() == classes[1], proba[:, 1]))}
    proba = np.clip(proba, PROBA_FLOOR, None)
    return {"accuracy": float(accuracy_score(y_true.to_numpy(), prediction.labels)),
            "log_loss": float(log_loss(y_true.to_numpy(), proba / proba.sum(axis=1, keepdims=True), labels=classes))}


def table_scores(records: pd.DataFrame) -> pd.DataFrame:
    """Mean of the ranked metric over splits: one row per table, one column per contender.
    A contender that failed on any split of a table has no score there."""
    ok = records[records["error"].isna()]
    done = ok.groupby(["table", "contender"])["split"].nunique().rename("done").reset_index()
    done["splits"] = done["table"].map(records.groupby("table")["split"].nunique())
    ok = ok.merge(done.loc[done["done"] == done["splits"], ["table", "contender"]])
    return ok.pivot_table(index="table", columns="contender", values="ranked_score", aggfunc="mean")


def relative_gain(mine: pd.Series, other: pd.Series, higher: pd.Series) -> pd.Series:
    """(mine - other) / |other|, signed so that positive means `mine` is better."""
    diff = (mine - other) / other.abs()
    return diff.where(higher, -diff)


def summarize(records: pd.DataFrame, reference: str = "takeoff", tie_tolerance: float = 0.002) -> dict:
    """Mean ranks, W/T/L of ``reference`` against the others, and the paired tests.

    Ranks are taken per table on the ranked metric (1 = best, ties share the average rank)
    over the tables where every contender has a score. A win/loss needs a relative difference
    of at least ``tie_tolerance``; the Wilcoxon signed-rank test (two-sided) runs on the
    per-table relative differences.
    """
    from scipy.stats import rankdata, wilcoxon

    scores = table_scores(records)
    higher = records.groupby("table")["higher_is_better"].first().reindex(scores.index)
    full = scores.dropna()
    signed = full.mul(np.where(higher.reindex(full.index), 1, -1), axis=0)
    ranks = pd.DataFrame(rankdata(-signed.to_numpy(), axis=1), index=full.index, columns=full.columns)
    out = {"scores": scores, "mean_rank": ranks.mean().sort_values(), "ranked_tables": len(full), "versus": {}}
    if reference not in scores:
        return out
    for other in scores.columns.drop(reference):
        pair = scores[[reference, other]].dropna()
        gain = relative_gain(pair[reference], pair[other], higher.reindex(pair.index))
        wins, losses = int((gain >= tie_tolerance).sum()), int((gain <= -tie_tolerance).sum())
        nonzero = gain[gain != 0]
        p = float(wilcoxon(nonzero).pvalue) if len(nonzero) >= 6 else float("nan")
        out["versus"][other] = {"tables": len(pair), "wins": wins, "ties": len(pair) - wins - losses,
                                "losses": losses, "median_gain": float(gain.median()), "p_value": p,
                                "gains": gain}
    return out
