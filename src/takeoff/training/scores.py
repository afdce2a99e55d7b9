"""Validation scores that say how far from chance a network is, for the trainer's logs.

The metrics themselves are scikit-learn's (ROC-AUC) or one line (accuracy, R²); what this adds
is the chance level of each and about two standard errors of the score under "no signal" for
the validation set's size, which :class:`~takeoff.training.callbacks.ChanceWarning` reads.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

ScoreFn = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]


def chance_score(kind: str) -> ScoreFn:
    """A score function for :class:`~takeoff.training.loop.Trainer` whose logs say how far from chance the model is.

    Args:
        kind: "binary" (outputs: (n, 2) logits; ROC-AUC, chance 0.5), "multilabel" (outputs:
            (n, k) logits; mean ROC-AUC over labels, chance 0.5), "multiclass" (outputs:
            (n, k) logits; accuracy, chance = the majority class's share) or "regression"
            (outputs: (n,) or (n, 1); R², chance 0).

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
    y = target.numpy().astype(np.int64)
    if len(y) == 0:
        return {}
    accuracy = float((outputs.argmax(dim=1).numpy() == y).mean())
    majority = float(np.bincount(y).max() / len(y))
    band = 2.0 * np.sqrt(majority * (1 - majority) / len(y))
    return {
        "valid_accuracy": accuracy,
        "valid_score": accuracy,
        "valid_chance": majority,
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
