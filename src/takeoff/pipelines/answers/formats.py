"""The formats a folder of documents may hold, each split into ``(heading path, text)``
sections in document order: Markdown, HTML, plain text and PDF (see :mod:`.documents`).

A parser that cannot read a file raises :class:`UnreadableFile`; the folder reader skips the
file and lists why.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

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


class UnreadableFile(Exception):
    """A document that cannot be parsed (the message says why); it is skipped."""


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
