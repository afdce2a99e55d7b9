"""Documents → passages: read a folder of Markdown, HTML, plain text and PDF files (or a table
of passages) and split it so that one passage is one section or question.

Splitting follows the documents' own headings: Markdown headings (parsed with markdown-it-py,
so a ``#`` inside a code block is not a heading), HTML ``h1``–``h4`` (scripts, styles and
navigation dropped), underlined lines in plain text (``Title`` over ``=====`` or ``-----``) and
a PDF's outline (bookmarks; one passage per page). The heading path is kept as the passage's
``section`` ("Installing > From a .deb file"). A section longer than ``chunk_chars`` is split
at paragraph boundaries (then sentences, then a hard cut); a section without text of its own
(a chapter heading followed by its first question) lives on in its sub-sections' paths; a
very short one that has sub-sections is joined to the first of them, so no passage is a lone
line.

A file that cannot be read (a corrupt or encrypted PDF, a binary file under a text name, text
that is not in the expected encoding) is skipped and listed in the notes; files of other types
are counted. Only a folder with no readable passage at all is an error.

Example:
    >>> from takeoff.pipelines.answers.documents import read_documents
    >>> docs = read_documents("docs/")
    >>> docs.passages[0].source, docs.passages[0].section
    ('install.md', 'Installing > From a .deb file')
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from takeoff.errors import DataError, preview
from takeoff.pipelines.answers.formats import UnreadableFile, split_html, split_markdown, split_pdf, split_text

MARKDOWN = (".md", ".markdown")
HTML = (".html", ".htm")
TEXT = (".txt",)
PDF = (".pdf",)
SUFFIXES = (*MARKDOWN, *HTML, *TEXT, *PDF)
SECTION_SEP = " > "
SHORT_CHARS = 80  # a section with less text than this and sub-sections is joined to the first one


@dataclass(frozen=True)
class Passage:
    """One retrievable piece of a document.

    Attributes:
        source: the file it comes from, relative to the folder read ("guide/install.md"), or the
            table's source column (else the table's name).
        section: the heading path ("Installing > From a .deb file"), "page 3" in a PDF without
            an outline, "" for text before any heading.
        text: the passage's text (at most ``chunk_chars`` characters).
    """

    source: str
    section: str
    text: str


@dataclass
class Documents:
    """What a folder or table gave: its passages, and what was read, skipped or ignored."""

    passages: list[Passage]
    name: str
    files: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why), files that could not be read
    ignored: dict[str, int] = field(default_factory=dict)  # suffix -> files of other types not read
    notes: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """The passages as a table (source, section, text)."""
        return pd.DataFrame([{"source": p.source, "section": p.section, "text": p.text} for p in self.passages],
                            columns=["source", "section", "text"])


# ---------------------------------------------------------------------- folders
def read_documents(folder: str | Path, *, chunk_chars: int = 1200, encoding: str | None = None) -> Documents:
    """Read every .md/.markdown, .html/.htm, .txt and .pdf file under ``folder`` (recursively;
    hidden files and folders skipped) into passages.

    Args:
        folder: the documents' folder.
        chunk_chars: longest passage; longer sections are split at paragraph boundaries.
        encoding: text files' encoding (default UTF-8; an HTML page that declares another
            charset is read in it).

    Returns:
        The :class:`Documents`: passages in file order (sorted paths), then page order.

    Raises:
        DataError: ``folder`` is not a folder, or no file in it gave a passage (the message
            lists what was skipped and why).
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of documents. Fix: pass a folder holding .md, .html, .txt or .pdf "
                        "files, or a table of passages with --text COLUMN.")
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    docs = Documents([], str(root))
    ignored: Counter[str] = Counter()
    for path in files:
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            ignored[suffix or "(no suffix)"] += 1
            continue
        relative = path.relative_to(root).as_posix()
        try:
            sections = _read_file(path, suffix, encoding)
        except UnreadableFile as why:
            docs.skipped.append((relative, str(why)))
            continue
        passages = to_passages(sections, relative, chunk_chars)
        if not passages:
            docs.skipped.append((relative, "no text in it"))
            continue
        docs.files += 1
        docs.passages.extend(passages)
    docs.ignored = dict(sorted(ignored.items()))
    if docs.skipped:
        docs.notes.append(f"{len(docs.skipped)} file(s) skipped: "
                          + "; ".join(f"{name} ({why})" for name, why in docs.skipped[:20])
                          + ("; ..." if len(docs.skipped) > 20 else ""))
    if ignored:
        docs.notes.append("files of other types not read: " + ", ".join(f"{n} {s}" for s, n in docs.ignored.items()))
    if not docs.passages:
        found = ("; skipped: " + "; ".join(f"{n} ({w})" for n, w in docs.skipped[:5])) if docs.skipped else ""
        raise DataError(f"the folder {root} holds no readable passage: {len(files)} file(s), none of them a readable "
                        f"{', '.join(SUFFIXES)} file with text{found}. Fix: point to the folder of your documents "
                        "(Markdown, HTML, plain text or PDF).")
    return docs


def _read_file(path: Path, suffix: str, encoding: str | None) -> list[tuple[list[str], str]]:
    if suffix in PDF:
        return split_pdf(path)
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise UnreadableFile("binary data, not text")
    declared = None
    if suffix in HTML and encoding is None:
        found = re.search(rb"""<meta[^>]+charset=["']?([\w.:-]+)""", raw[:4096], re.I)
        declared = found.group(1).decode("ascii") if found else None
    text = _decode(raw, encoding or declared or "utf-8")
    if suffix in MARKDOWN:
        return split_markdown(text)
    if suffix in HTML:
        return split_html(text)
    return split_text(text)


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except LookupError:
        raise UnreadableFile(f"unknown text encoding {encoding!r}") from None
    except UnicodeDecodeError as error:
        raise UnreadableFile(f"not {encoding} text (byte 0x{raw[error.start]:02x} at position {error.start}); "
                             "convert it to UTF-8 or pass its encoding") from None


# ---------------------------------------------------------------------- tables
def read_passages_table(df: pd.DataFrame, name: str, *, text: str = "text", chunk_chars: int = 1200) -> Documents:
    """A table of passages: the ``text`` column, and optional ``source``, ``section`` and
    ``title`` columns (``section`` else ``title`` names a row's section; else "row N").

    Raises:
        ColumnNotFoundError: ``text`` is not a column.
        DataError: every row's text is empty.
    """
    from takeoff.data.schema import require_columns

    require_columns(df, [text], name, role="text column (the passages; set it with --text)")
    docs = Documents([], name)
    empty = []
    for i, row in enumerate(df.to_dict(orient="records")):
        body = _cell(row.get(text))
        if not body:
            empty.append(i)
            continue
        source = _cell(row.get("source")) if text != "source" else ""
        section = next((_cell(row.get(c)) for c in ("section", "title") if c != text and _cell(row.get(c))), "")
        docs.passages.extend(to_passages([([section or f"row {i + 1}"], body)], source or name, chunk_chars))
    docs.files = 1
    if empty:
        docs.notes.append(f"{len(empty)} row(s) with an empty '{text}' were skipped (rows {preview(empty, 8)})")
    if not docs.passages:
        raise DataError(f"every row of {name} has an empty '{text}'; there is nothing to answer from. Fix: pass the "
                        "column that holds the passages as --text.", column=text)
    return docs


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return str(value).strip()


# ---------------------------------------------------------------------- splitting
def to_passages(sections: list[tuple[list[str], str]], source: str, chunk_chars: int) -> list[Passage]:
    """Passages of one document from its ``(heading path, text)`` sections in order: empty
    sections dropped, a very short one joined to its first sub-section, long ones split."""
    merged: list[tuple[list[str], str]] = []
    carry = ""
    for i, (path, body) in enumerate(sections):
        body = _tidy(body)
        nxt = sections[i + 1][0] if i + 1 < len(sections) else None
        has_child = nxt is not None and len(nxt) > len(path) and nxt[:len(path)] == path
        if carry:
            body = f"{carry}\n\n{body}".strip()
            carry = ""
        if body and len(body) < SHORT_CHARS and has_child:
            carry = body  # e.g. "Two ways:" under a heading whose sub-sections say how
            continue
        if body:
            merged.append((path, body))
    if carry:
        merged.append((sections[-1][0], carry))
    passages = []
    for path, body in merged:
        section = SECTION_SEP.join(path)
        passages.extend(Passage(source, section, piece) for piece in split_long(body, chunk_chars))
    return passages


def split_long(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at paragraph boundaries
    (blank lines), else at line or sentence ends, else anywhere."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for unit in _units(text, limit):
        if pieces and len(pieces[-1]) + 2 + len(unit) <= limit:
            pieces[-1] = f"{pieces[-1]}\n\n{unit}"
        else:
            pieces.append(unit)
    return pieces


def _units(text: str, limit: int) -> list[str]:
    units = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            units.append(paragraph)
            continue
        current = ""
        for sentence in re.split(r"(?<=[.!?:;])\s+|\n", paragraph):
            while len(sentence) > limit:  # one enormous sentence or line: cut it
                if current:
                    units.append(current)
                    current = ""
                units.append(sentence[:limit])
                sentence = sentence[limit:]
            if current and len(current) + 1 + len(sentence) > limit:
                units.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}".strip() if current else sentence
        if current:
            units.append(current)
    return units


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()
