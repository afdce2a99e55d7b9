"""Text: when one word decides the label, that word gets the top token attribution, and the
HTML report highlights it."""

from __future__ import annotations

import re

import numpy as np

from takeoff.explain import explain


def test_the_deciding_word_has_the_top_token_attribution(tfidf_text, texts):
    explanation = explain(tfidf_text, texts, rows=12, max_rows=300)
    assert explanation.top("permutation", 1) == ["review"]
    assert [m["method"] for m in explanation.members] == ["occlusion"]
    positives = 0
    for entry, text in zip(explanation.local, texts["review"].head(12)):
        tokens = entry["tokens"]["review"]
        assert [t["token"] for t in tokens] == text.split()
        assert entry["attributions"][0]["column"] == "review"
        if "excellent" in text.split():
            positives += 1
            top = max(tokens, key=lambda t: t["attribution"])
            assert top["token"] == "excellent" and top["attribution"] > 0.3
            others = [abs(t["attribution"]) for t in tokens if t["token"] != "excellent"]
            assert top["attribution"] > 10 * max(others)
        # the member's word attributions are the model's (a blend of one)
        np.testing.assert_allclose(entry["members"][0]["tokens"]["review"], [t["attribution"] for t in tokens])
    assert positives >= 3


def test_words_past_the_cap_are_kept_without_attribution(tfidf_text, texts):
    row = texts.head(1).copy()
    row["review"] = " ".join(["excellent"] + ["filler"] * 20)
    tokens = explain(tfidf_text, row, max_words=5, global_importance=False).local[0]["tokens"]["review"]
    assert [t["token"] for t in tokens] == ["excellent"] + ["filler"] * 4 + [" ".join(["filler"] * 16)]
    assert tokens[-1]["attribution"] is None and all(t["attribution"] is not None for t in tokens[:-1])


def test_html_highlights_the_words(tfidf_text, texts, tmp_path):
    explanation = explain(tfidf_text, texts, rows=3, max_rows=200)
    path = explanation.write_html(tmp_path / "nested" / "explanation.html")
    page = path.read_text()
    assert page.startswith("<!doctype html>") and "http://" not in page.replace("http://www.w3.org", "")
    assert page.count('class="tok"') == sum(len(e["tokens"]["review"]) for e in explanation.local)
    excellent = re.findall(r'<span class="tok" style="background:rgba\((\d+),\d+,\d+,([\d.]+)\)"[^>]*>excellent</span>', page)
    assert excellent and all(rgb == "16" and float(alpha) > 0.5 for rgb, alpha in excellent)  # strong green
    assert "Permutation importance" in page and "<svg" in page
    assert not list(tmp_path.glob("nested/.*.tmp"))  # written atomically, no temp file left
