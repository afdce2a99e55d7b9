"""Documents → passages: headings followed in Markdown, HTML, plain text and PDF; unreadable
files skipped and listed; a folder without a readable passage refused."""

from __future__ import annotations

import pandas as pd
import pytest

from takeoff.errors import ColumnNotFoundError, DataError
from takeoff.pipelines.answers.documents import (read_documents, read_passages_table, split_html, split_markdown,
                                                 split_text, to_passages)

from answer_docs import INSTALL_MD, REFUNDS_HTML, SHIPPING_TXT, write_pdf


def sections_of(passages):
    return [(p.source, p.section) for p in passages]


def test_markdown_follows_headings_and_joins_a_short_intro_to_its_first_subsection():
    passages = to_passages(split_markdown(INSTALL_MD), "install.md", 1200)
    assert sections_of(passages) == [("install.md", "Installing > From a .deb file"),
                                     ("install.md", "Installing > From the repository")]
    assert passages[0].text.startswith("Two ways:") and "dpkg -i package.deb" in passages[0].text


def test_markdown_heading_inside_a_code_block_is_not_a_heading():
    text = "# Usage\n\nRun it:\n\n```\n# not a heading\nrun --fast\n```\n\n# Next\n\nMore text here."
    passages = to_passages(split_markdown(text), "u.md", 1200)
    assert [p.section for p in passages] == ["Usage", "Next"]
    assert "# not a heading" in passages[0].text


def test_html_splits_on_headings_and_drops_scripts_styles_navigation_and_toc():
    passages = to_passages(split_html(REFUNDS_HTML), "billing.html", 1200)
    assert [p.section for p in passages] == ["Billing > Refunds", "Billing > Invoices"]
    text = " ".join(p.text for p in passages)
    for gone in ("never indexed", "color: red", "Billing menu", "Contents"):
        assert gone not in text
    assert "thirty days" in passages[0].text and "\n\n" in passages[0].text  # paragraphs kept apart
    assert "  1234   2024-01-02" in passages[1].text  # <pre> keeps its lines and indentation


def test_text_underlined_headings_and_paragraph_groups():
    passages = to_passages(split_text(SHIPPING_TXT), "shipping.txt", 1200)
    assert [p.section for p in passages] == ["Shipping", "Shipping > Lost parcels"]
    plain = "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(10))  # ~2,300 characters, no heading
    pieces = to_passages(split_text(plain), "plain.txt", 600)
    assert len(pieces) > 3 and all(len(p.text) <= 600 for p in pieces) and all(p.section == "" for p in pieces)
    assert all(p.text.startswith("Paragraph") for p in pieces)  # cut at paragraph boundaries
    assert sum(p.text.count("Paragraph") for p in pieces) == 10


def test_a_long_paragraph_is_cut_at_sentences(tmp_path):
    long = " ".join(f"Sentence number {i} says something useful." for i in range(60))
    pieces = to_passages([(["Long"], long)], "x.md", 300)
    assert len(pieces) > 5 and all(len(p.text) <= 300 for p in pieces)
    assert all(p.text.endswith(".") for p in pieces)


def test_pdf_pages_with_outline_and_without(tmp_path):
    pdf = write_pdf(tmp_path / "manual.pdf", [["Warranty", "Two years against defects."], ["Repairs are free."]],
                    outline=[("Warranty", 0), ("Repairs", 1)])
    plain = write_pdf(tmp_path / "notes.pdf", [["First page text."], ["Second page text."]])
    docs = read_documents(tmp_path)
    by_source = {}
    for p in docs.passages:
        by_source.setdefault(p.source, []).append(p)
    assert [p.section for p in by_source[pdf.name]] == ["Warranty (page 1)", "Repairs (page 2)"]
    assert "Two years against defects." in by_source[pdf.name][0].text
    assert [p.section for p in by_source[plain.name]] == ["page 1", "page 2"]


def test_folder_reads_every_kind_and_lists_what_it_skipped(docs, tmp_path):
    for name in ("install.md", "shipping.txt"):
        (tmp_path / name).write_text((docs / name).read_text())
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a real pdf at all")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02 binary content")
    (tmp_path / "latin1.md").write_bytes("# Caf\xe9\n\nCr\xe8me br\xfbl\xe9e".encode("latin-1"))
    (tmp_path / "empty.md").write_text("   \n")
    (tmp_path / ".hidden.md").write_text("# Secret\n\nnot read")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    result = read_documents(tmp_path)
    assert {p.source for p in result.passages} == {"install.md", "shipping.txt"}
    skipped = dict(result.skipped)
    assert set(skipped) == {"broken.pdf", "binary.txt", "latin1.md", "empty.md"}
    assert "PDF" in skipped["broken.pdf"] and "binary" in skipped["binary.txt"]
    assert "not utf-8 text" in skipped["latin1.md"].lower() and "no text" in skipped["empty.md"]
    assert result.ignored == {".png": 1} and result.files == 2
    assert any("broken.pdf" in n for n in result.notes)
    latin = [p for p in read_documents(tmp_path, encoding="latin-1").passages if p.source == "latin1.md"]
    assert [(p.section, p.text) for p in latin] == [("Café", "Crème brûlée")]  # read in its own encoding


def test_html_declared_charset_is_honoured(tmp_path):
    page = '<html><head><meta charset="iso-8859-1"></head><body><h1>Caf\xe9</h1><p>Cr\xe8me</p></body></html>'
    (tmp_path / "p.html").write_bytes(page.encode("latin-1"))
    passages = read_documents(tmp_path).passages
    assert passages[0].section == "Café" and passages[0].text == "Crème"


def test_folder_without_readable_passage_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no readable passage"):
        read_documents(tmp_path)
    (tmp_path / "bad.pdf").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"bad\.pdf"):
        read_documents(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        read_documents(tmp_path / "missing")


def test_table_of_passages():
    df = pd.DataFrame({"text": ["Refunds within thirty days.", "", None, "Parcels ship in two days."],
                       "title": ["Refunds", "x", "y", None], "source": ["faq.csv", None, None, None]})
    docs = read_passages_table(df, "passages.csv")
    assert [(p.source, p.section) for p in docs.passages] == [("faq.csv", "Refunds"), ("passages.csv", "row 4")]
    assert "2 row(s) with an empty 'text'" in docs.notes[0]
    with pytest.raises(ColumnNotFoundError, match="body"):
        read_passages_table(df, "passages.csv", text="body")
    with pytest.raises(DataError, match="empty"):
        read_passages_table(pd.DataFrame({"text": ["", None]}), "empty.csv")
