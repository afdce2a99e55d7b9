"""The personal-data scanner and the redaction step (takeoff.data.pii) on their own."""

from __future__ import annotations

import pandas as pd
import pytest

from takeoff.data.pii import KINDS, PiiParams, Redactor, find, iban_valid, luhn, mask, parse_kinds, scan
from takeoff.errors import ConfigError, TargetError
from takeoff.testing.pii import planted_table


def kinds_in(text: str) -> list[tuple[str, str]]:
    return [(text[s:e], k) for s, e, k in find(text)]


def test_checksums_throw_out_lookalikes():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB83WEST12345698765432")
    assert kinds_in("pay 4111 1111 1111 1111 now") == [("4111 1111 1111 1111", "card")]
    assert kinds_in("pay 4111 1111 1111 1112 now") == []
    # a following upper-case word is not part of the IBAN
    assert kinds_in("IBAN GB82 WEST 1234 5698 7654 32 THANKS") == [("GB82 WEST 1234 5698 7654 32", "iban")]


@pytest.mark.parametrize("text", ["version 1.2.3.4", "v1.2.3.4", "300.1.2.3", "1.2.3", "12:30:45",
                                  "ORD-2024-558812", "666-12-3456", "900-12-3456", "123-00-4567", "#10023455"])
def test_lookalikes_are_not_personal_data(text):
    assert find(text) == []


def test_each_kind_is_found_with_its_span():
    text = ("mail ann.lee@example.org, call (202) 555-0143 or +44 20 7946 0958, ssn 123-45-6789, "
            "from 192.168.1.20 and 2001:db8::8a2e:370:7334")
    assert kinds_in(text) == [("ann.lee@example.org", "email"), ("(202) 555-0143", "phone"),
                              ("+44 20 7946 0958", "phone"), ("123-45-6789", "ssn"), ("192.168.1.20", "ip"),
                              ("2001:db8::8a2e:370:7334", "ip")]


def test_masks_hide_the_value():
    assert mask("ann.lee@example.org", "email") == "a***@***.org"
    assert mask("4111 1111 1111 1111", "card") == "**** **** **** 1111"
    assert mask("123-45-6789", "ssn") == "***-**-**89"
    assert mask("192.168.1.20", "ip") == "192.*.*.*"


def test_planted_table_recall_and_precision_per_kind():
    """The benchmark's measure on a small table: every kind at recall and precision ≥ 0.95."""
    df, planted = planted_table(per_kind=40, seed=5)
    truth = {(p["row"], p["column"]): p for p in planted}
    found = {k: 0 for k in KINDS}
    false = {k: 0 for k in KINDS}
    for column in ("note", "contact"):
        for row, text in enumerate(df[column]):
            p = truth.get((row, column))
            for start, end, kind in find(text):
                if p is not None and p["kind"] == kind and text[start:end] == p["value"]:
                    found[kind] += 1
                else:
                    false[kind] += 1
    for kind in KINDS:
        planted_n = sum(p["kind"] == kind for p in planted)
        assert found[kind] / planted_n >= 0.95, (kind, found[kind], planted_n)
        assert found[kind] / (found[kind] + false[kind]) >= 0.95, (kind, false[kind])


def test_scan_reports_share_masked_examples_and_mostly():
    df = pd.DataFrame({"email": [f"user{i}@example.com" for i in range(50)] + [None] * 10,
                       "note": ["call 212-555-0143 please" if i % 4 == 0 else "fine" for i in range(60)],
                       "plain": ["a"] * 60})
    found = {(f.column, f.kind): f for f in scan(df)}
    assert set(found) == {("email", "email"), ("note", "phone")}
    assert found[("email", "email")].mostly and not found[("note", "phone")].mostly
    assert found[("note", "phone")].rows == 15 and found[("note", "phone")].share == 0.25
    assert found[("email", "email")].examples == ["u***@***.com"]  # two distinct masks at most; here one


def test_redactor_round_trip_and_tokens(tmp_path):
    redactor = Redactor(parse_kinds(["email,card"]), ["note"])
    assert redactor.redact_values(["to ann@example.org, card 4111111111111111, call 212-555-0143", None]) == \
        ["to <EMAIL>, card <CARD>, call 212-555-0143", None]
    redactor.save(tmp_path)
    again = Redactor.load(tmp_path)
    assert again.kinds == ["email", "card"] and again.columns == ["note"]
    frame = pd.DataFrame({"note": ["x@example.com"], "other": ["y@example.com"]})
    assert redactor.apply(frame).to_dict("list") == {"note": ["<EMAIL>"], "other": ["y@example.com"]}
    # card numbers read as integers are redacted as the strings the model sees at serving time
    ints = pd.DataFrame({"note": [4111111111111111, 1234]})
    assert redactor.apply(ints)["note"].tolist() == ["<CARD>", "1234"]


def test_redaction_refuses_the_target_and_unknown_kinds():
    with pytest.raises(TargetError, match="'label' is the target"):
        Redactor.fit(PiiParams(redact=["all"], columns=["label"]), ["note", "label"], ["label"])
    with pytest.raises(ConfigError, match="unknown kind of personal data 'emial'.*Did you mean 'email'"):
        parse_kinds(["emial"])
    with pytest.raises(ConfigError, match="not a column of text or categories"):
        Redactor.fit(PiiParams(redact=["email"], columns=["amount"]), ["note"], ["label"])
    assert Redactor.fit(PiiParams(redact=["all"]), ["note", "label"], ["label"]).columns == ["note"]


def test_checksums_catch_every_single_digit_change():
    """Luhn and mod 97 both catch any one mistyped digit: a card or IBAN with one digit changed
    is never reported."""
    import random

    from takeoff.testing.pii import card, iban

    rng = random.Random(11)
    for make, kind in ((card, "card"), (iban, "iban")):
        for _ in range(100):
            value = make(rng).replace(" ", "").replace("-", "")
            assert [k for *_, k in find(value)] == [kind]
            digits = [i for i, c in enumerate(value) if c.isdigit() and i >= 2]
            i = rng.choice(digits)
            typo = value[:i] + str((int(value[i]) + rng.randint(1, 9)) % 10) + value[i + 1:]
            assert kind not in [k for *_, k in find(typo)], (value, typo)
