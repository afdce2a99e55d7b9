"""matplotlib's SVG output made fit for inline HTML, working on the parsed XML tree.

matplotlib writes a standalone document: an XML prologue and DOCTYPE, RDF metadata, namespace
URLs, an id on every group, six-decimal coordinates and the font on every text element. Inline
in a report page, several charts share one document, so ids must be unique across charts, and
the page must not name any URL. matplotlib has no option for most of this (``svg.hashsalt``
makes its ids deterministic, ``svg.fonttype = "none"`` keeps text as text), so the tree is
rewritten here with :mod:`xml.etree.ElementTree`; the drawing is unchanged.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any


def to_svg(fig: Any, label: str, dpi: int = 100) -> str:
    """Render the matplotlib figure ``fig`` to an inline SVG string (``label`` is its
    accessible name) and release its artists."""
    try:
        buf = io.StringIO()
        fig.savefig(buf, format="svg", dpi=dpi, metadata={"Date": None})
    finally:
        fig.clear()
    return _inline(buf.getvalue(), label)


def _inline(svg: str, label: str) -> str:
    """Make matplotlib's SVG fit for inline HTML, and small, working on the parsed XML tree.

    Drops the prologue, metadata, namespaces and unreferenced ids; unwraps groups without
    attributes; gives referenced ids a per-chart prefix (several charts share one HTML
    document); rounds coordinates to 2 decimals; sets the font once on the root instead of on
    every text element. Text content is left as it is.
    """
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg.encode("utf-8"))
    _strip(root)
    used = {ref for el in root.iter() for value in el.attrib.values() for ref in _references(value)}
    for el in root.iter():
        if el.get("id") is not None and el.get("id") not in used:
            del el.attrib["id"]
    _unwrap_groups(root)
    prefix = "c" + hashlib.sha1(ET.tostring(root, encoding="unicode").encode()).hexdigest()[:8] + "-"
    for el in root.iter():
        for key, value in el.attrib.items():
            if key == "id":
                el.set(key, prefix + value)
            elif key == "href" and value.startswith("#"):
                el.set(key, "#" + prefix + value[1:])
            elif "url(#" in value:
                el.set(key, value.replace("url(#", "url(#" + prefix))
    # Shown at most 1.25x its natural size, so fonts look alike in narrow and wide cards.
    attributes = {"class": "chart", "role": "img", "aria-label": label, "font-family": _FONTS}
    width = root.get("width", "")
    if width.endswith("pt"):
        attributes["style"] = f"max-width:{float(width[:-2]) * 4 / 3 * 1.25:.0f}px"
    attributes.update(root.attrib)
    root.attrib.clear()
    root.attrib.update(attributes)
    return ET.tostring(root, encoding="unicode")


def _strip(root) -> None:
    """Namespaces, metadata, whitespace between elements, per-element fonts, null rotations
    and long numbers out of the tree (in place)."""
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag.rpartition("}")[2] == "metadata":
                parent.remove(child)
    for el in root.iter():
        el.tag = el.tag.rpartition("}")[2]
        if el.tag != "text" and el.tag != "style" and el.text is not None and not el.text.strip():
            el.text = None
        if el.tail is not None and not el.tail.strip():
            el.tail = None
        attributes = {}
        for key, value in el.attrib.items():
            key = key.rpartition("}")[2]  # xlink:href -> href
            if key == "style":
                value = _FONT_RULE.sub("", value).strip()
            elif key == "transform" and _NULL_ROTATION.fullmatch(value):
                continue
            elif key in ("d", "x", "y", "transform", "points"):
                value = _NUMBER.sub(_round2, " ".join(value.split()))
            elif key == "href" and value.startswith("data:"):
                value = "".join(value.split())  # base64 wrapped over lines
            attributes[key] = value
        el.attrib.clear()
        el.attrib.update(attributes)


def _references(value: str) -> list[str]:
    """The ids an attribute value points at: ``url(#id)`` or a ``#id`` link."""
    return _URL_REF.findall(value) + ([value[1:]] if value.startswith("#") else [])


def _unwrap_groups(parent) -> None:
    """Replace each ``<g>`` without attributes by its children (an empty one disappears)."""
    children = []
    for child in parent:
        _unwrap_groups(child)
        if child.tag == "g" and not child.attrib:
            children.extend(child)
        else:
            children.append(child)
    parent[:] = children


_FONT_RULE = re.compile(r"font-family: [^;]*;? ?")
_NULL_ROTATION = re.compile(r"rotate\(-?0 [^)]*\)")
_URL_REF = re.compile(r"url\(#([^)]+)\)")
_NUMBER = re.compile(r"-?\d+\.\d{3,}")
_FONTS = "Inter, 'Segoe UI', 'Helvetica Neue', Arial, 'DejaVu Sans', sans-serif"


def _round2(m: re.Match) -> str:
    text = f"{float(m[0]):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
