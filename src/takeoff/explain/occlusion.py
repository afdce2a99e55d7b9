"""Occlusion: what the output loses when part of a row is taken away.

* Column occlusion (the fallback for families without a dedicated method: tfidf,
  text-embed, text-finetune): attribution = output(row) - output(row with the column
  missing), "missing" being what the pipeline does with an empty cell (the training median,
  code 0, an empty text).
  An image column is replaced by a uniform grey image (an image cannot be missing).
* Word occlusion (token attributions of text columns, every family): attribution =
  output(row) - output(row with that word removed), for each of the first ``max_words`` words
  (whitespace-separated) of the text; all variants are predicted in one batch.

Both are computed from each blend member's outputs, so the model's attribution is exactly the
weighted sum of the members'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from takeoff.explain.rows import Rows, pick, predict_members

WORD = re.compile(r"\S+")
GREY = np.full((8, 8), 128, dtype=np.uint8)  # what an occluded image column is replaced by


def column_occlusion(model, rows: Rows, columns: Sequence[str]) -> list[np.ndarray]:
    """Per blend member, the column occlusion of every row: (n, len(columns))."""
    key = "column_occlusion"
    if key not in rows.cache:
        n, k = len(rows), len(columns)
        variants = rows.frame.iloc[np.repeat(np.arange(n), k)].reset_index(drop=True)
        for j, column in enumerate(columns):
            at, position = np.arange(j, n * k, k), variants.columns.get_loc(column)
            if column in model.pipeline.images:  # an image cannot be missing at predict time: a grey one
                variants.iloc[at, position] = pd.Series([GREY] * len(at), dtype=object).to_numpy()
            else:
                variants.iloc[at, position] = None  # row i, column j missing
        outputs = predict_members(model, model.pipeline.transform(variants))
        classes = None if rows.classes is None else np.repeat(rows.classes, k)
        rows.cache[key] = [
            (pick(full, rows.classes)[:, None] - pick(out, classes).reshape(n, k))
            for full, out in zip(rows.member_outputs, outputs)
        ]
    return rows.cache[key]


@dataclass
class Words:
    """The words of one text of one row, and their occlusion attributions.

    Attributes:
        words: the first ``max_words`` words; rest: the text after them ("" when none).
        members: per blend member, the attribution of each word (len(words),).
        values: the model's attribution of each word (the members' weighted sum).
    """

    words: list[str]
    rest: str
    members: list[np.ndarray]
    values: np.ndarray


def word_occlusion(model, rows: Rows, text_columns: Sequence[str], max_words: int) -> dict[tuple[int, str], Words]:
    """Word attributions of each text column of each row: {(row, column): Words}."""
    parts, keys = [], []
    for column in text_columns:
        position = rows.frame.columns.get_loc(column)
        for i, text in enumerate(rows.frame[column].tolist()):
            if not isinstance(text, str) or not text.strip():
                continue
            spans = [m.span() for m in WORD.finditer(text)]
            kept = spans[:max_words]
            variants = rows.frame.iloc[np.full(len(kept), i)].reset_index(drop=True)
            variants.iloc[:, position] = [text[:a] + text[b:] for a, b in kept]  # one word removed each
            parts.append(variants)
            rest = text[spans[max_words][0]:] if len(spans) > max_words else ""
            keys.append((i, column, [text[a:b] for a, b in kept], rest))
    if not parts:
        return {}
    frame = pd.concat(parts, ignore_index=True)
    owners = np.concatenate([np.full(len(words), i) for i, _, words, _ in keys])  # the row of each variant
    classes = None if rows.classes is None else rows.classes[owners]
    # per member: output(row) - output(row without the word), one entry per variant
    changes = [pick(full, rows.classes)[owners] - pick(variant, classes)
               for full, variant in zip(rows.member_outputs, predict_members(model, model.pipeline.transform(frame)))]
    out, start = {}, 0
    for i, column, words, rest in keys:
        stop = start + len(words)
        members = [change[start:stop] for change in changes]
        values = sum(w * m for w, m in zip(model.blend.weights, members))
        out[(i, column)] = Words(words, rest, members, np.asarray(values, dtype=np.float64))
        start = stop
    return out
