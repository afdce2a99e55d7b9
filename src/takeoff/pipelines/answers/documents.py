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
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from takeoff.errors import DataError, preview

MARKDOWN = (".md", ".markdown")
HTML = (".html", ".htm")
TEXT = (".txt",)
PDF = (".pdf",)
SUFFIXES = (*MARKDOWN, *HTML, *TEXT, *PDF)
SECTION_SEP = " > "
SHORT_CHARS = 80  # a section with less text than this and sub-sections is joined to the first one

# HTML: elements whose content is not the document's text.
_SKIP_TAGS = {"script", "style", "nav", "noscript", "template", "svg", "head", "button", "form"}
# ... nor are elements of these classes or ids (tables of contents, navigation bars).
_SKIP_MARKS = {"toc", "navheader", "navfooter", "navbar", "navigation", "breadcrumb", "breadcrumbs", "sidebar",
               "menu", "skip-link"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_HEADING_LEVELS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4}
_PARAGRAPH_TAGS = {"p", "div", "pre", "table", "ul", "ol", "dl", "blockquote", "section", "article", "h5", "h6",
                   "figure", "main", "header", "footer"}
_LINE_TAGS = {"li", "dt", "dd", "tr", "br"}
_PRE = "\x00"  # marks a <pre> block's start and end in the collected text


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


class UnreadableFile(Exception):
    """A document that cannot be parsed (the message says why); it is skipped."""


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


def _nest(stack: list[tuple[int, str]], level: int, title: str) -> list[str]:
    """Push a heading of ``level`` on the heading stack; the path it makes."""
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, title))
    return [t for _, t in stack]


def split_markdown(text: str) -> list[tuple[list[str], str]]:
    """The sections of a Markdown text: (heading path, the Markdown source under the heading)."""
    from markdown_it import MarkdownIt

    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").parse(text)
    headings = []  # (first line, line after, level, title)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            title = " ".join(tokens[i + 1].content.split()) if i + 1 < len(tokens) else ""
            headings.append((token.map[0], token.map[1], int(token.tag[1]), title))
    sections = []
    start = 0
    stack: list[tuple[int, str]] = []
    path: list[str] = []
    for first, after, level, title in headings:
        sections.append((path, "\n".join(lines[start:first])))
        path = _nest(stack, level, title or "(untitled)")
        start = after
    sections.append((path, "\n".join(lines[start:])))
    return sections


def split_text(text: str) -> list[tuple[list[str], str]]:
    """The sections of plain text: headings are lines underlined with ``===`` (level 1) or
    ``---`` (level 2); the text between them is one section (long ones are split later at
    its blank-line paragraphs)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sections = []
    stack: list[tuple[int, str]] = []
    path: list[str] = []
    body: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        under = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if (line.strip() and len(under) >= 3 and set(under) <= {"="} | {"-"} and len(set(under)) == 1
                and len(line.strip()) <= 120 and (i == 0 or not lines[i - 1].strip())):
            sections.append((path, "\n".join(body)))
            path = _nest(stack, 1 if under[0] == "=" else 2, " ".join(line.split()))
            body = []
            i += 2
            continue
        body.append(line)
        i += 1
    sections.append((path, "\n".join(body)))
    return sections


def split_html(text: str) -> list[tuple[list[str], str]]:
    """The sections of an HTML page at its ``h1``–``h4`` headings (scripts, styles, navigation
    and tables of contents dropped; ``pre`` blocks keep their lines)."""
    parser = _HtmlSections()
    try:
        parser.feed(text)
        parser.close()
    except Exception as error:  # noqa: BLE001 (html.parser is lenient; anything it raises means unreadable)
        raise UnreadableFile(f"not parseable as HTML ({error})") from None
    return [(path, _clean_html_text("".join(parts))) for path, parts in parser.sections]


class _HtmlSections(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[list[str], list[str]]] = [([], [])]
        self._stack: list[tuple[int, str]] = []
        self._skip: list[str] = []  # open skipped elements (their tags), outermost first
        self._heading: tuple[int, list[str]] | None = None
        self._pre = 0

    def _skipped(self, tag: str, attrs: dict) -> bool:
        marks = set((attrs.get("class") or "").lower().split()) | {(attrs.get("id") or "").lower()}
        return tag in _SKIP_TAGS or bool(marks & _SKIP_MARKS) or (attrs.get("role") or "").lower() == "navigation"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in _VOID and tag != "br":
            return
        if self._skip:
            if tag not in _VOID:
                self._skip.append(tag)
            return
        if self._skipped(tag, attrs):
            self._skip.append(tag)
            return
        if tag in _HEADING_LEVELS:
            self._heading = (_HEADING_LEVELS[tag], [])
        elif tag == "pre":
            self._pre += 1
            self._emit("\n\n" + _PRE)
        elif tag in _PARAGRAPH_TAGS:
            self._emit("\n\n")
        elif tag in _LINE_TAGS:
            self._emit("\n")

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self._emit("\n")

    def handle_endtag(self, tag):
        if self._skip:
            if tag in self._skip:  # close up to the matching element (unclosed ones inside it go too)
                while self._skip and self._skip.pop() != tag:
                    pass
            return
        if tag in _HEADING_LEVELS and self._heading is not None:
            level, parts = self._heading
            self._heading = None
            title = " ".join("".join(parts).split())
            if title:
                self.sections.append((_nest(self._stack, level, title), []))
        elif tag == "pre" and self._pre:
            self._pre -= 1
            self._emit(_PRE + "\n\n")
        elif tag in _PARAGRAPH_TAGS:
            self._emit("\n\n")
        elif tag in _LINE_TAGS:
            self._emit("\n")

    def handle_data(self, data):
        if self._skip:
            return
        if self._heading is not None:
            self._heading[1].append(data)
        elif self._pre:
            self._emit(data)
        else:
            self._emit(re.sub(r"\s+", " ", data))

    def _emit(self, text: str) -> None:
        if self._heading is None:
            self.sections[-1][1].append(text)


def _clean_html_text(text: str) -> str:
    # even pieces are prose (lines stripped), odd ones <pre> blocks (indentation kept)
    pieces = text.split(_PRE)
    for i in range(0, len(pieces), 2):
        pieces[i] = "\n".join(line.strip() for line in pieces[i].split("\n"))
    for i in range(1, len(pieces), 2):
        pieces[i] = "\n".join(line.rstrip() for line in pieces[i].strip("\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "".join(pieces)).strip()


def split_pdf(path: Path) -> list[tuple[list[str], str]]:
    """One section per page of a PDF: its outline path at that page (the bookmarks), else
    "page N". Needs pypdf (``pip install 'takeoff[generate]'``)."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:
        raise UnreadableFile("reading PDF files needs the package 'pypdf'; pip install 'takeoff[generate]'") from None
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged file is reported once, as a skip
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise UnreadableFile("an encrypted PDF")
        starts = _outline_starts(reader)
        sections = []
        for number, page in enumerate(reader.pages):
            text = page.extract_text() or ""
            heading = next((p for start, p in reversed(starts) if start <= number), None)
            label = f"page {number + 1}"
            sections.append(([*heading[:-1], f"{heading[-1]} ({label})"] if heading else [label], text))
    except UnreadableFile:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as error:
        raise UnreadableFile(f"not a readable PDF ({type(error).__name__}: {str(error)[:120]})") from None
    return sections


def _outline_starts(reader) -> list[tuple[int, list[str]]]:
    """(first page index, heading path) of every outline entry, by page."""
    found: list[tuple[int, list[str]]] = []

    def walk(items, path):
        last = None
        for item in items:
            if isinstance(item, list):
                if last is not None:
                    walk(item, [*path, last])
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # noqa: BLE001 (an outline entry without a page: left out)
                page = None
            if title and page is not None and page >= 0:
                found.append((page, [*path, title]))
            last = title or last

    try:
        walk(reader.outline, [])
    except Exception:  # noqa: BLE001 (a broken outline: pages are labelled by number)
        return []
    return sorted(found, key=lambda x: x[0])
