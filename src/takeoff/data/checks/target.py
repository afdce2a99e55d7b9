"""Checks of the target alone: missing values, rare and imbalanced classes, rare labels."""

from __future__ import annotations

import pandas as pd

from takeoff.data.checks.finding import CheckParams, Finding, rows_preview
from takeoff.data.schema import Task
from takeoff.errors import preview


def missing_target(y: pd.Series, target: str) -> list[Finding]:
    missing = y.isna().to_numpy()
    n = int(missing.sum())
    if not n:
        return []
    return [
        Finding(
            "missing_target",
            "warning",
            f"{n} row(s) have no value in target '{target}' (e.g. rows {rows_preview(missing, y.index)}); "
            "they are dropped before training",
            "fill in the target for those rows if it is known; otherwise nothing to do",
            column=target,
            count=n,
        )
    ]


_FEW_LABEL_ROWS = 10  # a label on fewer rows is reported (under 2: training refuses it)


def label_balance(y: pd.Series, task: Task, params: CheckParams) -> list[Finding]:
    """Labels of a multilabel target seen on too few rows to learn (or on nearly every row)."""
    from takeoff.data.schema import label_sets

    sets = label_sets(y)
    counts = pd.Series([label for cell in sets for label in cell]).value_counts()
    out = []
    few = max(params.min_class_rows, _FEW_LABEL_ROWS)
    rare = counts[counts < few]
    if len(rare):
        listed = ", ".join(f"'{label}' ({k} row{'s' if k != 1 else ''})" for label, k in rare.items())
        out.append(Finding(
            "rare_label", "warning" if rare.min() >= 2 else "error",
            f"label(s) of target '{task.target}' on fewer than {few} rows: {listed}; "
            "a model cannot learn a label from so few examples, and its validation score is noise",
            "collect more rows with those labels, merge them into similar labels, or set drop_rare_classes: true "
            "(labels on fewer than 2 rows are dropped then)",
            column=task.target, count=len(rare),
        ))
    empty = sum(1 for cell in sets if not cell)
    if empty:
        out.append(Finding(
            "no_label", "info",
            f"{empty} of {len(sets)} row(s) of target '{task.target}' have no label (an empty label set); "
            "they teach the model when to predict none",
            "nothing to do if 'no label' is a real answer; otherwise fill those rows in",
            column=task.target, count=empty,
        ))
    return out


def class_balance(y: pd.Series, task: Task, params: CheckParams) -> list[Finding]:
    counts = y.dropna().value_counts()
    if len(counts) < 2:
        return []
    out = []
    rare = counts[counts < params.min_class_rows]
    if len(rare):
        listed = ", ".join(f"'{label}' ({k} row{'s' if k != 1 else ''})" for label, k in rare.items())
        out.append(
            Finding(
                "rare_class",
                "error",
                f"class(es) of target '{task.target}' with fewer than {params.min_class_rows} "
                f"rows: {listed}; training cannot split such a class between training and "
                "validation (stratified split)",
                f"remove the rows of {preview([repr(str(v)) for v in rare.index])} or merge "
                "them into a similar class",
                column=task.target,
                count=len(rare),
            )
        )
    kept = counts[counts >= params.min_class_rows]
    if len(kept) >= 2:
        small, large = kept.idxmin(), kept.idxmax()
        ratio = kept.min() / kept.max()
        if ratio < params.imbalance_ratio:
            out.append(
                Finding(
                    "imbalance",
                    "warning",
                    f"target '{task.target}' is imbalanced: class '{small}' has {kept.min()} rows "
                    f"and class '{large}' has {kept.max()} (ratio {ratio:.3f} < "
                    f"{params.imbalance_ratio})",
                    "class weights are applied automatically; collecting more rows of class "
                    f"'{small}' helps most, and judge the model by ROC-AUC or F1 rather than accuracy",
                    column=task.target,
                    count=int(kept.min()),
                )
            )
    return out

