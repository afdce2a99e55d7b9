"""The AutoML step of a prediction run: each family within its share of the time budget →
blend and decision threshold on validation → refit on all rows when time allows. Progress is
kept in the run directory (``run.json``, saved members, per-epoch checkpoints) so that an
interrupted run can be resumed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from takeoff import registry
from takeoff.bundle import RUN_STATE, write_json
from takeoff.data.schema import Kind, Schema, Task
from takeoff.errors import BudgetError
from takeoff.evaluation.importance import validation_importance
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family
from takeoff.models.blend import Blend, greedy_weights
from takeoff.pipelines.prediction.prepare import Prepared
from takeoff.training.context import FitContext

log = logging.getLogger("takeoff")

@dataclass
class Outcome:
    """What a finished run hands to :class:`~takeoff.pipelines.prediction.model.Model`."""

    prepared: Prepared
    blend: Blend
    threshold: float | list[float] | None
    metrics: dict[str, Any]
    member_scores: dict[str, float]
    valid_pred: np.ndarray
    importance: dict[str, float]
    history: dict[str, dict[str, list[float]]]
    info: dict[str, Any] = field(default_factory=dict)



def family_names(config, task: Task, schema: Schema | None = None) -> list[str]:
    if config.family == "auto":
        if schema is not None and schema.names(Kind.IMAGE):
            # image tables: the families that read the pixels (and fuse the other columns)
            names = []
            for n in registry.auto(images=True):
                cls = registry.get(n)
                if not cls.supports(task.kind):
                    continue
                problem = cls.unavailable(getattr(config.models, n).model_dump())
                if problem is not None:
                    log.warning("%s: skipped; the other image families train instead. %s", n, problem)
                    continue
                names.append(n)
            return names
        has_text = schema is not None and bool(schema.names(Kind.TEXT))
        return [n for n in registry.auto() if registry.get(n).supports(task.kind)
                and (has_text or not getattr(registry.get(n), "needs_text", False))]
    registry.get(config.family)  # raises UnknownNameError listing the valid names
    return [config.family]


def fit(prep: Prepared, config, run_dir: Path | None, deadline: float, state: dict[str, Any]) -> Outcome:
    """Fit, select, blend and refit within ``deadline`` (a ``time.monotonic()`` value).

    ``state`` is the run's resumable state (saved to ``run_dir/run.json`` after each member);
    members it lists as done are loaded instead of refitted.
    """
    from takeoff.evaluation.metrics import compute_metrics, score, tune_label_thresholds, tune_threshold

    task, names = prep.task, family_names(config, prep.task, prep.schema)
    started = time.monotonic()
    total = max(deadline - started, 0.0)
    # Leave time at the end for the report and the bundle; the refit gets what selection leaves.
    reserve = min(max(2.0, 0.08 * total), 0.3 * total)
    select_deadline = deadline - reserve - (0.2 * total if config.refit else 0.0)
    base_ctx = FitContext(deadline=select_deadline, seed=config.seed, device=config.device, warn=log.warning)

    members: dict[str, Family] = {}
    done = state.setdefault("members", {})
    for i, name in enumerate(names):
        cls = registry.get(name)
        params = getattr(config.models, name).model_dump()
        member_dir = run_dir / "members" / name if run_dir else None
        if name in done and member_dir and member_dir.exists():
            log.info("%s: loaded from the interrupted run", name)
            members[name] = cls.restore(member_dir, task, params)
            continue
        if base_ctx.expired():
            log.warning("%s: skipped, the time budget is spent", name)
            continue
        share = 1.0 / (len(names) - i)
        ctx = base_ctx.with_share(share, run_dir / "checkpoints" / name if run_dir else None)
        family = cls.create(task, params)
        log.info("%s: training (up to %.0fs)", name, max(ctx.remaining(), 0.0))
        report = family.fit(prep.train, prep.valid, ctx)
        log.info("%s: fitted in %.1fs (%s, best iteration %s)", name, report.seconds, report.stopped_by, report.best_iteration)
        members[name] = family
        if run_dir:
            member_dir.mkdir(parents=True, exist_ok=True)
            family.save(member_dir)
            done[name] = {"seconds": report.seconds}
            write_json(run_dir / RUN_STATE, state)
    if not members:
        raise BudgetError(
            f"the time budget ({config.time_budget:g}s) ended before any model was fitted. "
            "Fix: raise --time-budget."
        )

    valid_preds = {name: m.predict(prep.valid.X) for name, m in members.items()}
    member_scores = {name: score(task, prep.valid.y, p) for name, p in valid_preds.items()}
    best = max(member_scores, key=member_scores.get)
    weights = {name: float(name == best) for name in members}
    if config.blend and len(members) > 1:
        order = list(members)
        blend_w, blend_score = greedy_weights(
            [valid_preds[n] for n in order], lambda p: score(task, prep.valid.y, p)
        )
        if blend_score > member_scores[best] + 1e-9:
            weights = dict(zip(order, blend_w))
    kept = [n for n in members if weights[n] > 0]
    log.info(
        "validation scores: %s; kept %s",
        ", ".join(f"{n} {v:.4f}" for n, v in member_scores.items()),
        " + ".join(f"{n} ({weights[n]:.2f})" for n in kept),
    )
    valid_pred = sum(valid_preds[n] * weights[n] for n in kept) / sum(weights[n] for n in kept)
    threshold = None
    if task.kind == "binary":
        threshold = tune_threshold(prep.valid.y, valid_pred[:, 1], config.threshold_metric)
    elif task.is_multilabel:  # one per label, each at its best F1 on validation
        threshold = tune_label_thresholds(prep.valid.y, valid_pred)
    metrics = compute_metrics(task, prep.valid.y, valid_pred, threshold)
    chosen = Blend([members[n] for n in kept], [weights[n] for n in kept])
    importance = validation_importance(chosen.predict, task, prep.valid.X, prep.valid.y, config.seed)
    history = {n: members[n].report.history for n in members}

    refitted = []
    if config.refit:
        refitted = _refit(members, kept, prep, config, deadline - reserve)
    final = Blend([members[n] for n in kept], [weights[n] for n in kept])
    return Outcome(
        prepared=prep,
        blend=final,
        threshold=threshold,
        metrics=metrics,
        member_scores=member_scores,
        valid_pred=valid_pred,
        importance=importance,
        history=history,
        info={
            "weights": {n: weights[n] for n in kept},
            "refitted": refitted,
            "fit_seconds": {n: round(m.report.seconds, 2) for n, m in members.items()},
        },
    )


def _refit(members: dict[str, Family], kept: list[str], prep: Prepared, config, deadline: float) -> list[str]:
    """Refit the kept members on train + validation with the iterations found, if time allows."""
    full = Dataset(Features.concat([prep.train.X, prep.valid.X]), np.concatenate([prep.train.y, prep.valid.y]))
    ratio = len(full) / len(prep.train)
    refitted = []
    for name in kept:
        old = members[name]
        overrides = old.refit_params(ratio)
        needed = old.report.seconds * ratio * 1.3 + 1.0
        if overrides is None or time.monotonic() + needed > deadline:
            if overrides is not None:
                log.info("%s: not refitted on all rows (needs ~%.0fs, budget left %.0fs)", name, needed, deadline - time.monotonic())
            continue
        params = {**old.params.model_dump(), **overrides}
        family = registry.get(name).create(prep.task, params)
        ctx = FitContext(deadline=deadline, seed=config.seed, device=config.device, warn=log.warning)
        log.info("%s: refitting on all %d rows", name, len(full))
        report = family.fit(full, None, ctx)
        if report.stopped_by == "time_budget":
            log.info("%s: refit cut by the time budget; keeping the validated model", name)
            continue
        family.report.history = old.report.history  # the learning curve that was validated
        members[name] = family
        refitted.append(name)
    return refitted
