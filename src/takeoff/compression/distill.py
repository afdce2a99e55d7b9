"""Knowledge distillation: a student family trained on a teacher bundle's outputs.

The student learns the teacher's probabilities, not just its labels: each row appears once per
class the teacher gives at least ``MIN_PROB`` to, weighted by that probability, so that any
family trained with a (weighted) log loss — LightGBM, the MLP, the linear text models —
minimises the cross-entropy to the teacher's soft labels. Regression students learn the
teacher's values. Extra unlabeled rows, labelled by the teacher, widen what the student sees.
The student reuses the teacher's feature pipeline, so the bundle's inputs do not change.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from takeoff.errors import BudgetError

log = logging.getLogger("takeoff")

MIN_PROB = 0.01
STUDENT_VALID = 0.1


def soft_dataset(X, teacher_out: np.ndarray, classification: bool):
    """Rows repeated per likely class with the teacher's probability as weight (classification),
    or the teacher's values as the target (regression)."""
    from takeoff.models.base import Dataset

    if not classification:
        return Dataset(X, np.asarray(teacher_out, dtype=np.float64))
    probs = np.asarray(teacher_out, dtype=np.float64)
    keep = probs >= MIN_PROB
    keep[np.arange(len(probs)), probs.argmax(axis=1)] = True  # every row keeps its top class
    probs = np.where(keep, probs, 0.0)
    probs /= probs.sum(axis=1, keepdims=True)
    rows, classes = np.nonzero(keep)
    return Dataset(X.take(rows), classes.astype(np.int64), probs[rows, classes])


def distill(teacher, family: str, rows, extra: pd.DataFrame | None, deadline: float, seed: int):
    """Train ``family`` on ``teacher``'s outputs for the fitting rows (+ ``extra``).

    Returns:
        (student Model, step info for the report)
    """
    from takeoff import registry
    from takeoff.api import Model
    from takeoff.features.block import Features
    from takeoff.models.blend import Blend
    from takeoff.training.context import FitContext

    started = time.monotonic()
    task = teacher.task
    cls = registry.get(family)
    config = teacher.manifest.get("config", {})
    params = dict(config.get("models", {}).get(family, {}))
    X, _ = teacher.features(rows.fit, where="the fitting rows")
    n_labelled = len(X)
    if extra is not None and len(extra):
        X_extra, _ = teacher.features(extra.drop(columns=[task.target], errors="ignore"), where="the unlabeled rows")
        X = Features.concat([X, X_extra])
    log.info("distill: labelling %d rows with the teacher", len(X))
    outputs = teacher.predict_features(X)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n_valid = max(1, int(len(X) * STUDENT_VALID))
    valid_idx, train_idx = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    classification = task.is_classification
    train = soft_dataset(X.take(train_idx), outputs[train_idx], classification)
    valid = soft_dataset(X.take(valid_idx), outputs[valid_idx], classification)
    student = cls(task, params)
    ctx = FitContext(deadline=deadline, seed=seed, device=config.get("device", "auto"), warn=log.warning)
    log.info("distill: training %s on %d teacher-labelled rows (up to %.0fs)", family, len(train_idx), ctx.remaining())
    report = student.fit(train, valid, ctx)
    if report.stopped_by == "time_budget" and report.best_iteration in (None, 0):
        raise BudgetError(f"the student '{family}' could not be trained in the time budget. Fix: raise --time-budget.")
    student_valid = student.predict(X.take(valid_idx))
    if classification:
        agreement = float(np.mean(student_valid.argmax(axis=1) == outputs[valid_idx].argmax(axis=1)))
        fidelity = {"agreement": agreement}
    else:
        fidelity = {"rmse_to_teacher": float(np.sqrt(np.mean((student_valid - outputs[valid_idx]) ** 2)))}
    manifest = copy.deepcopy(teacher.manifest)
    manifest["members"] = [{"family": family, "dir": f"members/{family}", "weight": 1.0,
                            "params": student.params.model_dump(mode="json")}]
    manifest["distilled_from"] = {"members": teacher.manifest.get("members", []), "version": teacher.version}
    manifest.pop("member_scores", None)
    model = Model(manifest, teacher.schema, task, teacher.pipeline, Blend([student], [1.0]))
    model.redactor = teacher.redactor  # the same personal-data redaction before the features
    info: dict[str, Any] = {
        "step": "distill",
        "student": family,
        "teacher": [m["family"] for m in teacher.manifest.get("members", [])],
        "rows": n_labelled,
        "unlabeled_rows": len(X) - n_labelled,
        "seconds": round(time.monotonic() - started, 2),
        "stopped_by": report.stopped_by,
        **fidelity,
    }
    log.info("distill: %s", ", ".join(f"{k} {v}" for k, v in info.items() if k != "step"))
    return model, info
