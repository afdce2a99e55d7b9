"""Prepare a table for training: schema and task → checks → split → feature pipeline fitted
on the training split. Bad input is refused here, before anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from takeoff.data.conform import conform
from takeoff.data.schema import (
    Kind,
    Schema,
    Task,
    combine_label_columns,
    infer_schema,
    infer_task,
    label_sets,
    looks_like_id,
    numbers_with_placeholders,
    require_columns,
    split_target,
)
from takeoff.errors import ChecksFailedError, TargetError, preview
from takeoff.features.block import Features
from takeoff.features.pipeline import FeaturePipeline
from takeoff.models.base import Dataset

log = logging.getLogger("takeoff")

MIN_ROWS = 10

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
    pii: list[Any] = field(default_factory=list)  # PiiFinding of the personal data found
    redactor: Any = None  # the fitted Redactor when personal data is redacted
    profile: dict[str, Any] | None = None  # the training rows' profile, for drift monitoring
    # the sensitive columns' values (fairness.sensitive) of the train rows, then the valid rows
    sensitive: pd.DataFrame | None = None



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
    if not label_columns:
        df = _target_as_people_write_it(df, target, config.task, source)
    missing = df[target].isna()
    if missing.all() and not label_columns and config.task != "multilabel":
        raise TargetError(f"target '{target}' is empty in {source}: every row is missing. Fix: choose another target column.", target)
    fairness = config.fairness
    if fairness.enabled:
        from takeoff.evaluation.fairness import check_sensitive

        check_sensitive(df, fairness, target, source)
    audit_only = [] if fairness.keep_as_features else [c for c in fairness.sensitive if c not in config.drop]
    if audit_only:
        log.info("sensitive column(s) %s: used for the fairness audit only, not as features "
                 "(fairness.keep_as_features: true keeps them)", ", ".join(audit_only))
    schema = infer_schema(df, target, list(config.drop) + label_columns + audit_only)
    task = infer_task(df[target], target, "multilabel" if label_columns else config.task, config.positive_label)
    if task.is_multilabel:
        missing = pd.Series(False, index=df.index)  # a row without a label has the empty label set
        task.columns = label_columns
        task = _enough_per_label(df[target], task, config)
    if fairness.mitigate != "none":
        from takeoff.evaluation.fairness import check_mitigation

        check_mitigation(fairness, task)
    log.info(
        "task: %s on '%s'%s; %d feature columns",
        task.kind, target, f" ({'labels' if task.is_multilabel else 'classes'} {preview(task.classes)})"
        if task.classes else "", len(schema.features),
    )
    # the feature pipeline decodes every image anyway and lists the ones that fail: the checks
    # need not decode them first (they still hash and probe each file)
    checks = config.checks.model_copy(update={"verify_images": 0}) if schema.names(Kind.IMAGE) else config.checks
    pii, redactor, df = _personal_data(df, schema, [target, *label_columns], config)
    findings = run_checks(df, schema, target, task, checks)
    findings += _pii_findings(pii, redactor)
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
    from takeoff.data.profile import profile_frame

    profile = profile_frame(frame.iloc[train_idx], schema)
    return Prepared(
        schema=schema,
        task=task,
        pipeline=pipeline,
        train=Dataset(features.take(train_idx), y[train_idx]),
        valid=Dataset(features.take(valid_idx), y[valid_idx]),
        findings=findings,
        rows_dropped=int(len(df) - len(rows)) + len(unreadable),
        sensitive=(rows[list(fairness.sensitive)].iloc[np.concatenate([train_idx, valid_idx])].reset_index(drop=True)
                   if fairness.enabled else None),
        pii=pii,
        redactor=redactor,
        profile=profile,
    )


def _target_as_people_write_it(df: pd.DataFrame, target: str, task: str | None, source: str) -> pd.DataFrame:
    """The target column as the run learns it: numbers with a few placeholder cells (``?``,
    ``-``) are numbers with those cells missing (the rows are dropped: counted and said);
    an ID-like target (a different value on every row) is refused in one sentence."""
    y = df[target]
    if task in (None, "regression"):
        found = numbers_with_placeholders(y)
        if found is not None:
            numbers, seen = found
            if task == "regression" or infer_task(numbers, target).kind == "regression":
                shown = ", ".join(f"{value!r} ({count} row{'s' if count > 1 else ''})" for value, count in seen.items())
                log.warning("target '%s': %d row(s) hold a value that is not a number: %s; they are treated as "
                            "missing and dropped", target, sum(seen.values()), shown)
                return df.assign(**{target: numbers})
    if task is None and y.notna().sum() >= 20 and looks_like_id(y.dropna()):
        raise TargetError(f"target '{target}' in {source} looks like an ID (a different value on every row), so "
                          "there is nothing to learn. Fix: pass the column to predict with --target.", column=target)
    return df


def _personal_data(df: pd.DataFrame, schema: Schema, target: list[str], config) -> tuple[list, Any, pd.DataFrame]:
    """Scan the text and category columns (not dropped, not the target) for personal data;
    with ``pii.redact``, fit the redactor and redact the table (checks, features and the
    bundle then only see the type tokens).

    Raises:
        TargetError: the target is among the columns to redact; ConfigError: an unknown kind or column.
    """
    from takeoff.data.pii import Redactor, scan

    params = config.pii
    strings = _string_columns(schema)
    columns = [c for c in strings if c not in target]
    redactor = Redactor.fit(params, strings + [t for t in target if t in df.columns], target)
    pii = scan(df, columns, region=params.region, sample_rows=params.scan_rows, seed=config.seed)
    if redactor is not None:
        df = redactor.apply(df)
        log.info("redacted %s in column(s) %s", ", ".join(redactor.kinds), preview(redactor.columns))
    return pii, redactor, df


def _string_columns(schema: Schema) -> list[str]:
    """The columns personal data is looked for in: text, categories and identifiers (not the
    target, not dropped columns, not numbers or dates)."""
    return [c.name for c in schema.columns if c.kind in (Kind.TEXT, Kind.CATEGORICAL, Kind.IDENTIFIER)]


def _pii_findings(pii: list, redactor) -> list:
    from takeoff.data.pii import findings_of

    found = findings_of(pii, redactor.kinds if redactor is not None else ())
    for finding in found:
        if finding.severity == "warning":
            log.warning("%s", finding)
    return found


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


def inspect_table(df: pd.DataFrame, config, source: str) -> dict[str, Any]:
    """The inferred schema, task and data findings of a table, as a JSON-ready dict."""
    from takeoff.data.checks import run_checks

    task = None
    target, label_columns = split_target(config.target, [str(c) for c in df.columns])
    if target is not None:
        require_columns(df, label_columns or [target], source, role="label column" if label_columns else "target column")
        if label_columns:  # several 0/1 columns: one multilabel target of their label sets
            df = df.assign(**{target: combine_label_columns(df, label_columns, target)})
        task = infer_task(df[target], target, "multilabel" if label_columns else config.task, config.positive_label)
        task.columns = label_columns
    schema = infer_schema(df, target, list(config.drop) + label_columns)
    findings = run_checks(df, schema, target, task, config.checks)
    from takeoff.data.pii import findings_of, scan

    pii = scan(df, _string_columns(schema), region=config.pii.region, sample_rows=config.pii.scan_rows, seed=config.seed)
    findings += findings_of(pii)
    return {
        "source": source,
        "rows": int(len(df)),
        "columns": schema.to_json(),
        "target": target,
        "task": task.to_json() if task else None,
        "findings": [f.to_json() for f in findings],
        "pii": [f.to_json() for f in pii],
    }
