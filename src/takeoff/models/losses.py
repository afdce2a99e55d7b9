"""The training losses of the torch families, one per task head.

Each is ``loss(outputs, target, weight) -> scalar``, the (row-weighted) mean over the batch, as
:class:`~takeoff.training.loop.Trainer` takes it. Outputs are logits (classification,
multilabel) or the standardised value (regression, in column 0). torch is imported inside the
functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def classification_loss(class_weight: Any = None, label_smoothing: float = 0.0) -> Callable:
    """Softmax cross-entropy on logits (n, n_classes).

    Args:
        class_weight: a float tensor (n_classes,) on the outputs' device weighting each class
            (balanced weights for imbalanced targets), or None for equal weights.
        label_smoothing: smoothing of the targets while training (``outputs.requires_grad``);
            evaluation always scores the plain cross-entropy. Defaults to 0.

    Soft targets (class probabilities, as Mixup and CutMix make) are taken as they are, without
    class weights.
    """
    import torch.nn.functional as F

    def loss(outputs, target, weight):
        smoothing = label_smoothing if outputs.requires_grad else 0.0
        per_row = F.cross_entropy(outputs.float(), target, reduction="none", label_smoothing=smoothing)
        w = weight
        if class_weight is not None and not target.is_floating_point():
            w = class_weight[target] if weight is None else class_weight[target] * weight
        if w is None:
            return per_row.mean()
        return (per_row * w).sum() / w.sum().clamp_min(1e-12)

    return loss


def multilabel_loss(outputs, target, weight):
    """Binary cross-entropy per label on logits (n, n_labels), averaged over labels and rows
    (row-weighted when ``weight`` is given)."""
    import torch.nn.functional as F

    per_row = F.binary_cross_entropy_with_logits(outputs.float(), target.float(), reduction="none").mean(dim=1)
    if weight is None:
        return per_row.mean()
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


def regression_loss(outputs, target, weight):
    """Squared error of output column 0 against the standardised target."""
    per_row = (outputs[:, 0].float() - target) ** 2
    if weight is None:
        return per_row.mean()
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


def task_loss(kind: str, class_weight: Any = None, label_smoothing: float = 0.0) -> Callable:
    """The loss of a task kind: classification (binary, multiclass), multilabel or regression."""
    if kind in ("binary", "multiclass"):
        return classification_loss(class_weight, label_smoothing)
    if kind == "multilabel":
        return multilabel_loss
    return regression_loss
