"""Checks of a free-text column: non-strings, empty, very long and repeated texts, mixed scripts."""

from __future__ import annotations

import pandas as pd

from takeoff.data.checks.finding import CheckParams, Finding


def text_findings(series: pd.Series, name: str, params: CheckParams) -> list[Finding]:
    """Free text: values that are not strings, empty and very long texts, repeated texts, and a
    mix of scripts (a rough sign of several languages)."""
    out = []
    present = series.dropna()
    not_text = present[[not isinstance(v, str) for v in present]]
    if len(not_text):
        out.append(Finding("text_not_string", "info", f"{len(not_text)} value(s) are not text (e.g. {not_text.iloc[0]!r}); "
                           "they are read as their text form", "nothing to do, or clean the column at its source",
                           column=name, count=len(not_text)))
    text = present.astype(str)
    lengths = text.str.len()
    empty = int((text.str.strip() == "").sum())
    if empty:
        out.append(Finding("empty_text", "info", f"{empty} text(s) are empty; they are treated as missing text",
                           "nothing to do, or drop those rows if an empty text is a data error", column=name, count=empty))
    long = int((lengths > params.long_text_chars).sum())
    if long:
        out.append(Finding("long_text", "warning", f"{long} text(s) are longer than {params.long_text_chars:,} characters "
                           f"(longest {int(lengths.max()):,}); pretrained encoders truncate them to their first tokens",
                           "nothing to do if the beginning carries the meaning; else split long texts into parts",
                           column=name, count=long))
    repeated = int(text.duplicated().sum())
    if len(text) and repeated / len(text) > 0.05:
        out.append(Finding("duplicate_text", "warning", f"{repeated} text(s) ({repeated / len(text):.0%}) repeat an earlier "
                           "one; the same text in training and validation rows makes the scores look better than they are",
                           "drop exact repeats, or keep them if they are real (e.g. template messages)",
                           column=name, count=repeated))
    sample = text.head(2000)
    scripts = sample.map(_script).value_counts(normalize=True)
    mixed = scripts[(scripts.index != "other") & (scripts > 0.05)]
    if len(mixed) > 1:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in mixed.items())
        out.append(Finding("language_mix", "info", f"texts are written in several scripts ({shares} of a sample)",
                           "the default encoder is English; for several languages set a multilingual encoder "
                           "(models.text-embed.encoder)", column=name))
    return out


def _script(text: str) -> str:
    """The dominant writing system of a text: latin, cyrillic, greek, arabic, hebrew, cjk or other."""
    counts: dict[str, int] = {}
    for ch in text[:500]:
        code = ord(ch)
        if ch.isascii():
            kind = "latin" if ch.isalpha() else None
        elif 0x0400 <= code <= 0x04FF:
            kind = "cyrillic"
        elif 0x0370 <= code <= 0x03FF:
            kind = "greek"
        elif 0x0600 <= code <= 0x06FF:
            kind = "arabic"
        elif 0x0590 <= code <= 0x05FF:
            kind = "hebrew"
        elif 0x3040 <= code <= 0x30FF or 0x4E00 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF:
            kind = "cjk"
        elif ch.isalpha():
            kind = "latin"
        else:
            kind = None
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    return max(counts, key=counts.get) if counts else "other"


