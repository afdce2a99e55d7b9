"""Pruning for any torch module: zero the smallest weights, then fine-tune the pruned copy to
the original's outputs (distillation) on the one :class:`~takeoff.training.loop.Trainer`.

Nothing here knows a family: the family hands over its network, its inputs as a
:class:`~takeoff.training.tensors.TensorSet` and, where its batches need it, a ``collate``.

* :func:`mask_smallest`: the smallest ``amount`` of all Linear weights (globally, by absolute
  value) are zeroed with ``torch.nn.utils.prune``; the mask stays on during the fine-tune, so
  the zeros survive it, and :func:`unmask` makes them permanent. The matrices stay dense.
* :func:`distil`: the student learns the teacher's logits (KL divergence of the softmaxes) or
  values (squared error) on the given rows, so no labels or class weights are needed and
  probabilities stay calibrated as before. It stops at the deadline.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from takeoff.training.context import FitContext
from takeoff.training.tensors import TensorSet


def linears(net: nn.Module) -> list[nn.Linear]:
    """Every Linear layer of ``net``."""
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def mask_smallest(net: nn.Module, amount: float) -> list[nn.Linear]:
    """Zero the smallest ``amount`` of all Linear weights of ``net`` (one global threshold),
    through a pruning mask; returns the masked layers (for :func:`unmask`)."""
    from torch.nn.utils import prune as torch_prune

    layers = linears(net)
    torch_prune.global_unstructured([(m, "weight") for m in layers], pruning_method=torch_prune.L1Unstructured,
                                    amount=amount)
    return layers


def unmask(layers: list[nn.Linear]) -> None:
    """Make the masks of :func:`mask_smallest` permanent: plain weights with zeros in them."""
    from torch.nn.utils import prune as torch_prune

    for module in layers:
        torch_prune.remove(module, "weight")


def linear_sparsity(net: nn.Module) -> float:
    """Share of zeros among the Linear weights of ``net``."""
    zeros = total = 0
    for module in linears(net):
        zeros += int((module.weight == 0).sum())
        total += module.weight.numel()
    return zeros / max(total, 1)


def n_params(net: nn.Module) -> int:
    """Number of parameters of ``net``."""
    return int(sum(p.numel() for p in net.parameters()))


def distil(student: nn.Module, teacher: nn.Module, data: TensorSet, *, classification: bool, deadline: float,
           seed: int, epochs: int, batch_size: int, lr: float, collate: Any = None) -> dict[str, float]:
    """Fit ``student`` to ``teacher``'s outputs on the rows of ``data`` until ``deadline``.

    Args:
        student, teacher: modules taking the same inputs; the student is trained in place.
        data: the inputs (its target is ignored: the teacher's outputs replace it).
        classification: match softmaxes (KL divergence), else values (squared error).
        deadline: ``time.monotonic()`` value to stop at.
        seed, epochs, batch_size, lr: the shuffles, the most epochs, rows per step, AdamW's rate.
        collate: the batches' CPU-side ``collate`` (see :class:`Trainer`), or None.

    Returns:
        ``{"before", "after", "epochs"}``: the distillation loss before and after, and the
        epochs completed.
    """
    from takeoff.training.callbacks import TimeBudget
    from takeoff.training.loop import Trainer, forward_batches

    device = next(student.parameters()).device
    targets = forward_batches(teacher.eval(), data, batch_size, device, collate=collate, precision="fp32")
    rows = TensorSet(data.inputs, targets.cpu(), None)

    def loss(out, target, weight):
        out = out.float()
        if classification:
            return nn.functional.kl_div(torch.log_softmax(out, 1), torch.softmax(target, 1), reduction="batchmean")
        return nn.functional.mse_loss(out, target)

    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    trainer = Trainer(student, loss, optimizer, None, train=rows, batch_size=batch_size, max_epochs=epochs,
                      callbacks=[TimeBudget()], ctx=FitContext(deadline=deadline, seed=seed, progress=False),
                      device=device, eval_batch_size=batch_size, collate=collate, precision="fp32")
    first = trainer.evaluate(rows)["valid_loss"]
    trainer.fit()
    after = trainer.evaluate(rows)["valid_loss"]
    student.eval()
    return {"before": round(first, 6), "after": round(after, 6), "epochs": trainer.epoch}
