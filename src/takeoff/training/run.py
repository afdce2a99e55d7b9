"""A training run: table in, fitted pipeline + families + blend out, within the time budget.

Sequence: schema and task → checks → split → feature pipeline (fitted on the training split)
→ each family within its share of the budget → blend and decision threshold on validation →
refit on all rows when time allows. Progress is kept in a run directory (``run.json``, saved
members, per-epoch checkpoints) so that an interrupted run can be resumed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff import registry
from takeoff.bundle import RUN_STATE, write_json
from takeoff.data.conform import conform
from takeoff.data.schema import (
    Kind,
    Schema,
    Task,
    combine_label_columns,
    infer_schema,
    infer_task,
    label_sets,
    require_columns,
    split_target,
)
from takeoff.errors import BudgetError, ChecksFailedError, TargetError, preview
from takeoff.features.block import Features
from takeoff.features.pipeline import FeaturePipeline
from takeoff.models.base import Dataset, Family
from takeoff.models.blend import Blend, greedy_weights
from takeoff.training.context import FitContext

log = logging.getLogger("takeoff")

MIN_ROWS = 10
IMPORTANCE_ROWS = 2000


@dataclass
class Prepared:
    """The data of a run after checks, split and feature fitting."""

    schema: Schema
    task: Task
    pipeline: FeaturePipeline
    train: Dataset
    valid: Dataset
    findings: list[Any]
    rows_dropped: int


@dataclass
class Outcome:
    """What a finished run hands to :class:`takeoff.api.Model`."""

    prepared: Prepared
    blend: Blend
    threshold: float | list[float] | None
    metrics: dict[str, Any]
    member_scores: dict[str, float]
    valid_pred: np.ndarray
    importance: dict[str, float]
    history: dict[str, dict[str, list[float]]]
    info: dict[str, Any] = field(default_factory=dict)


def prepare(df: pd.DataFrame, config, source: str) -> Prepared:
    """Validate the table against the config, run the checks, split and fit the features.

    Raises:
        ColumnNotFoundError, TargetError, ChecksFailedError: bad input, before anything is written.
    """
    from takeoff.data.checks import run_checks
    from takeoff.data.split import train_valid_split

    target, label_columns = split_target(config.target, [str(c) for c in df.columns])
    log.info("read %s: %d rows, %d columns", source, len(df), df.shape[1])
    require_columns(df, label_columns or [target], source, role="label column" if label_columns else "target column")
    require_columns(df, list(config.drop), source, role="column to drop")
    if label_columns:  # several 0/1 columns: one multilabel target of their label sets
        if config.task not in (None, "multilabel"):
            raise TargetError(f"several target columns ({', '.join(label_columns)}) make a multilabel task, not "
                              f"'{config.task}'. Fix: pass one target column, or drop task: {config.task}.", target)
        df = df.assign(**{target: combine_label_columns(df, label_columns, target)})
    missing = df[target].isna()
    if missing.all() and not label_columns and config.task != "multilabel":
        raise TargetError(f"target '{target}' is empty in {source}: every row is missing. Fix: choose another target column.", target)
    schema = infer_schema(df, target, list(config.drop) + label_columns)
    task = infer_task(df[target], target, "multilabel" if label_columns else config.task, config.positive_label)
    if task.is_multilabel:
        missing = pd.Series(False, index=df.index)  # a row without a label has the empty label set
        task.columns = label_columns
        task = _enough_per_label(df[target], task, config)
    log.info(
        "task: %s on '%s'%s; %d feature columns",
        task.kind, target, f" ({'labels' if task.is_multilabel else 'classes'} {preview(task.classes)})"
        if task.classes else "", len(schema.features),
    )
    # the feature pipeline decodes every image anyway and lists the ones that fail: the checks
    # need not decode them first (they still hash and probe each file)
    checks = config.checks.model_copy(update={"verify_images": 0}) if schema.names(Kind.IMAGE) else config.checks
    findings = run_checks(df, schema, target, task, checks)
    errors = [f for f in findings if f.severity == "error"]
    if config.strict and errors:
        raise ChecksFailedError(errors)
    for finding in findings:
        if finding.severity in ("error", "warning"):
            log.warning("%s", finding)

    rows = df.loc[~missing]
    if task.is_classification:
        counts = rows[target].map(str).value_counts()
        rare = counts[counts < 2]
        if len(rare):
            described = preview([f"{k!r} ({v} row)" for k, v in rare.items()])
            if not config.drop_rare_classes:
                raise TargetError(
                    f"target '{target}' has class(es) with a single row: {described}; each class "
                    "needs at least 2 rows (one to learn from, one to validate on). Fix: remove or "
                    "merge those rows, or set drop_rare_classes: true in the config.",
                    column=target,
                )
            log.warning("dropping rows of class(es) with a single row: %s", described)
            rows = rows[~rows[target].map(str).isin(rare.index)]
            task = infer_task(rows[target], target, config.task, config.positive_label)
    if len(rows) < MIN_ROWS:
        raise TargetError(
            f"{source} has {len(rows)} row(s) with a target value; at least {MIN_ROWS} are needed. "
            "Fix: add rows.", column=target,
        )
    if task.is_multilabel:  # labels dropped as too rare leave the label sets
        known = set(task.classes)
        rows = rows.assign(**{target: ["|".join(label for label in cell if label in known) for cell in label_sets(rows[target])]})
    y = task.encode(rows[target])
    frame, _ = conform(rows, schema, where=source, target=target)
    train_idx, valid_idx = train_valid_split(y, task, config.valid_fraction, config.seed)
    pipeline = FeaturePipeline(schema, config.features).fit(frame.iloc[train_idx])
    raw = pipeline.raw(frame, image_errors="collect")
    features = pipeline.finish(raw)
    unreadable = sorted({r for failed in raw.image_failures.values() for r in failed})
    if unreadable:
        # images that cannot be decoded are skipped, counted and listed
        reasons = [f"row {r}: {failed[r]}" for failed in raw.image_failures.values() for r in list(failed)[:5]]
        log.warning("skipped %d row(s) whose image cannot be read: %s", len(unreadable), "; ".join(reasons[:5]))
        keep = np.ones(len(frame), dtype=bool)
        keep[unreadable] = False
        train_idx, valid_idx = train_idx[keep[train_idx]], valid_idx[keep[valid_idx]]
        if len(train_idx) < 2 or len(valid_idx) < 1:
            raise TargetError(f"{source}: too few readable images remain ({int(keep.sum())} of {len(frame)}). "
                              "Fix: check the image files.", column=target)
    findings += _copies_across_splits(features, train_idx, valid_idx, rows.index)
    return Prepared(
        schema=schema,
        task=task,
        pipeline=pipeline,
        train=Dataset(features.take(train_idx), y[train_idx]),
        valid=Dataset(features.take(valid_idx), y[valid_idx]),
        findings=findings,
        rows_dropped=int(len(df) - len(rows)) + len(unreadable),
    )


def _enough_per_label(y: pd.Series, task: Task, config) -> Task:
    """A multilabel task whose every label has at least 2 rows with it and 2 without (one of
    each to learn from, one to validate on); others are refused, or dropped from the label
    sets with ``drop_rare_classes``."""
    indicator = task.encode(y)
    present = indicator.sum(axis=0)
    rare = [(label, int(n)) for label, n in zip(task.classes, present) if n < 2 or len(y) - n < 2]
    if not rare:
        return task
    described = preview([f"{label!r} ({n} of {len(y)} rows)" for label, n in rare])
    if not config.drop_rare_classes:
        raise TargetError(
            f"target '{task.target}' has label(s) on fewer than 2 rows, or on all but fewer than 2: {described}; "
            "each label needs at least 2 rows with it and 2 without. Fix: remove or merge those labels, or set "
            "drop_rare_classes: true in the config.",
            column=task.target,
        )
    log.warning("dropping label(s) too rare or too common to learn: %s", described)
    kept = [label for label in task.classes if label not in {r[0] for r in rare}]
    if len(kept) < 2:
        raise TargetError(f"target '{task.target}' keeps {len(kept)} label(s) once rare ones are dropped; a multilabel "
                          "task needs at least 2. Fix: add rows with the other labels.", column=task.target)
    return Task("multilabel", task.target, kept, task.columns)


def _copies_across_splits(features: Features, train_idx: np.ndarray, valid_idx: np.ndarray, index: pd.Index) -> list:
    """Validation rows whose image (decoded pixels) or text (ignoring case and spacing) equals
    a training row's: the model has seen them, so they flatter the validation score it is
    chosen by."""
    import hashlib

    from takeoff.data.checks import Finding

    def image_key(pixels, i):
        return hashlib.blake2b(pixels[i].tobytes(), digest_size=16).digest()

    def text_key(texts, i):
        return " ".join(str(texts[i]).lower().split())

    sources = [("image", column, pixels, image_key) for column, pixels in features.images.items()]
    sources += [("text", column, texts, text_key) for column, texts in features.text.items()]
    out = []
    for what, column, values, key in sources:
        seen = {key(values, i) for i in train_idx}
        copies = [int(i) for i in valid_idx if key(values, i) in seen and (what == "image" or key(values, i))]
        if not copies:
            continue
        how = "once decoded" if what == "image" else "(ignoring case and spacing)"
        finding = Finding(
            f"duplicate_{what}_across_splits", "warning",
            f"{len(copies)} of {len(valid_idx)} validation {what}(s) are identical to a training {what} {how} "
            f"(e.g. rows {preview([index[i] for i in copies])}); the validation score is that much too optimistic",
            f"remove exact copies before training (takeoff inspect lists repeated {what}s)", column=column,
            count=len(copies),
        )
        log.warning("%s", finding)
        out.append(finding)
    return out


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
    importance = permutation_importance(Blend([members[n] for n in kept], [weights[n] for n in kept]), prep, config.seed)
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


def permutation_importance(model: Blend, prep: Prepared, seed: int) -> dict[str, float]:
    """Drop in the validation score when one input column's features are shuffled together."""
    from takeoff.evaluation.metrics import score

    valid = prep.valid
    rng = np.random.default_rng(seed)
    index = np.sort(rng.permutation(len(valid))[:IMPORTANCE_ROWS])
    X, y = valid.X.take(index), valid.y[index]
    base = score(prep.task, y, model.predict(X))
    sources = np.array(X.sources)
    n_num = X.numeric.shape[1]
    out = {}
    for column in dict.fromkeys(X.sources):
        cols = np.flatnonzero(sources == column)
        perm = rng.permutation(len(X))
        num_cols, cat_cols = cols[cols < n_num], cols[cols >= n_num] - n_num
        numeric, categorical = X.numeric.copy(), X.categorical.copy()
        numeric[:, num_cols] = X.numeric[perm][:, num_cols]
        categorical[:, cat_cols] = X.categorical[perm][:, cat_cols]
        text = {**X.text, column: X.text[column][perm]} if column in X.text else X.text  # families reading raw text
        shuffled = replace(X, numeric=numeric, categorical=categorical, text=text)
        out[column] = float(base - score(prep.task, y, model.predict(shuffled)))
    for column, pixels in X.images.items():
        shuffled = replace(X, images={**X.images, column: pixels[rng.permutation(len(X))]})
        out[column] = float(base - score(prep.task, y, model.predict(shuffled)))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
