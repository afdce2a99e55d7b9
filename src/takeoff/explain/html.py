"""The explanation as one self-contained HTML page, in the style of the evaluation report.

Global importances are inline SVG bar charts (:func:`takeoff.evaluation.plots.importance_svg`);
each explained row is a table of its attributions with a diverging bar (green raises the
explained output, red lowers it), one column per blend member, and its text columns with
each word's background tinted by its attribution. User strings are HTML-escaped; the file
is written atomically.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from takeoff.bundle import write_atomic
from takeoff.explain.explanation import METHODS, Explanation

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
_READING = {
    "permutation": "<b>Permutation importance</b> shuffles one input column at a time and measures how much "
                   "the model's score drops (or, without the target in the data, how much its output moves). "
                   "It sees the model as a black box, so it works for every family.",
    "treeshap": "<b>TreeSHAP</b> (LightGBM's exact Shapley values) splits each prediction of the trees into one "
                "contribution per column; with the expected value they add up to the raw score (the log-odds "
                "for binary). Per row they are rescaled linearly into probabilities, so that they add up to the "
                "probability minus the probability at the expected score.",
    "integrated_gradients": "<b>Integrated Gradients</b> (Captum) integrates the network's gradient along the "
                            "straight line from an average row (numbers at their training mean, categories at "
                            "their average embedding) to the row; the attributions add up to the output minus "
                            "the output of that average row (the small rest is reported as delta).",
    "occlusion": "<b>Column occlusion</b> (text families) blanks one column of the row (as a missing value) and "
                 "reports how much the output falls; these need not add up to anything.",
    "words": "<b>Word attributions</b> remove one word of the text at a time and report how much the output "
             "falls without it: green words raise the explained output, red words lower it.",
}


def write_html(explanation: Explanation, path: Path) -> Path:
    """Render ``explanation`` and write it to ``path`` (parent folders are created)."""
    document = render(explanation)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: tmp.write_text(document, encoding="utf-8"))
    return path


def render(explanation: Explanation) -> str:
    """The whole page as a string."""
    from takeoff._version import __version__
    from takeoff.evaluation.report import _CSS  # one look for every takeoff report

    body = [_header(explanation)]
    if explanation.global_:
        body.append(_global(explanation))
    if explanation.local:
        body.append(_local(explanation))
    body.append(_reading(explanation))
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(explanation.title)} · takeoff explanation</title>"
        f"<style>{_CSS}{_EXTRA_CSS}</style></head>\n"
        f'<body><main class="page">\n{"".join(body)}\n'
        f"<footer>Made with takeoff {_e(__version__)}. This file is self-contained: it loads nothing "
        "from the network.</footer></main></body></html>\n"
    )


def _header(x: Explanation) -> str:
    task = x.task
    chips = [("Task", _TASK_NAMES.get(task["kind"], task["kind"])), ("Target", task["target"]),
             ("Explained", x.explained), ("Data", x.data), ("Rows explained", len(x.local))]
    if "permutation" in x.methods:
        chips.append(("Rows for global importance", f"{x.methods['permutation']['rows']:,}"))
    chips.append(("Model", " + ".join(f"{m['family']} ×{m['weight']:.2f}" for m in x.members)))
    chips.append(("Generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    chip_html = "".join(f'<span class="chip">{_e(k)} <b>{_e(v)}</b></span>' for k, v in chips)
    return ('<header class="top"><div class="brand"><span class="logo"></span>takeoff · explanation</div>'
            f'<h1>{_e(x.title)}</h1><div class="meta">{chip_html}</div></header>')


def _global(x: Explanation) -> str:
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
        # each chart full width: importance_svg draws for a wide card (half-width text is too small)
        figures.append(f'<figure class="card figure wide"><h3>{_e(title)}</h3>'
                       f"<p>{_e(caption)}</p>{importance_svg(values)}</figure>")
    return _section("global", "What drives the predictions overall", f'<div class="grid">{"".join(figures)}</div>')


def _local(x: Explanation) -> str:
    # one colour scale for the words of every row, so that rows compare
    token_scale = max([abs(t["attribution"]) for entry in x.local for tokens in entry.get("tokens", {}).values()
                       for t in tokens if t["attribution"] is not None] + [1e-12])
    cards = [_row_card(x, entry, token_scale) for entry in x.local]
    intro = (f'<p class="note">Attributions are in the {_e(x.explained)}: green raises it, red lowers it. '
             "The model column is the weighted sum of the members' columns.</p>")
    return _section("rows", "Row by row", intro + "".join(cards))


def _row_card(x: Explanation, entry: dict[str, Any], token_scale: float) -> str:
    output = entry["output"]
    what = f"p({entry['explained']})" if entry["explained"] is not None else "value"
    heading = (f"Row {entry['row']} — predicted <b>{_e(entry['prediction'])}</b>"
               f'<span class="sub">{_e(what)} = {_e(_num(output))}</span>')
    members = entry["members"]
    show_members = len(members) > 1
    scale = max([abs(a["attribution"] or 0.0) for a in entry["attributions"]] + [1e-12])
    head = "<th>Column</th><th>Value</th><th>Attribution</th>"
    if show_members:
        head += "".join(f'<th class="num">{_e(m["family"])} ×{m["weight"]:.2f}<br><small>{_e(_method(m["method"]))}'
                        "</small></th>" for m in members)
    by_member = [{a["column"]: a["attribution"] for a in m["attributions"]} for m in members]
    body = []
    for a in entry["attributions"]:
        value = a.get("value")
        shown = "—" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)
        shown = shown if len(shown) <= VALUE_CHARS else shown[: VALUE_CHARS - 1] + "…"
        cells = (f"<td>{_e(a['column'])}</td><td class=\"value\">{_e(shown)}</td>"
                 f'<td class="num">{_bar(a["attribution"], scale)}{_e(_signed(a["attribution"]))}</td>')
        if show_members:
            cells += "".join(f'<td class="num">{_e(_signed(m.get(a["column"])))}</td>' for m in by_member)
        body.append(f"<tr>{cells}</tr>")
    notes = []
    for m in members:
        if m.get("base") is not None:
            notes.append(f"{m['family']}: {m['method'].replace('_', ' ')} from a base of {_num(m['base'])}"
                         + (f" (delta {_num(m['delta'])})" if m.get("delta") is not None else ""))
    note = f'<p class="note">{_e("; ".join(notes))}.</p>' if notes else ""
    texts = "".join(_tokens(column, tokens, token_scale) for column, tokens in entry.get("tokens", {}).items())
    images = "".join(_saliency(column, found) for column, found in entry.get("images", {}).items())
    return (f'<div class="card row-card"><h3>{heading}</h3>'
            f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
            f"{note}{texts}{images}</div>")


def _saliency(column: str, found: dict[str, Any]) -> str:
    """The image with its saliency overlay (already a data: URI made by the explainer)."""
    overlay = str(found.get("overlay", ""))
    if not overlay.startswith("data:image/png;base64,"):
        return ""
    return (f'<div class="saliency"><h4>{_e(column)} — where {_e(found.get("family", "the model"))} looked</h4>'
            f'<img src="{_e(overlay)}" alt="saliency map of {_e(column)}" width="160" height="160">'
            "<p>Red: the pixels that moved the explained output most (Integrated Gradients from a grey "
            "image; absolute values, the row's largest at full colour).</p></div>")


def _tokens(column: str, tokens: list[dict[str, Any]], scale: float) -> str:
    spans = []
    for t in tokens:
        value = t["attribution"]
        if value is None:
            spans.append(f'<span class="rest">{_e(t["token"])}</span>')
            continue
        rgb = POSITIVE if value >= 0 else NEGATIVE
        alpha = 0.04 + 0.66 * min(abs(value) / scale, 1.0) if value else 0.0
        spans.append(f'<span class="tok" style="background:rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.2f})" '
                     f'title="{_e(_signed(value))}">{_e(t["token"])}</span>')
    return f'<div class="tokens"><h4>{_e(column)}</h4><p>{" ".join(spans)}</p></div>'


def _reading(x: Explanation) -> str:
    used = set(x.global_) | {m["method"] for m in x.members}
    items = [text for key, text in _READING.items() if any(u == key or u.startswith(key + "_") for u in used)]
    if any(entry.get("tokens") for entry in x.local):
        items.append(_READING["words"])
    cap = x.settings.get("max_words")
    items.append(f"A blend's attribution of a column is the weighted sum of its members' (weights as in the "
                 f"header). Limits: global importance uses at most {x.settings.get('max_rows', 0):,} rows "
                 f"(seed {x.settings.get('seed')}); word attributions cover the first {cap} words of a text.")
    if x.notes:
        items.append("Data notes: " + html.escape("; ".join(x.notes)))
    return _section("reading", "How to read this", "<ul class=\"reading\">" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


def _bar(value: float | None, scale: float) -> str:
    if value is None:
        return '<span class="dbar"></span>'
    width = min(50.0, 50.0 * abs(value) / scale)
    side = "pos" if value >= 0 else "neg"
    return f'<span class="dbar"><i class="{side}" style="width:{width:.1f}%"></i></span>'


def _method(method: str) -> str:
    return METHODS.get(method, method).lower() if method != "treeshap" else "TreeSHAP"


def _section(anchor: str, title: str, inner: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{inner}</section>'


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


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_EXTRA_CSS = """
.row-card{padding:18px 0 10px;margin-bottom:18px}
.row-card h3,.row-card .note,.row-card .tokens{padding:0 22px}
.row-card h3 b{color:var(--accent)}
.row-card h3 .sub{margin-left:12px;font-size:13px;font-weight:500;color:var(--muted)}
.table-wrap{overflow-x:auto;margin-top:10px}
td.value{max-width:320px;overflow-wrap:anywhere;color:var(--muted)}
th small{font-weight:500;text-transform:none;letter-spacing:0}
.dbar{position:relative;display:inline-block;width:110px;height:8px;border-radius:4px;background:#eef0f6;
margin-right:10px;vertical-align:middle}
.dbar:after{content:"";position:absolute;left:50%;top:-3px;bottom:-3px;width:1px;background:#cbd5e1}
.dbar i{position:absolute;top:0;bottom:0;border-radius:4px}
.dbar i.pos{left:50%;background:#10b981}
.dbar i.neg{right:50%;background:#e11d48}
.tokens h4{margin:14px 0 4px;font-size:13px;color:var(--muted)}
.saliency{padding:0 22px 14px}
.saliency h4{margin:14px 0 6px;font-size:13px;color:var(--muted)}
.saliency img{border-radius:8px;image-rendering:pixelated;background:#f1f3f8}
.saliency p{font-size:12.5px;color:var(--muted);margin:6px 0 0;max-width:72ch}
.tokens p{line-height:2.1;margin:0 0 8px}
.tok{padding:2px 3px;border-radius:4px}
.rest{color:var(--faint)}
ul.reading{font-size:14px;color:var(--body);max-width:90ch}
ul.reading li{margin-bottom:8px}
"""
