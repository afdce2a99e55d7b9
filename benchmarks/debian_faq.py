"""The Debian FAQ as a support-style question answering set: documents, sections, questions.

    python benchmarks/debian_faq.py                  # parse the FAQ, check the committed questions
    python benchmarks/debian_faq.py --documents DIR  # copy the FAQ's chapter pages into DIR
    python benchmarks/debian_faq.py --sections       # list every section (file, number, heading, size)

Source: the Debian package ``debian-faq`` (``apt-get install debian-faq``), which installs the
FAQ as one HTML page per chapter under ``/usr/share/doc/debian/FAQ``. ``documents(folder)``
copies those pages (the folder for ``takeoff train FOLDER --task answer``); ``sections()``
splits them at every heading (chapter, question, sub-question) into the text under it;
``questions()`` and ``unanswerable()`` read the committed sets in
``benchmarks/data/debian_faq/`` and ``check()`` verifies that every question names a section
that exists. The data's README says how the questions were written and what each field means.

Standard library only, so any interpreter that runs a baseline can import it.
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import json
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FAQ_DIR = Path(os.environ.get("DEBIAN_FAQ_DIR", "/usr/share/doc/debian/FAQ"))
DATA = Path(__file__).resolve().parent / "data" / "debian_faq"
INSTALL_HINT = "install it with `apt-get install debian-faq` (Debian/Ubuntu, as root)"

_HEADINGS = {"h1", "h2", "h3", "h4", "h5"}
# Block elements end a line of text; <pre> keeps its own line breaks.
_BLOCKS = {"p", "div", "pre", "li", "dt", "dd", "tr", "br", "table", "ul", "ol", "dl", "blockquote"}
# Navigation and the chapter's table of contents are not content.
_SKIPPED_DIVS = {"toc", "navheader", "navfooter"}
_PRE = "\x00"  # marks where a <pre> block starts and ends in the collected text
_NUMBERED = re.compile(r"^(?:Chapter\s+)?(\d+(?:\.\d+)*)\.?\s+(.*)$", re.S)


@dataclass(frozen=True)
class Section:
    """One heading of the FAQ and the text under it, up to the next heading.

    ``number`` is the FAQ's own numbering ("8.1.2"; a chapter's is its number, "8"),
    ``heading`` the heading without it ("APT"), ``title`` both as the page shows them.
    """

    file: str
    anchor: str
    number: str
    heading: str
    text: str

    @property
    def title(self) -> str:
        return f"{self.number} {self.heading}"


def chapter_files(faq_dir: Path = FAQ_DIR) -> list[Path]:
    """The FAQ's chapter pages as installed (``*.en.html``, one per chapter; not the index)."""
    pages = sorted(faq_dir.glob("*.en.html")) if faq_dir.is_dir() else []
    chapters = [page for page in pages if page.name != "index.en.html"]
    if not chapters:
        raise FileNotFoundError(
            f"the Debian FAQ's HTML pages were not found in {faq_dir} (no *.en.html chapter pages); "
            f"{INSTALL_HINT}, or set DEBIAN_FAQ_DIR to the folder that holds them")
    return chapters


def documents(folder: str | Path, faq_dir: Path = FAQ_DIR) -> list[Path]:
    """Copy the FAQ's chapter pages (HTML, one file per chapter) into ``folder``; return the copies.

    Raises:
        FileNotFoundError: the package debian-faq is not installed (the message says how).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for page in chapter_files(faq_dir):
        target = folder / page.name
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{page.name}.", suffix=".tmp")
        os.close(fd)
        shutil.copyfile(page, tmp)
        os.replace(tmp, target)
        copies.append(target)
    return copies


class _SectionParser(html.parser.HTMLParser):
    """Splits one DocBook-generated page at its headings, skipping navigation and the TOC.

    Footnotes sit together at the end of a page; each one's text joins the section that
    refers to it, not the page's last section.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, str, list[str]]] = []  # (anchor, heading text, text parts)
        self._div_depth = 0
        self._skip_from: int | None = None  # div depth at which a skipped div opened
        self._footnote_refs: dict[str, int] = {}  # footnote id -> index of the section citing it
        self._footnote: tuple[int, int] | None = None  # (div depth, section index) while in one
        self._heading: list[str] | None = None
        self._anchor = ""
        self._pre = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div":
            self._div_depth += 1
            if self._skip_from is None and (attrs.get("class") or "") in _SKIPPED_DIVS:
                self._skip_from = self._div_depth
            elif attrs.get("class") == "footnote" and attrs.get("id") in self._footnote_refs:
                self._footnote = (self._div_depth, self._footnote_refs[attrs["id"]])
        if self._skip_from is not None:
            return
        if tag == "a" and attrs.get("class") == "footnote" and self.sections:
            self._footnote_refs[(attrs.get("href") or "").lstrip("#")] = len(self.sections) - 1
        if tag in _HEADINGS and "title" in (attrs.get("class") or "").split():
            self._heading, self._anchor = [], ""
        elif tag == "a" and self._heading is not None and attrs.get("id") and not self._anchor:
            self._anchor = attrs["id"]
        elif tag == "pre":
            self._pre += 1
            self._emit("\n" + _PRE)
        elif tag in _BLOCKS:
            self._emit("\n")

    def handle_endtag(self, tag):
        if tag == "div":
            if self._footnote and self._footnote[0] == self._div_depth:
                self._footnote = None
            if self._skip_from == self._div_depth:
                self._skip_from = None
                self._div_depth -= 1
                return
            self._div_depth -= 1
        if self._skip_from is not None:
            return
        if tag in _HEADINGS and self._heading is not None:
            self.sections.append((self._anchor, " ".join("".join(self._heading).split()), []))
            self._heading = None
        elif tag == "pre":
            self._pre -= 1
            self._emit(_PRE + "\n")
        elif tag in _BLOCKS:
            self._emit("\n")

    def handle_data(self, data):
        if self._skip_from is not None:
            return
        if self._heading is not None:
            self._heading.append(data)
        elif self._pre:
            self._emit(data)
        else:
            self._emit(re.sub(r"\s+", " ", data))

    def _emit(self, text: str) -> None:
        if self.sections and self._heading is None:
            self.sections[-1 if self._footnote is None else self._footnote[1]][2].append(text)


def _clean(text: str) -> str:
    # Odd pieces lie between _PRE marks (literal blocks: keep their indentation); prose lines are stripped.
    pieces = text.split(_PRE)
    for i in range(0, len(pieces), 2):
        pieces[i] = "\n".join(line.strip() for line in pieces[i].split("\n"))
    for i in range(1, len(pieces), 2):
        pieces[i] = "\n".join(line.rstrip() for line in pieces[i].strip("\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(pieces)).strip()


def parse_page(path: Path) -> list[Section]:
    """The sections of one chapter page, in page order."""
    parser = _SectionParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    sections = []
    for anchor, shown, parts in parser.sections:
        match = _NUMBERED.match(shown)
        if match is None:  # an unnumbered heading (none in 11.1): keep it, numberless
            number, heading = "", shown
        else:
            number, heading = match.group(1), match.group(2).strip()
        sections.append(Section(path.name, anchor, number, heading, _clean("".join(parts))))
    return sections


def sections(faq_dir: Path = FAQ_DIR) -> list[Section]:
    """Every section of every chapter page: the chapter's own intro, each question and sub-question."""
    return [section for page in chapter_files(faq_dir) for section in parse_page(page)]


@functools.lru_cache(maxsize=4)
def _index(faq_dir: Path) -> dict[tuple[str, str], Section]:
    return {(s.file, s.heading): s for s in sections(faq_dir)}


def find(file: str, heading: str, faq_dir: Path = FAQ_DIR) -> Section:
    """The section of ``file`` whose plain heading is ``heading``; KeyError naming the choices if none."""
    index = _index(faq_dir)
    if (file, heading) in index:
        return index[(file, heading)]
    known = sorted(h for f, h in index if f == file)
    where = f"the headings of {file} are: {known}" if known else f"no chapter page is named {file!r}"
    raise KeyError(f"no section {heading!r} in {file}; {where}")


def _read_jsonl(path: Path, fields: set[str]) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = fields - row.keys()
        if missing:
            raise ValueError(f"{path.name} line {number}: missing field(s) {sorted(missing)}; each row needs {sorted(fields)}")
        rows.append(row)
    return rows


def questions(split: str | None = None) -> list[dict]:
    """The answerable questions (``qa.jsonl``), all or one split ("train" or "test")."""
    rows = _read_jsonl(DATA / "qa.jsonl", {"id", "question", "answer", "file", "section", "split"})
    return rows if split is None else [row for row in rows if row["split"] == split]


def unanswerable() -> list[dict]:
    """Questions the Debian FAQ does not answer (``unanswerable.jsonl``): a grounded answerer refuses these.

    Each row also has ``kind``: "off_topic" or "related" (Linux administration the FAQ doesn't cover).
    """
    return _read_jsonl(DATA / "unanswerable.jsonl", {"id", "question"})


def check(faq_dir: Path = FAQ_DIR) -> dict:
    """Verify the committed sets against the installed FAQ; return their counts.

    Every question names an existing (file, section), ids are unique, splits are train/test,
    no question text repeats and none copies its section's heading.
    """
    qa, refuse = questions(), unanswerable()
    problems = []
    ids = Counter(row["id"] for row in qa + refuse)
    problems += [f"id {i!r} is used {n} times" for i, n in ids.items() if n > 1]
    texts = Counter(row["question"].strip().lower() for row in qa + refuse)
    problems += [f"question repeated: {t!r}" for t, n in texts.items() if n > 1]
    for row in qa:
        if row["split"] not in ("train", "test"):
            problems.append(f"{row['id']}: split {row['split']!r} is not train or test")
        try:
            section = find(row["file"], row["section"], faq_dir)
        except KeyError as error:
            problems.append(f"{row['id']}: {error.args[0]}")
            continue
        if row["question"].strip().lower().rstrip("?") == section.heading.lower().rstrip("?"):
            problems.append(f"{row['id']}: the question copies its heading {section.heading!r}")
    if problems:
        raise ValueError("the Debian FAQ questions do not match the installed FAQ:\n  " + "\n  ".join(problems))
    train_keys = {(r["file"], r["section"]) for r in qa if r["split"] == "train"}
    test_keys = {(r["file"], r["section"]) for r in qa if r["split"] == "test"}
    return {
        "sections": len(sections(faq_dir)),
        "sections_covered": len(train_keys | test_keys),
        "train": sum(r["split"] == "train" for r in qa),
        "test": sum(r["split"] == "test" for r in qa),
        "test_sections_also_in_train": len(test_keys & train_keys),
        "test_sections_only_in_test": len(test_keys - train_keys),
        "unanswerable": len(refuse),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", metavar="DIR", help="copy the FAQ's chapter pages into DIR")
    parser.add_argument("--sections", action="store_true", help="list every section")
    args = parser.parse_args(argv)
    try:
        if args.documents:
            copies = documents(args.documents)
            print(f"copied {len(copies)} chapter pages into {args.documents}")
        elif args.sections:
            for s in sections():
                print(f"{s.file}\t{s.number}\t{s.heading}\t{len(s.text)} chars")
        else:
            for name, value in check().items():
                print(f"{name:30s} {value}")
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
