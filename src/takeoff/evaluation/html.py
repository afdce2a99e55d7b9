"""The one way takeoff writes an HTML page: jinja2 templates, the shared page shell and CSS,
escaping, and the atomic write.

Every report (evaluation, recommendation, compression, explanation) extends ``page.html`` from
``evaluation/templates/`` and uses the building blocks of ``blocks.html`` (header, section,
figure, tables). A package with its own templates passes its folder; names are looked up there
first, then here. Every value a template prints is HTML-escaped (``&#x27;`` for quotes, as
:func:`html.escape` does) unless it is :class:`Markup` (an inline SVG chart, say).

jinja2 is imported when a page is rendered, so importing a report module stays cheap.
"""

from __future__ import annotations

import functools
import html
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from takeoff.bundle import write_atomic

TEMPLATES = Path(__file__).parent / "templates"


def escape(value: Any) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def markup(text: str) -> Any:
    """Mark ``text`` (already safe HTML, e.g. an inline SVG) to be printed as is."""
    from markupsafe import Markup

    return Markup(text)


def generated() -> str:
    """The "Generated" stamp of a report header: the current time in UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def render(template: str, folder: Path | None = None, **context: Any) -> str:
    """Render ``template`` with ``context``.

    Args:
        template: the file name, e.g. ``"evaluation.html"``.
        folder: a package's own templates folder, searched before the shared one.
        **context: the template's variables; ``version`` (takeoff's) is always there.

    Returns:
        The document as a string.

    Example:
        >>> render("evaluation.html", title="Prices", ...)  # doctest: +SKIP
    """
    from takeoff._version import __version__

    return _environment(folder).get_template(template).render(version=__version__, **context)


def write_page(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (parent folders are created): a temporary file
    beside it, flushed to disk, then renamed over it. A failure leaves any old file as it was.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    write_atomic(path, write)
    return path


@functools.lru_cache(maxsize=8)
def _environment(folder: Path | None) -> Any:
    import jinja2
    from markupsafe import Markup

    def finalize(value: Any) -> Any:
        # markupsafe writes a quote as &#39;; keep the standard library's &#x27; in every report
        return value if hasattr(value, "__html__") else Markup(escape(value))

    folders = [str(folder)] if folder is not None else []
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([*folders, str(TEMPLATES)]),
        autoescape=True,
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
