"""How numbers, durations and names look in the HTML reports, and the "model info" tables."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ACRONYMS = {"roc": "ROC", "auc": "AUC", "pr": "PR", "rmse": "RMSE", "mae": "MAE", "f1": "F1",
            "r2": "R²", "cpu": "CPU", "gpu": "GPU", "id": "ID"}


def info_tables(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``info`` as tables for the ``info_tables`` block: top-level scalars form a "Summary"
    table (first); a dict of dicts becomes a wide table with one row per key and one column
    per inner key; a list of dicts, the same with rows numbered from 1; a dict of scalars, a
    two-column table. Half-width tables come before wide ones, so that they pair up.

    Each table is ``{"title", "head" (column names after "Name", or None), "rows" (lists of
    cell texts), "wide"}``; a wide table's value cells are numbers (right-aligned).
    """
    summary, tables = [], []
    for key, value in info.items():
        if (isinstance(value, Sequence) and not isinstance(value, str) and value
                and all(isinstance(v, Mapping) for v in value)):
            value = {str(i + 1): v for i, v in enumerate(value)}
        if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
            columns: list[str] = []
            for row in value.values():
                columns += [c for c in row if c not in columns]
            tables.append({"title": humanize(key), "head": [humanize(c) for c in columns], "wide": True,
                           "rows": [[str(name)] + [fmt_value(c, row.get(c)) for c in columns]
                                    for name, row in value.items()]})
        elif isinstance(value, Mapping):
            tables.append({"title": humanize(key), "head": None, "wide": False,
                           "rows": [[str(k), fmt_value(k, v)] for k, v in value.items()]})
        else:
            summary.append((key, value))
    if summary:
        tables.insert(0, {"title": "Summary", "head": None, "wide": False,
                          "rows": [[humanize(k), fmt_value(k, v)] for k, v in summary]})
    return sorted(tables, key=lambda t: t["wide"])


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool) and math.isfinite(float(value))


def fmt_metric(name: str, value: float) -> str:
    value = float(value)
    if name in ("rmse", "mae"):
        return fmt_number(value)
    return f"{value:.3f}" if abs(value) < 100 else fmt_number(value)


def fmt_number(value: float) -> str:
    a = abs(value)
    if a == 0:
        return "0"
    if a >= 1e6 or a < 1e-3:
        return f"{value:.3e}"
    if a >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def fmt_value(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    lowered = str(key).lower()
    if is_number(value) and (lowered.endswith("_s") or "seconds" in lowered
                              or lowered in ("time", "duration")):
        return fmt_duration(float(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if is_number(value):
        return fmt_number(float(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value("", v) for v in value)
    return str(value)


def fmt_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def humanize(key: Any) -> str:
    text = str(key)
    for suffix in ("_seconds", "_s"):  # the value is shown as a duration
        if text.lower().endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            text += "" if "time" in text.lower() else "_time"
    text = " ".join(ACRONYMS.get(w.lower(), w) for w in text.replace("_", " ").split())
    return text[:1].upper() + text[1:]
