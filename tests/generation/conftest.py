"""A tiny random causal LM (SmolLM2's architecture, a BPE tokenizer trained in a second), built
once per session, and small prompt → answer tables."""

from __future__ import annotations

import pandas as pd
import pytest

PAIRS = [
    ("How do I reset my password?", "Open the settings page and choose reset password."),
    ("Where is my parcel?", "Track it from the orders page."),
    ("Can I get a refund?", "Yes, within thirty days of delivery."),
    ("How do I install a package?", "Run apt install and the package name."),
    ("What is Debian?", "A free operating system."),
]


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    pytest.importorskip("transformers")
    from takeoff.testing.llm import tiny_causal_lm

    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "chat")


@pytest.fixture(scope="session")
def tiny_plain_lm(tmp_path_factory):
    """The same architecture without a chat template (the plain template's path)."""
    pytest.importorskip("transformers")
    from takeoff.testing.llm import tiny_causal_lm

    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "plain", chat=False)


@pytest.fixture
def pairs_csv(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame(PAIRS * 8, columns=["question", "answer"]).to_csv(path, index=False)
    return path
