"""Checks of the whole table and of each column: duplicate rows; empty, constant, identifier,
mostly missing and high-cardinality columns (the text and number checks are called from here)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from takeoff.data.checks.finding import CheckParams, Finding, rows_preview
from takeoff.data.checks.numbers import bad_numbers
from takeoff.data.checks.text import text_findings
from takeoff.data.schema import Kind


def duplicates(df: pd.DataFrame) -> list[Finding]:
    try:
        duplicated = df.duplicated(keep="first").to_numpy()
    except TypeError:  # unhashable cells (lists from JSON): skip this check
        return []
    n = int(duplicated.sum())
    if not n:
        return []
    return [
        Finding(
            "duplicates",
            "warning",
            f"{n} row(s) are exact copies of an earlier row (e.g. rows {rows_preview(duplicated, df.index)})",
            "remove them if they are accidental copies: they count twice in training and can "
            "sit in both the training and validation split, flattering the scores; keep them if "
            "repeated rows are real",
            count=n,
        )
    ]


def column_findings(series: pd.Series, column: Any, n_rows: int, params: CheckParams) -> list[Finding]:
    name = column.name
    if column.kind == Kind.EMPTY:
        return [Finding("empty", "info", "has no values; dropped", "nothing to do", column=name)]
    if column.kind == Kind.CONSTANT:
        value = series.dropna().iloc[0]
        return [
            Finding(
                "constant",
                "info",
                f"has one value ({value!r}) in every row with a value; carries no signal, dropped",
                "nothing to do",
                column=name,
            )
        ]
    if column.kind == Kind.IDENTIFIER:
        return [
            Finding(
                "identifier",
                "info",
                "is unique in every row (looks like an identifier); carries no signal, dropped",
                "nothing to do; if it does carry meaning (e.g. a number with a scale), convert "
                "it to that meaning before training",
                column=name,
            )
        ]
    out = []
    if n_rows and column.n_missing / n_rows > params.mostly_missing:
        out.append(
            Finding(
                "mostly_missing",
                "warning",
                f"{column.n_missing / n_rows:.0%} of values are missing ({column.n_missing} of "
                f"{n_rows} rows)",
                "missing values are imputed during training; fill the column from its source if "
                "you can, or drop it if the gaps carry no information",
                column=name,
                count=column.n_missing,
            )
        )
    if column.kind == Kind.CATEGORICAL and column.n_unique > params.high_cardinality:
        out.append(
            Finding(
                "high_cardinality",
                "warning",
                f"has {column.n_unique} distinct values (more than {params.high_cardinality}); "
                "only the most frequent are kept as categories, the rest share one 'other' code",
                "group rare values into broader ones, or drop the column if it is an identifier "
                "or free text",
                column=name,
                count=column.n_unique,
            )
        )
    if column.kind == Kind.NUMERIC and column.bad_values > 0:
        out += bad_numbers(series, name)
    if column.kind == Kind.TEXT:
        out += text_findings(series, name, params)
    return out

