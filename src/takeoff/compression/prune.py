"""Pruning: every member that declares it (``prunable``) prunes itself, then recovers.

What pruning means is the family's own (:meth:`~takeoff.models.base.Family.prune`): networks
zero their smallest weights or, structured, drop the hidden units that matter least, then
fine-tune to the unpruned model's outputs on the fitting rows; LightGBM drops its last
boosting rounds. This module only shares the time among the members, computes the features
of the fitting rows once (the first time a member needs them), and rebuilds the model.
"""

from __future__ import annotations

import copy
import time
from typing import Any


def prune(model, amount: float, structured: bool, rows, deadline: float, seed: int):
    """Prune every member that can be pruned; returns (new Model, step info).

    Args:
        model: the loaded :class:`~takeoff.api.Model`.
        amount: share of weights (units, rounds) to remove, in (0, 1).
        structured: remove whole units where the family can (else its own default).
        rows: the compression rows; ``rows.fit`` are those the recovery fine-tune runs on.
        deadline: ``time.monotonic()`` value by which pruning ends, shared among the members.
        seed: seed of the fine-tunes.
    """
    from takeoff.api import Model
    from takeoff.models.blend import Blend

    started = time.monotonic()
    features: list[Any] = []

    def fitting_features():
        if not features:
            features.append(model.features(rows.fit, where="the fitting rows")[0])
        return features[0]

    members, details = [], []
    for i, member in enumerate(model.blend.members):
        if not member.prunable:
            new, info = member, {"member": member.name, "note": "cannot be pruned; kept as it is"}
        else:
            share = 1.0 / sum(m.prunable for m in model.blend.members[i:])
            member_deadline = time.monotonic() + max(deadline - time.monotonic(), 0.0) * share
            new, info = member.prune(amount, structured, fitting_features(), member_deadline, seed)
        members.append(new)
        details.append(info)
    manifest = copy.deepcopy(model.manifest)
    for entry, member in zip(manifest["members"], members):
        entry["params"] = member.params.model_dump(mode="json")
    pruned = Model(manifest, model.schema, model.task, model.pipeline, Blend(members, model.blend.weights))
    pruned.redactor = model.redactor  # the same personal-data redaction before the features
    return pruned, {"step": "prune", "amount": amount, "structured": structured, "members": details,
                    "seconds": round(time.monotonic() - started, 2)}
