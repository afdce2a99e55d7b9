"""Pruning: fewer weights (networks) or fewer trees (LightGBM), then a short recovery fine-tune.

* Networks, magnitude: the smallest ``amount`` of all Linear weights (globally, by absolute
  value; embeddings and the fusion inputs stay) are zeroed with ``torch.nn.utils.prune``.
  The matrices stay dense, so the bundle keeps its size and speed on the CPU; the report says
  so with the measured sparsity.
* Networks, structured (``mlp`` only): the ``amount`` of hidden units that matter least
  (outgoing weight norm × normalisation scale) are removed, which shrinks every matrix they
  touch: smaller and faster for real.
* LightGBM: the last ``amount`` of the boosting rounds are dropped (later trees correct less).

The recovery fine-tune is distillation from the unpruned network: the pruned one learns the
original's logits on the fitting rows, so no labels or class weights are needed and the
probabilities stay calibrated as before. It stops at the deadline.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from takeoff.errors import ConfigError

log = logging.getLogger("takeoff")

MLP_EPOCHS = 30
TEXT_EPOCHS = 1
MLP_BATCH = 256
TEXT_BATCH = 32


def prune(model, amount: float, structured: bool, rows, deadline: float, seed: int):
    """Prune every member that can be pruned; returns (new Model, step info)."""
    from takeoff.api import Model
    from takeoff.models.blend import Blend

    started = time.monotonic()
    members, details = [], []
    X = None
    for member in model.blend.members:
        if member.name == "lightgbm":
            if structured:
                details.append({"member": "lightgbm", "note": "trees are pruned by dropping rounds; --structured ignored"})
            new, info = _prune_trees(member, amount)
        elif member.name in ("mlp", "text-finetune"):
            if X is None:
                X, _ = model.features(rows.fit, where="the fitting rows")
            share = 1.0 / max(1, sum(m.name in ("mlp", "text-finetune") for m in model.blend.members[len(members):]))
            member_deadline = time.monotonic() + max(deadline - time.monotonic(), 0.0) * share
            if structured and member.name != "mlp":
                raise ConfigError("structured pruning applies to the mlp family; use magnitude pruning "
                                  "(--prune without --structured) for text-finetune")
            new, info = _prune_network(member, amount, structured, X, member_deadline, seed)
        else:
            new, info = member, {"member": member.name, "note": "cannot be pruned; kept as it is"}
        members.append(new)
        details.append(info)
    manifest = copy.deepcopy(model.manifest)
    for entry, member in zip(manifest["members"], members):
        entry["params"] = member.params.model_dump(mode="json")
    pruned = Model(manifest, model.schema, model.task, model.pipeline, Blend(members, model.blend.weights))
    return pruned, {"step": "prune", "amount": amount, "structured": structured, "members": details,
                    "seconds": round(time.monotonic() - started, 2)}


# ------------------------------------------------------------------------- trees
def _prune_trees(member, amount: float):
    rounds = member._best_rounds()
    kept = max(1, int(math.ceil(rounds * (1.0 - amount))))
    new = copy.copy(member)
    new.report = replace(member.report, best_iteration=kept)
    return new, {"member": "lightgbm", "rounds_before": rounds, "rounds_after": kept}


# ---------------------------------------------------------------------- networks
def _linears(net, member_name: str):
    from torch import nn

    return [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]


def _sparsity(net) -> float:
    from torch import nn

    zeros = total = 0
    for module in net.modules():
        if isinstance(module, nn.Linear):
            zeros += int((module.weight == 0).sum())
            total += module.weight.numel()
    return zeros / max(total, 1)


def _params(net) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def _prune_network(member, amount: float, structured: bool, X, deadline: float, seed: int):
    import torch
    from torch.nn.utils import prune as torch_prune

    torch.manual_seed(seed)
    teacher = member._net.eval()
    new = copy.copy(member)
    before = {"params": _params(teacher), "sparsity": _sparsity(teacher)}
    if structured:
        new.spec, new._net = _shrink_mlp(member, amount)
    else:
        new._net = copy.deepcopy(teacher)
        targets = [(m, "weight") for _, m in _linears(new._net, member.name)]
        torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=amount)
    losses = _recover(member, teacher, new, X, deadline, seed)
    if not structured:
        for module, name in [(m, "weight") for _, m in _linears(new._net, member.name)]:
            torch_prune.remove(module, name)
    new._net.eval()
    after = {"params": _params(new._net), "sparsity": _sparsity(new._net)}
    info: dict[str, Any] = {
        "member": member.name,
        "kind": "structured" if structured else "magnitude",
        "params_before": before["params"], "params_after": after["params"],
        "linear_sparsity": round(after["sparsity"], 4),
        "recovery_loss": losses,
    }
    if structured:
        info["hidden_sizes"] = {"before": member.spec["hidden_sizes"], "after": new.spec["hidden_sizes"]}
    else:
        info["note"] = "zeros stay in dense matrices: no smaller file, no faster CPU kernels"
    return new, info


def _shrink_mlp(member, amount: float):
    """A smaller MLP: per hidden layer, the least important units removed, weights copied."""
    import torch
    from torch import nn

    from takeoff.models.mlp import _network

    spec = copy.deepcopy(member.spec)
    old = member._net
    blocks = _hidden_blocks(old)
    keep_sets = []
    for i, (linear, norm) in enumerate(blocks):
        following = blocks[i + 1][0] if i + 1 < len(blocks) else old.head
        importance = following.weight.detach().norm(dim=0)
        if norm is not None and getattr(norm, "weight", None) is not None:
            importance = importance * norm.weight.detach().abs()
        n_keep = max(1, int(round(linear.out_features * (1.0 - amount))))
        keep_sets.append(torch.sort(torch.topk(importance, n_keep).indices).values)
    spec["hidden_sizes"] = [len(k) for k in keep_sets]
    net = _network(spec)
    new_blocks = _hidden_blocks(net)
    with torch.no_grad():
        for j, emb in enumerate(old.embeddings):
            net.embeddings[j].weight.copy_(emb.weight)
        previous = None  # kept input units of the current layer (None = all)
        for (lin, norm), (new_lin, new_norm), keep in zip(blocks, new_blocks, keep_sets):
            weight = lin.weight[keep] if previous is None else lin.weight[keep][:, previous]
            new_lin.weight.copy_(weight)
            new_lin.bias.copy_(lin.bias[keep])
            if norm is not None:
                for name in ("weight", "bias", "running_mean", "running_var"):
                    value = getattr(norm, name, None)
                    if isinstance(value, torch.Tensor):
                        getattr(new_norm, name).copy_(value[keep])
            previous = keep
        head_weight = old.head.weight if previous is None else old.head.weight[:, previous]
        net.head.weight.copy_(head_weight)
        net.head.bias.copy_(old.head.bias)
    assert all(isinstance(b[0], nn.Linear) for b in new_blocks)
    return spec, net


def _hidden_blocks(net):
    """(Linear, norm or None) per hidden layer of an MLP body."""
    from torch import nn

    blocks, current = [], None
    for module in net.body:
        if isinstance(module, nn.Linear):
            current = [module, None]
            blocks.append(current)
        elif isinstance(module, (nn.BatchNorm1d, nn.LayerNorm)) and current is not None:
            current[1] = module
    return [tuple(b) for b in blocks]


def _recover(member, teacher, new, X, deadline: float, seed: int) -> dict[str, float]:
    """Fit the pruned network to the original's outputs until the deadline; returns the loss
    before and after."""
    import torch

    batches = _batches(member, X, seed)
    with torch.no_grad():
        targets = [teacher(*inputs).float() for inputs in batches]
    net = new._net
    lr = 1e-3 if member.name == "mlp" else 2e-5
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    classification = member.task.is_classification

    def loss_of(out, target):
        if classification:
            return torch.nn.functional.kl_div(torch.log_softmax(out, 1), torch.softmax(target, 1), reduction="batchmean")
        return torch.nn.functional.mse_loss(out, target)

    def mean_loss() -> float:
        net.eval()
        with torch.no_grad():
            return float(np.mean([float(loss_of(net(*b).float(), t)) for b, t in zip(batches, targets)]))

    first = mean_loss()
    epochs = MLP_EPOCHS if member.name == "mlp" else TEXT_EPOCHS
    rng = np.random.default_rng(seed)
    done = 0
    for _ in range(epochs):
        net.train()
        for i in rng.permutation(len(batches)):
            if time.monotonic() > deadline:
                break
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(net(*batches[i]).float(), targets[i])
            loss.backward()
            optimizer.step()
        else:
            done += 1
            continue
        break
    net.eval()
    return {"before": round(first, 6), "after": round(mean_loss(), 6), "epochs": done}


def _batches(member, X, seed: int) -> list[tuple]:
    """The network's inputs for ``X`` cut into batches (the family's own input preparation)."""
    import torch

    if member.name == "mlp":
        numeric = torch.from_numpy(np.ascontiguousarray(X.numeric, dtype=np.float32))
        categorical = torch.from_numpy(np.ascontiguousarray(X.categorical, dtype=np.int64))
        return [(numeric[a:a + MLP_BATCH], categorical[a:a + MLP_BATCH]) for a in range(0, len(X), MLP_BATCH)]
    ids, numeric, categorical, lengths = member._inputs(X)
    collate = member._collate(ids, numeric, categorical, None, None)
    order = np.argsort(lengths, kind="stable")
    out = []
    for a in range(0, len(order), TEXT_BATCH):
        texts, n, c, _, _ = member._to(collate(order[a:a + TEXT_BATCH].tolist()), member._device)
        out.append((texts, n, c))
    return out
