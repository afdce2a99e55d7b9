"""Run every data check on a table and sort the findings by severity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from takeoff.data.checks.finding import SEVERITIES, CheckParams, Finding
from takeoff.data.checks.images import image_findings
from takeoff.data.checks.leakage import leakage
from takeoff.data.checks.table import column_findings, duplicates
from takeoff.data.checks.target import class_balance, label_balance, missing_target
from takeoff.data.schema import Kind, Schema, Task, require_columns


def run_checks(
    df: pd.DataFrame,
    schema: Schema,
    target: str | None,
    task: Task | None,
    params: CheckParams | None = None,
) -> list[Finding]:
    """Check a raw table and return the findings, errors first, then warnings, then info.

    Args:
        df: the table as read, target column included when ``target`` is given.
        schema: ``infer_schema(df, target)``.
        target: the target column, or None (then only the target-free checks run).
        task: ``infer_task(df[target], target)``, or None.
        params: thresholds; defaults to ``CheckParams()``.

    Returns:
        The findings, sorted by severity (stable within a severity).

    Example:
        >>> df = read_table("credit_risk.csv")
        >>> schema = infer_schema(df, "Status")
        >>> findings = run_checks(df, schema, "Status", infer_task(df["Status"], "Status"))
        >>> [str(f) for f in findings if f.severity == "error"]
        []
    """
    params = params or CheckParams()
    columns = {str(c): c for c in df.columns}
    findings: list[Finding] = []
    if target is not None:
        require_columns(df, [target], "the data", role="target")
        y = df[target]
        if task is None or not task.is_multilabel:  # a multilabel row without labels has the empty set
            findings += missing_target(y, target)
        if task is not None:
            if task.is_classification:
                findings += class_balance(y, task, params)
            if task.is_multilabel:
                findings += label_balance(y, task, params)
                y = pd.Series(np.zeros(len(y)), index=y.index)  # every row has a (possibly empty) label set
            findings += leakage(df, columns, schema, y, task, params)
    findings += duplicates(df)
    for column in schema.columns:
        series = df[columns[column.name]]
        findings += column_findings(series, column, len(df), params)
        if column.kind == Kind.IMAGE:
            labels = df[columns[target]] if target is not None and task is not None and task.is_classification else None
            findings += image_findings(series, column.name, params, labels)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: order.get(f.severity, len(order)))

