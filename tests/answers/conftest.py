"""Fixtures of the grounded-answers tests: a tiny generator (built once per session), a folder
of documents of every kind, and an answerer built over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from answer_docs import INSTALL_MD, REFUNDS_HTML, SHIPPING_TXT, write_pdf


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    from takeoff.testing.llm import tiny_causal_lm

    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "model")


@pytest.fixture(scope="session")
def docs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    (folder / "install.md").write_text(INSTALL_MD, encoding="utf-8")
    (folder / "help").mkdir()
    (folder / "help" / "billing.html").write_text(REFUNDS_HTML, encoding="utf-8")
    (folder / "shipping.txt").write_text(SHIPPING_TXT, encoding="utf-8")
    write_pdf(folder / "warranty.pdf", [["Warranty", "Every device has a two year warranty against defects."],
                                         ["Repairs under warranty are free; send the device with its receipt."]],
              outline=[("Warranty", 0), ("Repairs", 1)])
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    return folder


@pytest.fixture(scope="session")
def answerer(docs, tiny_lm, tmp_path_factory):
    """A built and saved answerer over ``docs`` with the tiny generator (loaded back)."""
    import takeoff

    out = tmp_path_factory.mktemp("runs") / "support"
    takeoff.train(docs, task="answer", generator=str(tiny_lm), out=out, config={"answer": {"max_new_tokens": 8}})
    return takeoff.load(out)
