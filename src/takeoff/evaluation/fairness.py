"""Fairness audit: per-group metrics with fairlearn's ``MetricFrame``, demographic parity and
equalised odds (differences and ratios), and the four-fifths warning.

The audit runs on the predictions a run was judged by (out-of-fold or validation rows), for
each sensitive column on its own. Sensitive columns are audit-only by default: they are left
out of the features (``fairness.keep_as_features`` keeps them), so the model does not use
them directly (it may still learn them through correlated columns; the audit is what shows
that).

Post-processing (``fairness.mitigate: threshold``) lives in :mod:`takeoff.evaluation.mitigation`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from takeoff.data.schema import Task
from takeoff.errors import DataError, MissingDependencyError

log = logging.getLogger("takeoff")

MISSING_GROUP = "(missing)"
SMALL_GROUP = 30  # a group with fewer rows gets its numbers flagged as unsteady


class FairnessParams(BaseModel):
    """Fairness audit and mitigation (binary tasks get the full audit)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    sensitive: list[str] = Field(
        default_factory=list, description="Columns to audit the model's predictions by (e.g. sex, age_band); "
        "left out of the features unless keep_as_features.")
    keep_as_features: bool = Field(
        False, description="Also train on the sensitive columns (default: they are used for the audit only).")
    max_groups: int = Field(
        20, ge=2, le=1000, description="Most distinct values a sensitive column may have (bin numbers into bands first).")
    min_ratio: float = Field(
        0.8, gt=0, le=1, description="Warn when a demographic-parity or equalised-odds ratio falls below this "
        "(the four-fifths rule).")
    mitigate: Literal["none", "threshold"] = Field(
        "none", description="Binary: 'threshold' fits fairlearn's ThresholdOptimizer on the validation predictions "
        "(one randomised threshold per group), stored in the bundle and applied at predict time.")
    constraint: Literal["demographic_parity", "equalized_odds", "true_positive_rate_parity",
                        "false_positive_rate_parity"] = Field(
        "demographic_parity", description="What the threshold mitigation equalises across groups.")
    objective: Literal["accuracy_score", "balanced_accuracy_score"] = Field(
        "balanced_accuracy_score", description="What the threshold mitigation maximises under its constraint.")

    @property
    def enabled(self) -> bool:
        return bool(self.sensitive)


def require_fairlearn():
    try:
        import fairlearn.metrics as metrics
    except ImportError:
        raise MissingDependencyError("fairlearn", "the fairness audit (--sensitive)", extra="train") from None
    return metrics


def group_keys(frame: pd.DataFrame, columns: list[str] | None = None) -> np.ndarray:
    """One string per row naming its group: the value of one column, or the values of several
    joined by ','; a missing value is ``(missing)``."""
    columns = list(frame.columns) if columns is None else columns
    parts = [frame[c].astype(object).where(frame[c].notna(), MISSING_GROUP).map(_text) for c in columns]
    if len(parts) == 1:
        return parts[0].to_numpy(dtype=object)
    return pd.concat(parts, axis=1).agg(",".join, axis=1).to_numpy(dtype=object)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_sensitive(frame: pd.DataFrame, params: FairnessParams, target: str, source: str) -> None:
    """Refuse sensitive columns that cannot be audited.

    Raises:
        ColumnNotFoundError: a column is not in the table.
        DataError: a column is the target, has one group, or more than ``max_groups``.
    """
    from takeoff.data.schema import require_columns

    require_columns(frame, params.sensitive, source, role="sensitive column")
    for column in params.sensitive:
        if column == target:
            raise DataError(f"sensitive column '{column}' is the target; audit by another column. Fix: pass "
                            "--sensitive with the column describing the groups (e.g. sex, age_band).", column=column)
        n = int(frame[column].astype(object).where(frame[column].notna(), MISSING_GROUP).map(_text).nunique())
        if n < 2:
            raise DataError(f"sensitive column '{column}' has a single group in {source}; a fairness audit compares "
                            "at least 2. Fix: choose a column with several groups.", column=column)
        if n > params.max_groups:
            raise DataError(f"sensitive column '{column}' has {n} distinct values; the audit allows at most "
                            f"{params.max_groups} groups. Fix: bin it into bands first (e.g. age → age_band), or "
                            f"raise fairness.max_groups.", column=column)


def audit(task: Task, y: np.ndarray, outputs: np.ndarray, codes: np.ndarray | None, sensitive: pd.DataFrame,
          params: FairnessParams, metric: str | None = None) -> dict[str, Any]:
    """The manifest's ``fairness`` entry.

    Args:
        task: the task audited.
        y: true class codes (classification) or values (regression), (n,).
        outputs: the model's outputs on those rows (probabilities (n, k) or values (n,)).
        codes: predicted class codes (n,) after the decision rule (classification), else None.
        sensitive: the sensitive columns' values for the same rows, in the same order.
        params: the audit's settings.
        metric: the run's metric, also computed per group where it applies.

    Returns:
        ``{"sensitive", "rows", "groups": {column: [per-group records]}, "differences":
        {column: {...}}, "ratios": {column: {...}}, "warnings": [...]}``.
    """
    fm = require_fairlearn()
    groups, differences, ratios, warnings = {}, {}, {}, []
    for column in sensitive.columns:
        keys = group_keys(sensitive, [column])
        frame = _metric_frame(fm, task, y, outputs, codes, keys, metric)
        records = []
        for group, row in frame.by_group.iterrows():
            record = {"group": str(group)}
            record.update({k: _float(v) for k, v in row.items()})
            records.append(record)
            if record["count"] < SMALL_GROUP:
                warnings.append(f"'{column}' = {group}: only {int(record['count'])} rows scored; its numbers are unsteady")
        groups[column] = records
        if task.kind == "binary":
            differences[column] = {
                "demographic_parity": _float(fm.demographic_parity_difference(y, codes, sensitive_features=keys)),
                "equalized_odds": _float(fm.equalized_odds_difference(y, codes, sensitive_features=keys)),
            }
            ratios[column] = {
                "demographic_parity": _float(fm.demographic_parity_ratio(y, codes, sensitive_features=keys)),
                "equalized_odds": _float(fm.equalized_odds_ratio(y, codes, sensitive_features=keys)),
            }
            for name, value in ratios[column].items():
                if value is not None and value < params.min_ratio:
                    warnings.append(
                        f"'{column}': {name.replace('_', ' ')} ratio {value:.2f} is below {params.min_ratio:g} "
                        f"(the four-fifths rule): {_worst(records, name)}")
        else:
            differences[column] = {k: _float(v) for k, v in frame.difference().items() if k != "count"}
    return {
        "sensitive": list(sensitive.columns),
        "rows": int(len(y)),
        "used_as_features": params.keep_as_features,
        "groups": groups,
        "differences": differences,
        "ratios": ratios,
        "warnings": warnings,
    }


def _metric_frame(fm, task: Task, y, outputs, codes, keys, metric):
    import sklearn.metrics as skm

    if task.kind == "binary":
        scores = np.asarray(outputs)[:, 1] if np.ndim(outputs) == 2 else np.asarray(outputs)
        frame = fm.MetricFrame(
            metrics={"count": fm.count, "selection_rate": fm.selection_rate, "true_positive_rate": fm.true_positive_rate,
                     "false_positive_rate": fm.false_positive_rate, "accuracy": skm.accuracy_score,
                     "balanced_accuracy": skm.balanced_accuracy_score},
            y_true=y, y_pred=codes, sensitive_features=keys)
        if metric in (None, "roc_auc"):  # ranking quality needs the scores, not the labels
            auc = fm.MetricFrame(metrics={"roc_auc": _safe_auc}, y_true=y, y_pred=scores, sensitive_features=keys)
            frame = _Joined(frame, auc)
        return frame
    if task.kind == "multiclass":
        return fm.MetricFrame(metrics={"count": fm.count, "accuracy": skm.accuracy_score,
                                       "balanced_accuracy": skm.balanced_accuracy_score},
                              y_true=y, y_pred=codes, sensitive_features=keys)
    values = np.asarray(outputs, dtype=np.float64).reshape(len(y))
    return fm.MetricFrame(metrics={"count": fm.count, "mae": skm.mean_absolute_error,
                                   "rmse": _rmse, "mean_prediction": _mean_prediction},
                          y_true=np.asarray(y, dtype=np.float64), y_pred=values, sensitive_features=keys)


class _Joined:
    """Two MetricFrames over the same groups, read as one (labels and scores)."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    @property
    def by_group(self) -> pd.DataFrame:
        return pd.concat([self.a.by_group, self.b.by_group], axis=1)


def _safe_auc(y_true, y_score) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return float("nan")  # one class in the group: no ranking to judge
    return float(roc_auc_score(y_true, y_score))


def _rmse(y_true, y_pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)))


def _mean_prediction(y_true, y_pred) -> float:
    return float(np.mean(y_pred))


def _float(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _worst(records: list[dict[str, Any]], name: str) -> str:
    """Which groups are furthest apart on the rate behind ``name`` (for equalised odds, the
    true- or false-positive rate, whichever has the smaller ratio)."""
    rates = ["selection_rate"] if name == "demographic_parity" else ["true_positive_rate", "false_positive_rate"]
    found = []
    for rate in rates:
        known = [r for r in records if r.get(rate) is not None]
        if len(known) < 2:
            continue
        low, high = min(known, key=lambda r: r[rate]), max(known, key=lambda r: r[rate])
        ratio = low[rate] / high[rate] if high[rate] > 0 else 1.0
        found.append((ratio, f"{rate.replace('_', ' ')} {low[rate]:.2f} for {low['group']} vs {high[rate]:.2f} for "
                             f"{high['group']}"))
    return min(found)[1] if found else ""


def check_mitigation(params: FairnessParams, task: Task) -> None:
    """Refuse a mitigation that cannot apply (before anything is trained).

    Raises:
        ConfigError: no sensitive column, or a task other than binary.
    """
    from takeoff.errors import ConfigError

    if params.mitigate == "none":
        return
    if not params.sensitive:
        raise ConfigError("--mitigate threshold needs the groups: pass --sensitive COLUMN[,COLUMN].")
    if task.kind != "binary":
        raise ConfigError(f"--mitigate threshold applies to binary tasks (one threshold per group); this task is "
                          f"{task.kind}. Fix: drop --mitigate (the audit still runs).")


def audit_run(task: Task, y: np.ndarray, outputs: np.ndarray, threshold: Any, sensitive: pd.DataFrame,
              params: FairnessParams, metric: str | None, seed: int) -> dict[str, Any]:
    """The audit of a run's scored predictions and, with ``mitigate: threshold``, the fitted
    per-group thresholds with their cost (``mitigation``: the rule, and the metrics before
    and after on the same rows)."""
    from takeoff.evaluation.metrics import predicted_codes

    codes = predicted_codes(task, outputs, threshold) if task.is_classification else None
    result = audit(task, y, outputs, codes, sensitive, params, metric)
    if params.mitigate == "threshold" and task.kind == "binary":
        from takeoff.evaluation.mitigation import apply_thresholds, fit_thresholds

        groups = group_keys(sensitive)
        scores = np.asarray(outputs)[:, 1]
        rule, _ = fit_thresholds(y, scores, groups, constraint=params.constraint, objective=params.objective, seed=seed)
        mitigated = apply_thresholds(rule, scores, groups, codes)
        rule["columns"] = list(sensitive.columns)
        rule["cost"] = {"before": _summary(y, codes, groups), "after": _summary(y, mitigated, groups),
                        "rows": int(len(y)), "note": "measured on the rows the thresholds were fitted on"}
        result["mitigation"] = rule
    return result


def _summary(y: np.ndarray, codes: np.ndarray, groups: np.ndarray) -> dict[str, float | None]:
    import sklearn.metrics as skm

    fm = require_fairlearn()
    return {
        "accuracy": _float(skm.accuracy_score(y, codes)),
        "balanced_accuracy": _float(skm.balanced_accuracy_score(y, codes)),
        "f1": _float(skm.f1_score(y, codes, zero_division=0)),
        "selection_rate": _float(np.mean(codes)),
        "demographic_parity_difference": _float(fm.demographic_parity_difference(y, codes, sensitive_features=groups)),
        "demographic_parity_ratio": _float(fm.demographic_parity_ratio(y, codes, sensitive_features=groups)),
        "equalized_odds_difference": _float(fm.equalized_odds_difference(y, codes, sensitive_features=groups)),
        "equalized_odds_ratio": _float(fm.equalized_odds_ratio(y, codes, sensitive_features=groups)),
    }
