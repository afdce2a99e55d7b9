"""Validation scores that say how far from chance a network is, for the trainer's logs.

The metrics themselves are scikit-learn's (ROC-AUC) or a few lines (balanced accuracy, R²);
what this adds is the chance level of each and about two standard errors of the score under "no
signal" for the validation set's size, which :class:`~takeoff.training.callbacks.ChanceWarning`
reads.

"Chance" is what a guess that ignores the features scores: a random guess that predicts each
class as often as it occurs (:func:`chance_level` gives it for each metric). It is not the
majority class's share: predicting the majority class every time *is* such a guess, and a model
that learned something can score below that share in accuracy while it finds the rare classes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

ScoreFn = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]

# metrics whose chance level is 1/k: each class counts alike, whatever its share
_PER_CLASS_MEAN = ("balanced_accuracy", "macro_f1", "macro_recall", "macro_precision")


def chance_level(metric: str, priors) -> float:
    """The score of a guess that ignores the features, for ``metric`` and the class shares ``priors``.

    For the threshold metrics the guess draws each class with its prior probability; for the
    probabilistic ones it predicts the priors on every row. Classes with a zero prior are left out.

    Args:
        metric: "accuracy" (sum of p_k²), "balanced_accuracy", "macro_f1", "macro_recall",
            "macro_precision" (1/k), "log_loss" (the entropy of the priors, in nats), "brier"
            (1 - sum of p_k²), "roc_auc" (0.5), or "r2" (0).
        priors: the class shares, summing to 1 (ignored for "roc_auc" and "r2").

    Example:
        >>> round(chance_level("accuracy", [0.64, 0.25, 0.11]), 4)
        0.4842
    """
    if metric in ("roc_auc", "r2"):
        return 0.5 if metric == "roc_auc" else 0.0
    p = np.asarray(priors, dtype=np.float64)
    p = p[p > 0] / p[p > 0].sum()
    if metric == "accuracy":
        return float((p**2).sum())
    if metric in _PER_CLASS_MEAN:
        return 1.0 / len(p)
    if metric == "log_loss":
        return float(-(p * np.log(p)).sum())
    if metric == "brier":
        return float(1.0 - (p**2).sum())
    from takeoff.errors import UnknownNameError

    raise UnknownNameError("metric", metric, ["accuracy", *_PER_CLASS_MEAN, "log_loss", "brier", "roc_auc", "r2"])


def chance_score(kind: str) -> ScoreFn:
    """A score function for :class:`~takeoff.training.loop.Trainer` whose logs say how far from chance the model is.

    Args:
        kind: "binary" (outputs: (n, 2) logits; ROC-AUC, chance 0.5), "multilabel" (outputs:
            (n, k) logits; mean ROC-AUC over labels, chance 0.5), "multiclass" (outputs:
            (n, k) logits; balanced accuracy, chance 1/k; accuracy is logged beside it) or
            "regression" (outputs: (n,) or (n, 1); R², chance 0).

    Returns:
        A function giving ``valid_score``, ``valid_chance``, ``valid_chance_band`` (about two
        standard errors of the score when there is no signal) and the named metric.
    """
    if kind == "binary":
        return _binary_score
    if kind == "multiclass":
        return _multiclass_score
    if kind == "regression":
        return _regression_score
    if kind == "multilabel":
        return _multilabel_score
    from takeoff.errors import UnknownNameError

    raise UnknownNameError("task", kind, ["binary", "multiclass", "multilabel", "regression"])


def _multilabel_score(outputs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean ROC-AUC over the labels with positives and negatives (logits (n, k), 0/1 (n, k))."""
    from sklearn.metrics import roc_auc_score

    y = target.numpy().astype(np.int64)
    logits = outputs.double().numpy()
    aucs, bands = [], []
    for k in range(y.shape[1]):
        n_pos = int(y[:, k].sum())
        n_neg = len(y) - n_pos
        if n_pos and n_neg:
            aucs.append(float(roc_auc_score(y[:, k], logits[:, k])))
            bands.append(2.0 * np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg)))
    if not aucs:
        return {}
    auc = float(np.mean(aucs))
    band = float(np.sqrt(np.sum(np.square(bands))) / len(bands))  # of a mean of independent AUCs
    return {"valid_roc_auc": auc, "valid_score": auc, "valid_chance": 0.5, "valid_chance_band": band}


def _binary_score(outputs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    y = target.numpy().astype(np.int64)
    n_pos = int((y == 1).sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return {}
    margin = (outputs[:, 1] - outputs[:, 0]).double().numpy()
    auc = float(roc_auc_score(y, margin))
    band = 2.0 * np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    return {"valid_roc_auc": auc, "valid_score": auc, "valid_chance": 0.5, "valid_chance_band": float(band)}


def _multiclass_score(outputs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Balanced accuracy (mean recall over the classes present), chance 1/k.

    Its band is two standard errors under "no signal": predictions drawn independently of the
    target, class j as often as the model predicts it (q_j), make each class's recall a binomial
    share, so var = sum over classes of q_j (1 - q_j) / n_j, divided by k².
    """
    y = target.numpy().astype(np.int64)
    if len(y) == 0:
        return {}
    pred = outputs.argmax(dim=1).numpy()
    counts = np.bincount(y, minlength=outputs.shape[1])
    present = np.flatnonzero(counts)
    recalls = np.array([(pred[y == j] == j).mean() for j in present])
    balanced = float(recalls.mean())
    q = np.bincount(pred, minlength=outputs.shape[1])[present] / len(y)
    band = 2.0 * np.sqrt(float((q * (1 - q) / counts[present]).sum())) / len(present)
    priors = counts / len(y)
    return {
        "valid_balanced_accuracy": balanced,
        "valid_accuracy": float((pred == y).mean()),
        "valid_accuracy_chance": chance_level("accuracy", priors),
        "valid_score": balanced,
        "valid_chance": chance_level("balanced_accuracy", priors),
        "valid_chance_band": float(band),
    }


def _regression_score(outputs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    from sklearn.metrics import r2_score

    y = target.double().numpy()
    pred = outputs.double().reshape(len(y), -1)[:, 0].numpy()
    if len(y) < 2 or float(((y - y.mean()) ** 2).sum()) <= 0:
        return {}
    r2 = float(r2_score(y, pred))
    return {"valid_r2": r2, "valid_score": r2, "valid_chance": 0.0, "valid_chance_band": 2.0 / np.sqrt(len(y))}
