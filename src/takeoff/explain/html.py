"""The explanation as one self-contained HTML page, in the style of the evaluation report.

Global importances are inline SVG bar charts (:func:`takeoff.evaluation.plots.importance_svg`);
each explained row is a table of its attributions with a diverging bar (green raises the
explained output, red lowers it), one column per blend member, and its text columns with
each word's background tinted by its attribution. The page is ``templates/explanation.html``
on the shared report shell; user strings are HTML-escaped; the file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from takeoff.evaluation.html import generated, markup, write_page
from takeoff.evaluation.html import render as render_page
from takeoff.explain.methods import METHODS

if TYPE_CHECKING:  # the page is drawn for an Explanation, which itself calls write_html
    from takeoff.explain.explanation import Explanation


TEMPLATES = Path(__file__).parent / "templates"
# the methods the "How to read this" list explains (their texts are in the template)
READING_KEYS = ("permutation", "treeshap", "integrated_gradients", "occlusion", "words")

VALUE_CHARS = 120  # a cell's value is cut to this in the table (the JSON has it whole)
POSITIVE, NEGATIVE = (16, 185, 129), (225, 29, 72)  # emerald, rose

_TASK_NAMES = {"binary": "Binary classification", "multiclass": "Multiclass classification",
               "multilabel": "Multilabel classification", "regression": "Regression"}
_CAPTIONS = {
    "permutation": "How much worse the model gets when the column's values are shuffled between rows ({unit}, "
                   "mean of {repeats} shuffles on {rows:,} rows). Near zero: the model does not need it (values "
                   "below zero are noise, drawn as zero; the JSON keeps them).",
    "treeshap": "Mean absolute TreeSHAP contribution of the {member} member on {rows:,} rows, in its raw units "
                "({unit}).",
    "integrated_gradients": "Mean absolute Integrated Gradients attribution of the {member} member on {rows:,} rows "
                            "({unit}).",
}
def write_html(explanation: Explanation, path: Path) -> Path:
    """Render ``explanation`` and write it to ``path`` atomically (parent folders are created)."""
    return write_page(path, render(explanation))


def render(explanation: Explanation) -> str:
    """The whole page as a string (``templates/explanation.html`` on the shared report shell)."""
    x = explanation
    used = set(x.global_) | {m["method"] for m in x.members}
    reading = [key for key in READING_KEYS if any(u == key or u.startswith(key + "_") for u in used)]
    if any(entry.get("tokens") for entry in x.local):
        reading.append("words")
    return render_page("explanation.html", TEMPLATES, title=x.title, kind="explanation", chips=_chips(x),
                       figures=_global(x) if x.global_ else [], cards=_local(x) if x.local else [],
                       explained=x.explained, reading=reading, max_rows=f"{x.settings.get('max_rows', 0):,}",
                       seed=x.settings.get("seed"), max_words=x.settings.get("max_words"), notes="; ".join(x.notes))


def _chips(x: Explanation) -> list[tuple[str, Any]]:
    task = x.task
    chips = [("Task", _TASK_NAMES.get(task["kind"], task["kind"])), ("Target", task["target"]),
             ("Explained", x.explained), ("Data", x.data), ("Rows explained", len(x.local))]
    if "permutation" in x.methods:
        chips.append(("Rows for global importance", f"{x.methods['permutation']['rows']:,}"))
    chips.append(("Model", " + ".join(f"{m['family']} ×{m['weight']:.2f}" for m in x.members)))
    chips.append(("Generated", generated()))
    return chips


def _global(x: Explanation) -> list[dict[str, Any]]:
    """One full-width bar chart per global method (half-width text is too small)."""
    from takeoff.evaluation.plots import importance_svg

    figures = []
    for method, ranking in x.global_.items():
        info = x.methods.get(method, {})
        # a negative permutation importance is noise (the shuffle happened to help): drawn as 0
        values = {r["column"]: max(r["importance"] or 0.0, 0.0) for r in ranking}
        kind = method if method in _CAPTIONS else method.rsplit("_", 1)[0]
        caption = _CAPTIONS.get(kind, "{unit}").format(**{"repeats": 1, "rows": 0, "member": "", "unit": "", **info})
        title = info.get("name", METHODS.get(kind, method))
        if info.get("member"):
            title += f" ({info['member']})"
        figures.append({"title": title, "caption": caption, "svg": markup(importance_svg(values))})
    return figures


def _local(x: Explanation) -> list[dict[str, Any]]:
    # one colour scale for the words of every row, so that rows compare
    token_scale = max([abs(t["attribution"]) for entry in x.local for tokens in entry.get("tokens", {}).values()
                       for t in tokens if t["attribution"] is not None] + [1e-12])
    return [_row_card(entry, token_scale) for entry in x.local]


def _row_card(entry: dict[str, Any], token_scale: float) -> dict[str, Any]:
    members = entry["members"]
    show_members = len(members) > 1
    scale = max([abs(a["attribution"] or 0.0) for a in entry["attributions"]] + [1e-12])
    by_member = [{a["column"]: a["attribution"] for a in m["attributions"]} for m in members]
    rows = []
    for a in entry["attributions"]:
        value = a.get("value")
        shown = "—" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)
        shown = shown if len(shown) <= VALUE_CHARS else shown[: VALUE_CHARS - 1] + "…"
        attribution = a["attribution"]
        rows.append({"column": a["column"], "value": shown, "attribution": _signed(attribution),
                     "side": None if attribution is None else "pos" if attribution >= 0 else "neg",
                     "width": "" if attribution is None else f"{min(50.0, 50.0 * abs(attribution) / scale):.1f}",
                     "members": [_signed(m.get(a["column"])) for m in by_member] if show_members else []})
    notes = []
    for m in members:
        if m.get("base") is not None:
            notes.append(f"{m['family']}: {m['method'].replace('_', ' ')} from a base of {_num(m['base'])}"
                         + (f" (delta {_num(m['delta'])})" if m.get("delta") is not None else ""))
    images = [{"column": column, "family": found.get("family", "the model"), "overlay": str(found["overlay"])}
              for column, found in entry.get("images", {}).items()
              if str(found.get("overlay", "")).startswith("data:image/png;base64,")]
    return {
        "row": entry["row"], "prediction": entry["prediction"], "output": _num(entry["output"]),
        "what": f"p({entry['explained']})" if entry["explained"] is not None else "value",
        "members": [{"family": m["family"], "weight": f"{m['weight']:.2f}", "method": _method(m["method"])}
                    for m in members] if show_members else [],
        "rows": rows, "note": "; ".join(notes),
        "texts": [{"column": column, "tokens": [_token(t, token_scale) for t in tokens]}
                  for column, tokens in entry.get("tokens", {}).items()],
        "images": images,
    }


def _token(t: dict[str, Any], scale: float) -> dict[str, Any]:
    """A word and its tint: green raises the explained output, red lowers it (None: not scored)."""
    value = t["attribution"]
    if value is None:
        return {"token": t["token"], "rest": True}
    rgb = POSITIVE if value >= 0 else NEGATIVE
    alpha = 0.04 + 0.66 * min(abs(value) / scale, 1.0) if value else 0.0
    return {"token": t["token"], "rest": False, "rgb": ",".join(map(str, rgb)), "alpha": f"{alpha:.2f}",
            "title": _signed(value)}


def _method(method: str) -> str:
    return METHODS.get(method, method).lower() if method != "treeshap" else "TreeSHAP"


def _signed(value: float | None) -> str:
    if value is None:
        return "—"
    return ("+" if value > 0 else "") + _num(value)


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    a = abs(value)
    if a == 0:
        return "0"
    if a < 1e-3 or a >= 1e5:
        return f"{value:.2e}"
    return f"{value:.4g}"
