"""How a CSV file is written: its delimiter, quote character and decimal mark, guessed from a
sample of its first lines unless given.

A European spreadsheet exports ``;``-separated values with ``,`` decimals (``1,5``); a
database dump may use ``|`` or tabs. Each candidate delimiter splits the sample with Python's
``csv`` reader, and the one giving the same number of fields (more than one) on most lines wins;
``,`` wins ties. The decimal mark is ``,`` when the sample's numbers are written ``1,5`` (or
``1.234,5``) and never ``1.5``. A decision other than ``,`` and ``.`` is logged in one line.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from typing import Any

from takeoff.data.sources.source import Source
from takeoff.errors import DataSourceError

log = logging.getLogger("takeoff")

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 64 * 1024
SAMPLE_LINES = 200
NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'", ".": "'.'"}
_COMMA_DECIMAL = re.compile(r"[+-]?\d+,\d+")
_DOT_THOUSANDS = re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d+)?")  # 1.234 or 1.234,5
_DOT_DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?")
ALIASES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def check_sep(sep: str | None, decimal: str | None, name: str) -> tuple[str | None, str | None]:
    """The options as given (``tab`` and ``\\t`` mean a tab), checked.

    Raises:
        DataSourceError: a delimiter or decimal mark that is not one character, or the same one.
    """
    if sep is not None:
        sep = ALIASES.get(sep.lower(), sep)
        if len(sep) != 1 or sep in "\r\n\"":
            raise DataSourceError(name, f"sep={sep!r} is not one character", fix="pass one character such as ';' or "
                                  "'|', or 'tab'")
    if decimal is not None:
        if decimal not in (".", ","):
            raise DataSourceError(name, f"decimal={decimal!r} is not a decimal mark", fix="pass '.' or ','")
        if decimal == sep:
            raise DataSourceError(name, f"sep and decimal are both {sep!r}", fix="pass another delimiter with sep=")
    return sep, decimal


def sniff(src: Source, head: bytes) -> None:
    """Fill ``src.sep``, ``src.decimal``, ``src.quotechar`` and ``src.thousands`` from the
    file's first bytes ``head``, where they were not given; log a decision that is not ``,`` / ``.``."""
    text = head.decode(src.encoding or "utf-8", errors="replace").lstrip("\ufeff")
    if len(head) >= SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]  # no cut-off last line
    lines = text.splitlines()[:SAMPLE_LINES]
    detected = []
    if src.sep is None:
        src.sep = "\t" if src.fmt == "tsv" else _delimiter(lines)
        if src.sep != ("\t" if src.fmt == "tsv" else ","):
            detected.append(f"sep {NAMES.get(src.sep, repr(src.sep))}")
    if src.quotechar is None:
        src.quotechar = _quotechar(text, src.sep)
        if src.quotechar != '"':
            detected.append(f"quotes {src.quotechar!r}")
    rows = list(csv.reader(lines[1:], delimiter=src.sep, quotechar=src.quotechar))
    if src.decimal is None:
        src.decimal, src.thousands = _decimal(rows, src.sep)
        if src.decimal != ".":
            detected.append(f"decimal mark {NAMES.get(src.decimal, repr(src.decimal))}"
                            + (" (thousands '.')" if src.thousands else ""))
    if detected:
        log.info("%s: read with %s (detected from its first lines; --sep and --decimal choose)", src.name,
                 ", ".join(detected))


def _delimiter(lines: list[str]) -> str:
    """The candidate that splits most lines into the same number (> 1) of fields as the header."""
    best, best_score = ",", (0.0, 0)
    for sep in DELIMITERS:
        counts = [len(r) for r in csv.reader(lines, delimiter=sep) if r]
        if not counts or counts[0] < 2:
            continue
        share = sum(c == counts[0] for c in counts) / len(counts)
        score = (round(share, 2), counts[0])
        if score > best_score:
            best, best_score = sep, score
    return best


def _quotechar(text: str, sep: str) -> str:
    try:
        dialect = csv.Sniffer().sniff(text[:SAMPLE_BYTES // 4], delimiters=sep)
    except csv.Error:
        return '"'
    return dialect.quotechar if dialect.quotechar in ('"', "'") and text.count(dialect.quotechar) > 1 else '"'


def _decimal(rows: list[list[str]], sep: str) -> tuple[str, str | None]:
    """(decimal mark, thousands separator or None) from the fields of the sample rows."""
    if sep == ",":
        return ".", None  # a ',' decimal in a ','-separated file would have to be quoted: not guessed
    seen: Counter[str] = Counter()
    for row in rows:
        for field in row:
            value = field.strip()
            if _COMMA_DECIMAL.fullmatch(value):
                seen["comma"] += 1
            elif _DOT_THOUSANDS.fullmatch(value) and "," in value:
                seen["comma"] += 1
                seen["thousands"] += 1
            elif _DOT_DECIMAL.fullmatch(value):
                seen["dot"] += 1
    if seen["comma"] and not seen["dot"]:
        return ",", "." if seen["thousands"] else None
    return ".", None


def options(src: Source) -> dict[str, Any]:
    """pandas ``read_csv`` arguments of a sniffed (or told) source."""
    out: dict[str, Any] = {"sep": src.sep or ("\t" if src.fmt == "tsv" else ","), "decimal": src.decimal or ".",
                           "quotechar": src.quotechar or '"'}
    if src.thousands:
        out["thousands"] = src.thousands
    return out
