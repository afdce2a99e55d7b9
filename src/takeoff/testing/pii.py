"""A generated table with known personal data planted in it, mixed with look-alikes (order
numbers, non-Luhn 16-digit numbers, invalid IBANs, version strings, SSNs of ranges never
issued): what the personal-data scanner is measured on (``benchmarks/pii.py``) and tested with.

Example:
    >>> df, planted = planted_table(per_kind=20, seed=0)
    >>> sorted({p["kind"] for p in planted})
    ['card', 'email', 'iban', 'ip', 'phone', 'ssn']
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pandas as pd

from takeoff.data.pii import luhn

FIRST = ["ann", "bob", "carla", "dmitri", "eve", "farah", "gus", "hana", "ivan", "jo", "kemal", "lena"]
LAST = ["smith", "okafor", "nguyen", "garcia", "muller", "rossi", "kowalski", "tanaka", "dubois", "silva"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.co.uk", "example.net", "uni.example.edu"]
US_AREAS = [201, 202, 206, 212, 213, 305, 312, 404, 415, 503, 512, 617, 646, 702, 713, 718, 805, 917]
TEXT = ["Please contact me at {} tomorrow.", "{}", "Ref: {}; thanks", "customer wrote: use {} for the refund",
        "noted {} in the ticket", "New value ({}) confirmed by phone call"]
# IBAN countries: (country, BBAN pattern) with A = upper-case letter, 9 = digit
IBAN_FORMS = [("DE", "999999999999999999"), ("GB", "AAAA99999999999999"), ("FR", "99999999999999999999999"),
              ("NL", "AAAA9999999999"), ("ES", "99999999999999999999"), ("IT", "A9999999999999999999999")]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + _digits(rng, length - len(prefix) - 1)
    return next(body + d for d in "0123456789" if luhn(body + d))


def _group(number: str, rng: random.Random, sizes=(4, 4, 4, 4, 3)) -> str:
    sep = rng.choice(["", " ", "-"])
    if not sep:
        return number
    out, i = [], 0
    for size in sizes:
        if i >= len(number):
            break
        out.append(number[i:i + size])
        i += size
    return sep.join(out)


def email(rng: random.Random) -> str:
    name = rng.choice(FIRST) + rng.choice([".", "_", ""]) + rng.choice(LAST) + rng.choice(["", str(rng.randint(1, 99))])
    return name + rng.choice(["", "+news"]) + "@" + rng.choice(DOMAINS)


def phone(rng: random.Random) -> str:
    area, exchange, line = rng.choice(US_AREAS), rng.randint(200, 999), rng.randint(0, 9999)
    form = rng.randrange(5)
    if form == 0:
        return f"({area}) {exchange}-{line:04d}"
    if form == 1:
        return f"{area}-{exchange}-{line:04d}"
    if form == 2:
        return f"+1 {area} {exchange} {line:04d}"
    if form == 3:
        return f"+44 20 7946 {rng.randint(0, 999):04d}"  # London
    return f"+49 30 {rng.randint(1000000, 9999999)}"  # Berlin


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("6011", 16), ("34", 15), ("37", 15)])
    number = _luhn_complete(prefix, length, rng)
    return _group(number, rng, (4, 6, 5) if length == 15 else (4, 4, 4, 4))


def iban(rng: random.Random) -> str:
    country, form = rng.choice(IBAN_FORMS)
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") if c == "A" else rng.choice("0123456789") for c in form)
    check = 98 - int("".join(str(int(ch, 36)) for ch in bban + country + "00")) % 97
    value = f"{country}{check:02d}{bban}"
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if rng.random() < 0.5 else value


def ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return str(ipaddress.IPv6Address(rng.getrandbits(128)))


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def lookalike(rng: random.Random) -> str:
    """A value a careless scanner would take for personal data."""
    form = rng.randrange(12)
    if form == 0:
        return f"ORD-{rng.randint(2019, 2025)}-{rng.randint(100000, 999999)}"  # order number
    if form == 1:  # a 16-digit number failing the Luhn check
        good = _luhn_complete("4", 16, rng)
        return good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)
    if form == 2:  # an IBAN with a wrong checksum
        value = iban(rng).replace(" ", "")
        return value[:2] + f"{(int(value[2:4]) + rng.randint(1, 50)) % 100:02d}" + value[4:]
    if form == 3:
        return f"version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}"
    if form == 4:
        return f"v{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
    if form == 5:  # an SSN of a range never issued
        return rng.choice(["000", "666", f"9{rng.randint(0, 99):02d}"]) + f"-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    if form == 6:
        return f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"  # a date
    if form == 7:
        return f"#{rng.randint(1000000, 99999999)}"  # invoice number
    if form == 8:
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"  # a time
    if form == 9:
        return f"@{rng.choice(FIRST)}{rng.randint(1, 99)}"  # a handle
    if form == 10:
        return f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    return f"SKU {rng.randint(10, 99)}-{rng.randint(1000, 9999)}-{rng.randint(10, 99)}"


MAKERS = {"email": email, "phone": phone, "card": card, "iban": iban, "ip": ip, "ssn": ssn}


def planted_table(per_kind: int = 200, lookalikes: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """A table with ``per_kind`` planted values of each kind and ``lookalikes`` decoys (default
    as many as one kind), in two string columns (``note``: sentences; ``contact``: bare values)
    and a numeric column and a binary target.

    Returns:
        The table, and the planted values: ``{"row", "column", "kind", "value"}`` each.
    """
    rng = random.Random(seed)
    cells: list[tuple[str | None, str]] = [(kind, make(rng)) for kind, make in MAKERS.items() for _ in range(per_kind)]
    cells += [(None, lookalike(rng)) for _ in range(per_kind if lookalikes is None else lookalikes)]
    rng.shuffle(cells)
    rows, planted = [], []
    for i, (kind, value) in enumerate(cells):
        in_text = rng.random() < 0.5
        note = rng.choice(TEXT).format(value) if in_text else rng.choice(["no remarks", "ok", "call back later"])
        contact = rng.choice(["n/a", "", "see note"]) if in_text else value
        rows.append({"note": note, "contact": contact, "amount": round(rng.uniform(5, 500), 2),
                     "label": "yes" if (i + len(note)) % 3 == 0 else "no"})
        if kind is not None:
            planted.append({"row": i, "column": "note" if in_text else "contact", "kind": kind, "value": value})
    return pd.DataFrame(rows), planted
