"""Personal data in text and categorical columns: find it, report it masked, and redact it.

Kinds found (each a pattern plus a check that throws out look-alikes):

- ``email``: addresses of the form local@domain.tld;
- ``phone``: numbers that Google's libphonenumber (the ``phonenumbers`` package) accepts as
  valid for their region, with their digit grouping checked (so order numbers such as
  ``ORD-2024-558812`` are not phones); numbers without ``+country`` are read in ``region``.
  Without the package, a stricter pattern (``+`` and a country code, or North American
  ``(555) 123-4567`` / ``555-123-4567`` forms) is used;
- ``card``: 13–19 digit payment card numbers that pass the Luhn checksum and start like a
  card network's number (2–6);
- ``iban``: IBANs of a known country's length whose mod-97 checksum is 1;
- ``ip``: IPv4 and IPv6 addresses that :mod:`ipaddress` parses (``v1.2.3.4`` and
  ``version 1.2.3.4`` are version strings, not addresses);
- ``ssn``: US social security numbers ``123-45-6789``, outside the ranges never issued (area
  000, 666 or 900–999, group 00, serial 0000).

Names are not looked for: the libraries that find them (Presidio, spaCy) need a language model
downloaded from a hub, which an offline machine cannot do, and name patterns without one flag
ordinary words.

Finding is fast: one vectorised regular expression per kind selects the cells that may hold a
value, and only those are checked one by one; ``scan`` looks at a seeded sample of rows.

Example:
    >>> scan(pd.DataFrame({"note": ["mail me at ann@example.org"]}))[0].kind
    'email'
    >>> Redactor(["email"], ["note"]).redact_values(["mail me at ann@example.org"])
    ['mail me at <EMAIL>']
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from takeoff.errors import ConfigError, TargetError

KINDS = ("email", "iban", "card", "ssn", "ip", "phone")  # also the priority where matches overlap
TOKENS = {kind: f"<{kind.upper()}>" for kind in KINDS}
FORMAT, VERSION = "takeoff-redaction", 1
REDACTION_FILE = "redaction.json"
MOSTLY = 0.5  # a column whose non-missing values are this often one whole value is proposed for dropping

# ISO 13616 IBAN lengths by country
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

# One pattern per kind finds candidates; the validators below keep the real ones.
PATTERNS = {
    "email": re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"),
    "iban": re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"),
    "card": re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"),
    "ssn": re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])"),
    "ip": re.compile(r"(?<![\w.:])(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w.:])"),
    # without phonenumbers: +country and groups, or North American (555) 123-4567 / 555-123-4567
    "phone": re.compile(r"(?<![\w+-])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
                        r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w-])"),
}
# cheap, vectorised tests that a cell may hold a value of the kind (pandas str.contains)
PREFILTERS = {
    "email": r"@",
    "iban": r"[A-Z]{2}\d{2}",
    "card": r"\d(?:[ -]?\d){12}",
    "ssn": r"\d{3}[- ]\d{2}[- ]\d{4}",
    "ip": r"\d\.\d|:[0-9A-Fa-f]*:",
    "phone": r"\d(?:[ ().-]*\d){6}",
}
VERSION_WORDS = re.compile(r"(?:version|release|build|ver\.?|v)\s*$", re.IGNORECASE)


class PiiParams(BaseModel):
    """Personal data: how it is looked for, and what is redacted before training and serving."""

    model_config = ConfigDict(extra="forbid")

    redact: list[str] = Field(
        default_factory=list, description="Kinds of personal data replaced by a type token (<EMAIL>) before "
        f"training and at prediction time: any of {', '.join(KINDS)}, or 'all'. Empty: none.")
    columns: list[str] = Field(
        default_factory=list, description="Columns redacted; default: every text and categorical column but the target.")
    region: str = Field("US", min_length=2, max_length=2, description="Region of phone numbers written without +country.")
    scan_rows: int = Field(5000, ge=100, description="Rows sampled (fixed seed) to look for personal data.")


@dataclass
class PiiFinding:
    """One kind of personal data in one column: how many sampled rows hold it, two masked examples."""

    column: str
    kind: str
    rows: int  # sampled rows holding at least one value of the kind
    share: float  # ... as a share of the sampled rows
    examples: list[str]  # masked
    mostly: bool  # most non-missing values are one whole value of this kind: propose dropping

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------- validators
def luhn(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(compact: str) -> bool:
    """Whether ``compact`` (no spaces, upper case) is an IBAN: known country length and mod 97 = 1."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _spans_iban(text: str):
    for m in PATTERNS["iban"].finditer(text):
        raw = m.group()
        length = IBAN_LENGTHS.get(raw[:2])
        if length is None:
            continue
        # the IBAN is the first `length` characters of the match that are not spaces (a
        # following upper-case word may have been matched too)
        count, end = 0, 0
        for end, ch in enumerate(raw, 1):
            count += ch != " "
            if count == length:
                break
        if count == length and iban_valid(raw[:end].replace(" ", "")):
            yield m.start(), m.start() + end


def _spans_card(text: str):
    for m in PATTERNS["card"].finditer(text):
        digits = re.sub(r"[ -]", "", m.group())
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn(digits):
            yield m.span()


def _spans_ssn(text: str):
    for m in PATTERNS["ssn"].finditer(text):
        area, group, serial = m.group(1), m.group(3), m.group(4)
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            yield m.span()


def _spans_ip(text: str):
    for m in PATTERNS["ip"].finditer(text):
        value = m.group()
        if ":" in value and (len(value) < 6 or sum(c not in ":" for c in value) < 3):
            continue  # "::", "1:2" and clock times are not worth calling addresses
        try:
            ipaddress.ip_address(value)
        except ValueError:
            continue
        if "." in value and VERSION_WORDS.search(text[max(0, m.start() - 12):m.start()]):
            continue  # "version 1.2.3.4"
        yield m.span()


def _spans_email(text: str):
    for m in PATTERNS["email"].finditer(text):
        local = m.group().split("@", 1)[0]
        if ".." not in m.group() and not local.endswith("."):
            yield m.span()


def _spans_phone(text: str, region: str):
    try:
        import phonenumbers
    except ImportError:  # the stricter pattern alone
        for m in PATTERNS["phone"].finditer(text):
            if 7 <= sum(c.isdigit() for c in m.group()) <= 15:
                yield m.span()
        return
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.STRICT_GROUPING):
        start, end, raw = match.start, match.end, match.raw_string
        # "(+44 20 7946 0958)": the matcher keeps an opening bracket that belongs to the sentence
        if raw.startswith("(") and ")" not in raw:
            start += 1
        yield start, end


def find(text: str, kinds: Sequence[str] = KINDS, region: str = "US") -> list[tuple[int, int, str]]:
    """The personal data in one text: ``(start, end, kind)`` spans, not overlapping, in order.

    Where values of several kinds overlap, the first kind of :data:`KINDS` wins (an IBAN's
    digits are not also a phone number).
    """
    spans: list[tuple[int, int, str]] = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        found = _spans_phone(text, region) if kind == "phone" else _FINDERS[kind](text)
        for start, end in found:
            if not any(start < e and s < end for s, e, _ in spans):
                spans.append((start, end, kind))
    return sorted(spans)


_FINDERS = {"email": _spans_email, "iban": _spans_iban, "card": _spans_card, "ssn": _spans_ssn, "ip": _spans_ip}


SMALL = 1000  # up to this many values, plain Python beats pandas' per-call cost (a request's rows)


@functools.lru_cache(maxsize=64)
def _prefilter(kinds: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(f"(?:{PREFILTERS[k]})" for k in kinds))


def candidates(values: pd.Series | Sequence[Any], kinds: Sequence[str]) -> np.ndarray:
    """A mask of the string values that may hold personal data of ``kinds`` (vectorised on
    long columns; plain Python on the few values of a request)."""
    pattern = _prefilter(tuple(kinds))
    if len(values) <= SMALL:
        return np.array([isinstance(v, str) and pattern.search(v) is not None for v in list(values)], dtype=bool)
    strings = pd.Series(values, dtype=object).astype("string") if not isinstance(values, pd.Series) else values.astype("string")
    return strings.str.contains(pattern.pattern, regex=True, na=False).to_numpy(dtype=bool)


# ---------------------------------------------------------------------- masking
def mask(value: str, kind: str) -> str:
    """A value with most of it hidden: enough to recognise the kind, not the person."""
    if kind == "email":
        local, _, domain = value.partition("@")
        top = domain.rsplit(".", 1)[-1]
        return f"{local[:1]}***@***.{top}"
    if kind == "ip":
        return value.split(".")[0] + ".*.*.*" if "." in value else value.split(":")[0] + ":****:…"
    if kind == "iban":
        compact = value.replace(" ", "")
        return compact[:2] + "**" + " ****" * ((len(compact) - 4) // 4) + " **" + compact[-2:]
    keep = 4 if kind == "card" else 2  # the last digits, as receipts print them
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    hidden = set(digits[:-keep])
    return "".join("*" if i in hidden else c for i, c in enumerate(value))


# ---------------------------------------------------------------------- scanning
def text_columns(df: pd.DataFrame, skip: Iterable[str] = ()) -> list[str]:
    """The columns of ``df`` holding strings (object or string dtype), but ``skip``."""
    skip = {str(s) for s in skip}
    return [str(c) for c in df.columns
            if str(c) not in skip and (df[c].dtype == object or pd.api.types.is_string_dtype(df[c]))]


def scan(df: pd.DataFrame, columns: Sequence[str] | None = None, kinds: Sequence[str] = KINDS,
         region: str = "US", sample_rows: int = 20_000, seed: int = 0) -> list[PiiFinding]:
    """Look for personal data in the string columns of ``df`` (or ``columns``).

    Args:
        df: the table.
        columns: the columns to scan (default: every column of strings).
        kinds: the kinds to look for (default all of :data:`KINDS`).
        region: region of phone numbers written without +country (default "US").
        sample_rows: rows sampled (seeded) when the table is longer (default 20,000).
        seed: the sample's seed.

    Returns:
        One finding per column and kind found, most frequent first.
    """
    if len(df) > sample_rows:
        df = df.sample(sample_rows, random_state=seed)
    out = []
    for column in (columns if columns is not None else text_columns(df)):
        series = df[column]
        present = series.notna().to_numpy()
        if not present.any():
            continue
        # one vectorised test per kind; each cell is then checked for the kinds it may hold only
        strings = series.astype("string")
        may = {k: strings.str.contains(PREFILTERS[k], regex=True, na=False).to_numpy(dtype=bool) for k in kinds}
        maybe = np.logical_or.reduce(list(may.values())) if may else np.zeros(len(series), dtype=bool)
        rows: dict[str, list[int]] = {k: [] for k in kinds}
        whole: dict[str, int] = dict.fromkeys(kinds, 0)
        examples: dict[str, list[str]] = {k: [] for k in kinds}
        raw = series.to_numpy(dtype=object)
        for i in np.flatnonzero(maybe):
            text = str(raw[i])
            spans = find(text, [k for k in kinds if may[k][i]], region)
            for kind in {k for _, _, k in spans}:
                rows[kind].append(i)
            for start, end, kind in spans:
                if len(examples[kind]) < 2 and mask(text[start:end], kind) not in examples[kind]:
                    examples[kind].append(mask(text[start:end], kind))
            stripped = text.strip()
            if len(spans) == 1 and spans[0][1] - spans[0][0] == len(stripped) and text[spans[0][0]:spans[0][1]] == stripped:
                whole[spans[0][2]] += 1
        for kind in kinds:
            if rows[kind]:
                out.append(PiiFinding(str(column), kind, len(rows[kind]), round(len(rows[kind]) / len(df), 4),
                                      examples[kind], whole[kind] >= MOSTLY * int(present.sum())))
    return sorted(out, key=lambda f: -f.share)


def findings_of(pii: Sequence[PiiFinding], redacted: Sequence[str] = ()) -> list:
    """The data-check findings (``personal_data``) of a scan: one warning per column and kind."""
    from takeoff.data.checks.finding import Finding

    out = []
    for f in pii:
        what = f"{f.rows} sampled row(s) ({f.share:.1%}) hold {_NAMES[f.kind]}, e.g. {', '.join(f.examples)}"
        if f.kind in redacted:
            fix = f"redacted as {TOKENS[f.kind]} before training and at prediction time"
            severity = "info"
        elif f.mostly:
            fix = (f"the column is mostly {_NAMES[f.kind]}: drop it (--drop {f.column}); it identifies people "
                   "and carries no general signal")
            severity = "warning"
        else:
            fix = f"replace them with {TOKENS[f.kind]} (--redact-pii {f.kind}), or remove them from the data"
            severity = "warning"
        out.append(Finding("personal_data", severity, what, fix, column=f.column, count=f.rows))
    return out


_NAMES = {"email": "e-mail addresses", "phone": "phone numbers", "card": "payment card numbers",
          "iban": "IBANs", "ip": "IP addresses", "ssn": "US social security numbers"}


# ---------------------------------------------------------------------- redaction
def parse_kinds(kinds: Iterable[str]) -> list[str]:
    """Kinds as given (``"all"``, or names, comma-separated or not) → the list of :data:`KINDS`.

    Raises:
        ConfigError: an unknown kind (names the valid ones).
    """
    from takeoff.errors import closest

    names = [k.strip().lower() for item in kinds for k in str(item).split(",") if k.strip()]
    if "all" in names:
        return list(KINDS)
    for name in names:
        if name not in KINDS:
            guess = closest(name, list(KINDS))
            hint = f" Did you mean '{guess}'?" if guess else ""
            raise ConfigError(f"unknown kind of personal data '{name}' in --redact-pii; the kinds are: "
                              f"{', '.join(KINDS)}, or all.{hint}", path="pii.redact")
    return [k for k in KINDS if k in names]


class Redactor:
    """A fitted preprocessing step: in ``columns``, values of ``kinds`` become type tokens.

    Saved in the bundle as JSON (``redaction.json``) and applied where rows are conformed, at
    training time and on every prediction path, the same way.
    """

    def __init__(self, kinds: Sequence[str], columns: Sequence[str], region: str = "US"):
        self.kinds, self.columns, self.region = list(kinds), list(columns), region

    @classmethod
    def fit(cls, params: PiiParams, string_columns: Sequence[str], target: Sequence[str]) -> Redactor | None:
        """The redactor of ``params`` over a table whose columns of strings are ``string_columns``
        (None when nothing is to be redacted).

        Raises:
            ConfigError: an unknown kind or column; TargetError: the target is among the columns.
        """
        kinds = parse_kinds(params.redact)
        if not kinds:
            return None
        for column in params.columns:
            if column in target:
                raise TargetError(f"column '{column}' is the target; redacting it would change the labels the model "
                                  "learns. Fix: remove it from pii.columns (the target is never redacted).", column)
            if column not in string_columns:
                raise ConfigError(f"pii.columns names '{column}', which is not a column of text or categories; those "
                                  f"are: {', '.join(string_columns) or 'none'}", path="pii.columns")
        columns = list(params.columns) or [c for c in string_columns if c not in target]
        return cls(kinds, columns, params.region)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "kinds": self.kinds, "columns": self.columns, "region": self.region}

    def save(self, directory: Path) -> None:
        from takeoff.bundle import write_json

        write_json(Path(directory) / REDACTION_FILE, self.to_json())

    @classmethod
    def load(cls, directory: Path) -> Redactor | None:
        """The redactor saved in a bundle directory, or None when it has none."""
        from takeoff.bundle import read_spec

        if not (Path(directory) / REDACTION_FILE).is_file():
            return None
        spec = read_spec(Path(directory), REDACTION_FILE, (), FORMAT, (VERSION,), "redaction")
        return cls(spec["kinds"], spec["columns"], spec.get("region", "US"))

    def redact_values(self, values: Sequence[Any]) -> list[Any]:
        """``values`` with each value of the kinds replaced by its token (None and non-strings kept)."""
        out = list(values)
        maybe = candidates(out, self.kinds)
        for i in np.flatnonzero(maybe):
            text = str(out[i])
            spans = find(text, self.kinds, self.region)
            for start, end, kind in reversed(spans):
                text = text[:start] + TOKENS[kind] + text[end:]
            out[i] = text
        return out

    def apply(self, columns):
        """Redact the columns of a DataFrame (a copy) or of a dict of arrays (in place); returns it."""
        if isinstance(columns, pd.DataFrame):
            from takeoff.data.conform import as_strings

            columns = columns.copy()
            for name in self.columns:
                if name in columns.columns:
                    # a category column read as numbers (card numbers as integers) is redacted as
                    # the strings conform makes of it, so training and serving agree
                    values = columns[name] if columns[name].dtype == object else as_strings(columns[name])
                    columns[name] = pd.Series(self.redact_values(values.tolist()), index=columns.index, dtype=object)
            return columns
        for name in self.columns:
            if name in columns and np.asarray(columns[name]).dtype == object:
                array = np.empty(len(columns[name]), dtype=object)
                array[:] = self.redact_values(list(columns[name]))
                columns[name] = array
        return columns
