"""The evaluation report: one self-contained HTML file, and the metrics as JSON.

The HTML has inline CSS and inline SVG charts and references nothing outside itself (no
CDN, no web fonts, no URLs), so it can be mailed, archived or opened offline. Every string
that comes from the user (title, data name, labels, column names, findings, model info) is
HTML-escaped. Files are written atomically: rendered fully in memory first, then written to
a temporary file in the same folder and moved into place, so a failure never leaves a
half-written or clobbered report.
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from takeoff.data.schema import TASKS, Task
from takeoff.errors import UnknownNameError
from takeoff.evaluation import plots
from takeoff.evaluation.metrics import (
    DEFAULT_THRESHOLD,
    PRIMARY_METRIC,
    greater_is_better,
    predicted_codes,
)

MAX_MATRIX_CLASSES = 25  # past this, the confusion matrix shows the top classes + "(other)"

_TASK_NAMES = {
    "binary": "Binary classification",
    "multiclass": "Multiclass classification",
    "multilabel": "Multilabel classification",
    "regression": "Regression",
}
_METRICS = {  # name -> (display name, one-line meaning)
    "roc_auc": ("ROC AUC", "ranking quality; 0.5 is chance"),
    "pr_auc": ("PR AUC", "average precision, positive class"),
    "accuracy": ("Accuracy", "share of rows predicted right"),
    "balanced_accuracy": ("Balanced accuracy", "mean recall over classes"),
    "f1": ("F1", "positive class"),
    "macro_f1": ("Macro F1", "F1 averaged over classes"),
    "micro_f1": ("Micro F1", "F1 over every (row, label) decision"),
    "subset_accuracy": ("Exact match", "share of rows with every label right"),
    "hamming_loss": ("Hamming loss", "share of (row, label) decisions wrong"),
    "log_loss": ("Log loss", "quality of the probabilities"),
    "brier": ("Brier score", "squared probability error"),
    "rmse": ("RMSE", "root mean squared error"),
    "mae": ("MAE", "mean absolute error"),
    "r2": ("R²", "share of variance explained"),
}
_ACRONYMS = {"roc": "ROC", "auc": "AUC", "pr": "PR", "rmse": "RMSE", "mae": "MAE", "f1": "F1",
             "r2": "R²", "cpu": "CPU", "gpu": "GPU", "id": "ID"}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    task: Task,
    metrics: Mapping[str, Any],
    y: np.ndarray | None,
    pred: np.ndarray | None,
    threshold: float | None = None,
    importance: Mapping[str, float] | None = None,
    history: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    findings: Sequence[Mapping[str, Any]] | None = None,
    model_info: Mapping[str, Any] | None = None,
    data_name: str = "",
    images: np.ndarray | None = None,
) -> Path:
    """Write the evaluation report as one self-contained HTML file.

    Sections: header (title, task, data, date), metric cards (primary metric first), charts
    for the task (binary: ROC, precision-recall, calibration, confusion matrix at the
    threshold; multiclass: confusion matrix and per-class table; regression: residual plots),
    feature importance, learning curves, data findings and model details. A section whose
    input is None is left out.

    Args:
        path: where to write the ``.html`` file; parent folders are created.
        title: the report's title, e.g. "Churn model".
        task: the task evaluated.
        metrics: the output of :func:`~takeoff.evaluation.metrics.compute_metrics`.
        y: true class codes or values, shape (n,); with ``pred``, drives the charts.
        pred: probabilities (n, n_classes) or values (n,), as for ``compute_metrics``.
        threshold: binary decision threshold for the confusion matrix; default
            ``metrics["threshold"]``, else 0.5.
        importance: feature name -> importance.
        history: family -> series -> values per iteration, e.g.
            ``{"lightgbm": {"train_loss": [...], "valid_loss": [...]}}``.
        findings: data-check results, dicts with keys check, severity ("error", "warning",
            "info"), column, message, fix. An empty list renders "no issues found".
        model_info: shown as tables: top-level scalars form a summary table; a dict of dicts
            becomes a table with one row per key (e.g. ``{"families": {"lightgbm":
            {"weight": 0.7, "valid_score": 0.91}}}``); a dict of scalars becomes a two-column
            table (e.g. ``{"versions": {"numpy": "2.1"}}``). Keys ending in ``_s`` or
            ``seconds`` are shown as durations.
        data_name: name of the evaluated data (e.g. a file name).
        images: the evaluated rows' decoded images, uint8 (n, channels, h, w), in the order of
            ``y``: adds a grid of the most confidently wrong predictions (classification) or
            the largest errors (regression), each image inlined as a small PNG.

    Returns:
        The path written.

    Raises:
        UnknownNameError: ``task.kind`` is not a known task.
        DataError: ``y``/``pred`` are inconsistent (from the chart functions).

    Example:
        >>> task = Task("regression", "price")
        >>> y, pred = np.array([1.0, 2.0, 3.0]), np.array([1.1, 1.9, 3.2])
        >>> out = write_report("/tmp/doc-report.html", title="Prices", task=task,
        ...                    metrics={"rmse": 0.14}, y=y, pred=pred)
        >>> out.read_text().startswith("<!doctype html>")
        True
    """
    if task.kind not in TASKS:
        raise UnknownNameError("task", task.kind, list(TASKS))
    if threshold is None and task.kind == "binary":
        threshold = float(metrics.get("threshold", DEFAULT_THRESHOLD))
    n_rows = None if y is None else len(y)
    body = [
        _header(title, task, data_name, n_rows),
        _metric_cards(task, metrics),
    ]
    if y is not None and pred is not None:
        body.append(_performance(task, np.asarray(y), np.asarray(pred), threshold, metrics))
    elif task.kind == "multiclass" and "per_class" in metrics:
        body.append(_section("per-class", "Per-class results",
                             _card(_per_class_table(metrics["per_class"]), cls="table-card")))
    elif task.kind == "multilabel" and "per_label" in metrics:
        body.append(_section("per-label", "Per-label results",
                             _card(_per_class_table(metrics["per_label"], "Label"), cls="table-card")))
    if images is not None and y is not None and pred is not None and len(images) == len(y):
        body.append(_mistakes(task, np.asarray(y), np.asarray(pred), images, threshold))
    if importance:
        body.append(_section("importance", "Feature importance", _figure(
            "What drives the predictions",
            f"The inputs the model relies on most (top {min(len(importance), 20)} of "
            f"{len(importance)}).",
            plots.importance_svg(importance), wide=True)))
    if history and any(len(v) for series in history.values() for v in series.values()):
        body.append(_section("learning-curves", "Learning curves", _figure(
            "Training progress",
            "Loss per iteration on training and validation data. The marker is the best "
            "validation point; a widening gap between the lines means overfitting.",
            plots.learning_curve_svg(history), wide=True)))
    if findings is not None:
        body.append(_section("findings", "Data checks", _findings(findings)))
    if model_info:
        body.append(_section("model", "Model", _model_info(model_info)))
    document = _page(title, "\n".join(body))
    return _atomic_write(Path(path), document)


def write_metrics_json(path: str | os.PathLike[str], task: Task,
                       metrics: Mapping[str, Any]) -> Path:
    """Write ``{"task": kind, "metrics": {...}}`` as JSON, atomically.

    Args:
        path: where to write the ``.json`` file; parent folders are created.
        task: the task evaluated.
        metrics: the output of :func:`~takeoff.evaluation.metrics.compute_metrics`; numpy
            scalars are converted, non-finite numbers become null.

    Returns:
        The path written.

    Example:
        >>> p = write_metrics_json("/tmp/doc-metrics.json", Task("regression", "y"),
        ...                        {"rmse": 1.5})
        >>> json.loads(p.read_text())
        {'task': 'regression', 'metrics': {'rmse': 1.5}}
    """
    text = json.dumps({"task": task.kind, "metrics": _jsonable(metrics)}, indent=2,
                      allow_nan=False)
    return _atomic_write(Path(path), text + "\n")


# --- sections -------------------------------------------------------------------------------


def _header(title: str, task: Task, data_name: str, n_rows: int | None) -> str:
    chips = [("Task", _TASK_NAMES[task.kind]), ("Target", task.target)]
    if task.kind == "binary" and len(task.classes) == 2:
        chips.append(("Positive class", task.positive_label))
    elif task.kind == "multiclass":
        chips.append(("Classes", len(task.classes)))
    elif task.kind == "multilabel":
        chips.append(("Labels", len(task.classes)))
    if data_name:
        chips.append(("Data", data_name))
    if n_rows is not None:
        chips.append(("Rows evaluated", f"{n_rows:,}"))
    chips.append(("Generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    chip_html = "".join(f'<span class="chip">{_e(k)} <b>{_e(v)}</b></span>' for k, v in chips)
    return (
        '<header class="top">'
        '<div class="brand"><span class="logo"></span>takeoff · evaluation report</div>'
        f"<h1>{_e(title)}</h1>"
        f'<div class="meta">{chip_html}</div>'
        "</header>"
    )


def _metric_cards(task: Task, metrics: Mapping[str, Any]) -> str:
    primary = PRIMARY_METRIC[task.kind]
    names = [k for k, v in metrics.items() if _is_number(v) and k != "threshold"]
    names.sort(key=lambda k: (k != primary, list(_METRICS).index(k) if k in _METRICS else 99))
    cards = []
    for name in names:
        label, meaning = _METRICS.get(name, (name.replace("_", " ").capitalize(), ""))
        if name == "f1" and task.kind == "binary":
            meaning = f"positive class '{task.positive_label}'"
        try:
            higher = greater_is_better(name)
            arrow = (f'<span class="dir" title="{"higher" if higher else "lower"} is better">'
                     f'{"↑" if higher else "↓"}</span>')
        except UnknownNameError:
            arrow = ""
        hint = meaning
        cls = "card metric primary" if name == primary else "card metric"
        badge = '<span class="tag">primary</span>' if name == primary else ""
        cards.append(
            f'<div class="{cls}"><div class="name">{_e(label)}{arrow}{badge}</div>'
            f'<div class="value">{_e(_fmt_metric(name, metrics[name]))}</div>'
            f'<div class="hint">{_e(hint)}</div></div>'
        )
    note = "↑ higher is better, ↓ lower is better."
    if task.kind == "multilabel":
        note += (" F1, exact match and Hamming loss use each label's own decision threshold (tuned on "
                 "validation for that label's F1; see the per-label table): a row gets a label when "
                 "its probability is at least that label's threshold.")
        if task.kind == "multilabel" and "macro_f1" in metrics:
            note += " Macro F1 averages the labels equally, so rare labels weigh as much as common ones."
    if task.kind == "binary" and _is_number(metrics.get("threshold")):
        note += (f" Accuracy and F1 use the decision threshold "
                 f"<b>{float(metrics['threshold']):.3g}</b>: a row is predicted "
                 f"'{_e(task.positive_label)}' when its probability is at least that.")
    if not cards:
        return ""
    return _section("metrics", "Headline metrics",
                    f'<div class="cards">{"".join(cards)}</div><p class="note">{note}</p>')


def _performance(task: Task, y: np.ndarray, pred: np.ndarray, threshold: float | None,
                 metrics: Mapping[str, Any]) -> str:
    if task.kind == "regression":
        figure = _figure(
            "Prediction errors",
            f"Left: predicted against actual value, one dot per row (up to "
            f"{plots.SCATTER_POINTS:,} shown); the dashed line is a perfect prediction. Right: "
            "the spread of errors, ideally narrow and centred on zero.",
            plots.residuals_svg(y, pred), wide=True, anchor="residuals")
        return _section("performance", "Performance", f'<div class="grid">{figure}</div>')

    if task.kind == "multilabel":
        per_label = metrics.get("per_label") or {}
        return _section("performance", "Per-label results", _card(
            "<p>One row per label, most frequent first. Precision: of the rows given the label, the share "
            "that has it. Recall: of the rows that have it, the share found. Threshold: the probability "
            "from which the label is given.</p>" + _per_class_table(per_label, "Label"), cls="table-card"))

    labels = list(task.classes)
    codes = predicted_codes(task, pred, threshold)
    y = y.astype(np.int64)
    figures = []
    if task.kind == "binary":
        p_pos = pred[:, 1] if pred.ndim == 2 else pred
        positive = task.positive_label
        if y.min() != y.max():
            figures.append(_figure(
                "ROC curve",
                "How well the model ranks positives above negatives, over every threshold. "
                "Closer to the top-left corner is better; the diagonal is guessing.",
                plots.roc_curve_svg(y, p_pos, threshold), anchor="roc"))
            figures.append(_figure(
                "Precision and recall",
                f"Of the rows flagged '{positive}', how many are right (precision), and how "
                "many of all positives are found (recall), over every threshold.",
                plots.pr_curve_svg(y, p_pos, threshold), anchor="pr"))
        else:
            figures.append(_empty_figure(
                "ROC and precision-recall curves",
                "Not shown: the evaluated rows hold only one class, so ranking curves are "
                "undefined. Evaluate on more rows.", anchor="roc"))
        figures.append(_figure(
            "Calibration",
            "Do the probabilities mean what they say? On the diagonal, rows given 30% are "
            "positive 30% of the time. Below: where each class's scores fall.",
            plots.calibration_svg(y, p_pos), anchor="calibration"))
        figures.append(_figure(
            "Confusion matrix",
            f"Rows are the actual class, columns the prediction at threshold {threshold:.3g}. "
            "Colour is the share of the actual class.",
            plots.confusion_matrix_svg(y, codes, labels), anchor="confusion"))
        return _section("performance", "Performance", f'<div class="grid">{"".join(figures)}</div>')

    shown_y, shown_codes, shown_labels, note = _top_classes(y, codes, labels)
    figures.append(_figure(
        "Confusion matrix",
        "Rows are the actual class, columns the predicted one (the most probable class). "
        f"Colour is the share of the actual class.{note}",
        plots.confusion_matrix_svg(shown_y, shown_codes, shown_labels), anchor="confusion",
        wide=len(labels) > 6))
    per_class = metrics.get("per_class")
    if per_class:
        figures.append(
            f'<div class="card figure table-card{" wide" if len(labels) > 6 else ""}" '
            f'id="per-class"><h3>Per-class results</h3>'
            "<p>Precision: of the rows predicted as the class, the share that is right. Recall: "
            "of the rows of the class, the share found.</p>"
            f"{_per_class_table(per_class)}</div>")
    return _section("performance", "Performance", f'<div class="grid">{"".join(figures)}</div>')


MISTAKES_SHOWN = 12


def _mistakes(task: Task, y: np.ndarray, pred: np.ndarray, images: np.ndarray, threshold: float | None) -> str:
    """A grid of the rows the model got most confidently wrong, with their images."""
    if task.kind == "multilabel":
        return ""  # a row is rarely all right or all wrong; the per-label table says where it errs
    if task.kind == "regression":
        error = np.abs(pred.astype(np.float64) - y.astype(np.float64))
        order = np.argsort(-error, kind="stable")[:MISTAKES_SHOWN]
        captions = [f"actual {_fmt_number(float(y[i]))} · predicted {_fmt_number(float(pred[i]))}" for i in order]
        title, caption = "Largest errors", "The rows with the largest absolute error, largest first."
    else:
        labels = list(task.classes)
        codes = predicted_codes(task, pred, threshold)
        proba = pred if pred.ndim == 2 else np.stack([1 - pred, pred], axis=1)
        wrong = np.flatnonzero(codes != y.astype(np.int64))
        if not len(wrong):
            return _section("mistakes", "Confident mistakes", _card(
                '<p class="empty-note">Every evaluated image is classified correctly.</p>'))
        confidence = proba[wrong, codes[wrong]]
        order = wrong[np.argsort(-confidence, kind="stable")][:MISTAKES_SHOWN]
        captions = [f"actual {labels[int(y[i])]} · predicted {labels[int(codes[i])]} ({proba[i, codes[i]]:.0%})"
                    for i in order]
        title = "Most confident mistakes"
        caption = (f"{len(wrong):,} of {len(y):,} images are misclassified; the {len(order)} the model was surest "
                   "about are shown, surest first. Wrong labels in the data often show up here.")
    from takeoff.data.images import picture, png_data_uri

    cells = "".join(
        f'<figure class="thumb"><img alt="{_e(text)}" src="{png_data_uri(picture(images[i], 96))}">'
        f"<figcaption>{_e(text)}</figcaption></figure>"
        for i, text in zip(order, captions)
    )
    return _section("mistakes", title, f'<div class="card figure wide"><p>{_e(caption)}</p>'
                                       f'<div class="thumbs">{cells}</div></div>')


def _top_classes(y: np.ndarray, codes: np.ndarray, labels: list[Any]):
    """Limit a big confusion matrix to the most frequent classes plus '(other)'."""
    k = len(labels)
    if k <= MAX_MATRIX_CLASSES:
        return y, codes, labels, ""
    keep = np.argsort(-np.bincount(y, minlength=k), kind="stable")[: MAX_MATRIX_CLASSES - 1]
    remap = np.full(k, MAX_MATRIX_CLASSES - 1)
    remap[keep] = np.arange(len(keep))
    note = (f" Showing the {len(keep)} most frequent of {k} classes; the rest are grouped as "
            "'(other)'.")
    return remap[y], remap[codes], [labels[i] for i in keep] + ["(other)"], note


def _per_class_table(per_class: Mapping[str, Mapping[str, Any]], heading: str = "Class") -> str:
    rows = []
    with_threshold = any("threshold" in row for row in per_class.values())
    items = per_class.items()
    if with_threshold:  # labels: most frequent first
        items = sorted(items, key=lambda kv: -int(kv[1].get("support", 0)))
    for label, row in items:
        f1 = float(row.get("f1", 0.0))
        extra = f'<td class="num">{float(row["threshold"]):.3g}</td>' if with_threshold else ""
        rows.append(
            f"<tr><td>{_e(label)}</td>"
            f'<td class="num">{float(row.get("precision", 0.0)):.3f}</td>'
            f'<td class="num">{float(row.get("recall", 0.0)):.3f}</td>'
            f'<td class="num"><span class="bar"><i style="width:{100 * f1:.0f}%"></i></span>'
            f"{f1:.3f}</td>"
            f'<td class="num">{int(row.get("support", 0)):,}</td>{extra}</tr>')
    threshold_head = '<th class="num">Threshold</th>' if with_threshold else ""
    return (f'<table><thead><tr><th>{_e(heading)}</th><th class="num">Precision</th>'
            '<th class="num">Recall</th><th class="num">F1</th><th class="num">Rows</th>'
            f'{threshold_head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _findings(findings: Sequence[Any]) -> str:
    if not findings:
        return ('<div class="card empty"><span class="badge ok">OK</span> All data checks '
                "passed: no issues found.</div>")

    def get(f: Any, key: str) -> Any:
        value = f.get(key) if isinstance(f, Mapping) else getattr(f, key, None)
        return "" if value is None else value

    ordered = sorted(findings, key=lambda f: _SEVERITY_ORDER.get(str(get(f, "severity")), 3))
    counts: dict[str, int] = {}
    rows = []
    for f in ordered:
        severity = str(get(f, "severity")).lower() or "info"
        counts[severity] = counts.get(severity, 0) + 1
        badge = severity if severity in _SEVERITY_ORDER else "info"
        column = get(f, "column")
        rows.append(
            f'<tr><td><span class="badge {badge}">{_e(severity)}</span></td>'
            f"<td>{_e(get(f, 'check'))}</td>"
            f"<td>{f'<code>{_e(column)}</code>' if column != '' else '—'}</td>"
            f"<td>{_e(get(f, 'message'))}</td>"
            f'<td class="fix">{_e(get(f, "fix"))}</td></tr>')
    summary = " · ".join(f"{n} {_e(s)}{'s' if n != 1 else ''}" for s, n in counts.items())
    return (f'<p class="note">{summary}</p>'
            '<div class="card table-card"><table><thead><tr><th>Severity</th><th>Check</th>'
            "<th>Column</th><th>Finding</th><th>Suggested fix</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _model_info(info: Mapping[str, Any]) -> str:
    summary, blocks = [], []
    for key, value in info.items():
        if isinstance(value, Mapping) and value and all(isinstance(v, Mapping)
                                                       for v in value.values()):
            columns: list[str] = []
            for row in value.values():
                columns += [c for c in row if c not in columns]
            head = "".join(f'<th class="num">{_e(_humanize(c))}</th>' for c in columns)
            body = "".join(
                f"<tr><td>{_e(name)}</td>"
                + "".join(f'<td class="num">{_e(_fmt_value(c, row.get(c)))}</td>' for c in columns)
                + "</tr>" for name, row in value.items())
            blocks.append(_table_card(_humanize(key), f"<thead><tr><th>Name</th>{head}</tr></thead>"
                                      f"<tbody>{body}</tbody>", wide=True))
        elif isinstance(value, Mapping):
            body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(_fmt_value(k, v))}</td></tr>"
                           for k, v in value.items())
            blocks.append(_table_card(_humanize(key), f"<tbody>{body}</tbody>"))
        elif (isinstance(value, Sequence) and not isinstance(value, str) and value
              and all(isinstance(v, Mapping) for v in value)):
            blocks.append(_model_info({key: {str(i + 1): v for i, v in enumerate(value)}}))
        else:
            summary.append((key, value))
    if summary:
        body = "".join(f"<tr><td>{_e(_humanize(k))}</td><td>{_e(_fmt_value(k, v))}</td></tr>"
                       for k, v in summary)
        blocks.insert(0, _table_card("Summary", f"<tbody>{body}</tbody>"))
    blocks.sort(key=lambda b: ' wide"' in b[:60])  # half-width cards pair up first
    return f'<div class="grid tables">{"".join(blocks)}</div>'


def _table_card(title: str, inner: str, wide: bool = False) -> str:
    return (f'<div class="card table-card{" wide" if wide else ""}"><h3>{_e(title)}</h3>'
            f'<table class="kv">{inner}</table></div>')


# --- building blocks ------------------------------------------------------------------------


def _section(anchor: str, title: str, inner: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{inner}</section>'


def _card(inner: str, cls: str = "") -> str:
    return f'<div class="card {cls}">{inner}</div>'


def _figure(title: str, caption: str, svg: str, wide: bool = False, anchor: str = "") -> str:
    ident = f' id="{anchor}"' if anchor else ""
    cls = "card figure wide" if wide else "card figure"
    return f'<figure class="{cls}"{ident}><h3>{_e(title)}</h3><p>{_e(caption)}</p>{svg}</figure>'


def _empty_figure(title: str, message: str, anchor: str = "") -> str:
    ident = f' id="{anchor}"' if anchor else ""
    return (f'<figure class="card figure"{ident}><h3>{_e(title)}</h3>'
            f'<p class="empty-note">{_e(message)}</p></figure>')


def _page(title: str, body: str) -> str:
    from takeoff._version import __version__

    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · takeoff report</title>"
        f"<style>{_CSS}</style></head>\n"
        f'<body><main class="page">\n{body}\n'
        f"<footer>Made with takeoff {_e(__version__)}. This file is self-contained: it loads "
        "nothing from the network.</footer></main></body></html>\n"
    )


def _atomic_write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); a report is meant to be shared.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- formatting -----------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool) and math.isfinite(float(value))


def _fmt_metric(name: str, value: float) -> str:
    value = float(value)
    if name in ("rmse", "mae"):
        return _fmt_number(value)
    return f"{value:.3f}" if abs(value) < 100 else _fmt_number(value)


def _fmt_number(value: float) -> str:
    a = abs(value)
    if a == 0:
        return "0"
    if a >= 1e6 or a < 1e-3:
        return f"{value:.3e}"
    if a >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _fmt_value(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    lowered = str(key).lower()
    if _is_number(value) and (lowered.endswith("_s") or "seconds" in lowered
                              or lowered in ("time", "duration")):
        return _fmt_duration(float(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if _is_number(value):
        return _fmt_number(float(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt_value("", v) for v in value)
    return str(value)


def _fmt_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _humanize(key: Any) -> str:
    text = str(key)
    for suffix in ("_seconds", "_s"):  # the value is shown as a duration
        if text.lower().endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            text += "" if "time" in text.lower() else "_time"
    text = " ".join(_ACRONYMS.get(w.lower(), w) for w in text.replace("_", " ").split())
    return text[:1].upper() + text[1:]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


_CSS = """
:root{--bg:#f5f6fa;--card:#fff;--text:#0f172a;--body:#1e293b;--muted:#64748b;--faint:#94a3b8;
--line:#e5e8ef;--accent:#4f46e5;--accent2:#0ea5e9;--radius:14px}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--body);
font:15px/1.55 Inter,-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,
sans-serif;-webkit-font-smoothing:antialiased}
.page{max-width:1160px;margin:0 auto;padding:44px 28px 40px}
.top{padding-bottom:8px}
.brand{display:inline-flex;align-items:center;gap:9px;font-size:12px;font-weight:700;
letter-spacing:.08em;text-transform:uppercase;color:var(--accent)}
.logo{width:20px;height:20px;border-radius:6px;
background:linear-gradient(135deg,var(--accent),var(--accent2))}
h1{font-size:32px;line-height:1.15;margin:12px 0 14px;color:var(--text);letter-spacing:-.025em}
h2{font-size:19px;margin:0 0 14px;color:var(--text);letter-spacing:-.015em}
h3{font-size:15px;margin:0;color:var(--text);letter-spacing:-.01em}
.meta{display:flex;flex-wrap:wrap;gap:8px}
.chip{background:var(--card);border:1px solid var(--line);border-radius:999px;padding:4px 12px;
font-size:13px;color:var(--muted)}
.chip b{color:var(--body);font-weight:600;margin-left:2px}
section{margin-top:38px}
.card{background:var(--card);border:1px solid var(--line);border-radius:var(--radius);
box-shadow:0 1px 2px rgba(15,23,42,.04),0 4px 14px rgba(15,23,42,.03)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(168px,1fr));gap:14px}
.metric{padding:16px 18px 15px;display:flex;flex-direction:column}
.metric .name{font-size:13px;font-weight:600;color:var(--muted);display:flex;
align-items:center;gap:8px}
.metric .value{font-size:28px;font-weight:700;color:var(--text);letter-spacing:-.02em;
font-variant-numeric:tabular-nums;margin:4px 0 2px;line-height:1.2}
.metric .hint{font-size:12px;color:var(--faint);line-height:1.35}
.metric.primary{grid-column:span 2;grid-row:span 2;justify-content:center;border:none;
background:linear-gradient(135deg,#4338ca 0%,var(--accent) 45%,var(--accent2) 100%);
box-shadow:0 8px 24px rgba(79,70,229,.25)}
.metric.primary .name,.metric.primary .hint{color:rgba(255,255,255,.82)}
.metric.primary .value{color:#fff;font-size:46px}
.dir{font-size:12px;color:var(--faint);font-weight:500;margin-left:-4px}
.metric.primary .dir{color:rgba(255,255,255,.7)}
.tag{margin-left:auto;font-size:10px;font-weight:700;letter-spacing:.06em;text-transform:uppercase;
background:rgba(255,255,255,.2);color:#fff;border-radius:999px;padding:1px 8px}
.note{font-size:13px;color:var(--muted);margin:12px 2px 0}
.note b{color:var(--body)}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:18px}
.grid.tables{align-items:start}
.figure{margin:0;padding:20px 22px 16px}
.figure.wide,.table-card.wide{grid-column:1/-1}
.figure p{font-size:13px;color:var(--muted);margin:4px 0 12px;max-width:72ch}
.empty-note{padding:24px 0}
svg.chart{display:block;width:100%;height:auto}
.figure.wide svg.chart{margin:0 auto}
.table-card{overflow-x:auto}
.table-card h3{padding:16px 18px 6px}
.figure.table-card{padding:20px 0 8px}
.thumbs{display:grid;grid-template-columns:repeat(auto-fill,minmax(120px,1fr));gap:12px}
.thumb{margin:0;text-align:center}
.thumb img{width:96px;height:96px;object-fit:contain;border-radius:6px;background:#f1f3f8;image-rendering:pixelated}
.thumb figcaption{font-size:12px;color:var(--muted);margin-top:4px;line-height:1.3}
.figure.table-card h3,.figure.table-card p{padding:0 22px}
table{width:100%;border-collapse:collapse;font-size:14px}
th{text-align:left;font-size:11.5px;font-weight:600;letter-spacing:.05em;text-transform:uppercase;
color:var(--muted);padding:10px 16px;border-bottom:1px solid var(--line);background:#fafbfd}
td{padding:10px 16px;border-bottom:1px solid var(--line);vertical-align:top}
tbody tr:last-child td{border-bottom:none}
tbody tr:hover td{background:#fafbff}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv td:first-child{color:var(--muted);width:42%}
td.fix{color:var(--muted)}
.bar{display:inline-block;width:54px;height:6px;border-radius:3px;background:#eef0f6;
margin-right:10px;vertical-align:middle;overflow:hidden}
.bar i{display:block;height:100%;background:linear-gradient(90deg,var(--accent),var(--accent2))}
.badge{display:inline-block;padding:2px 9px;border-radius:999px;font-size:12px;font-weight:600;
text-transform:capitalize}
.badge.error{background:#fee2e2;color:#b91c1c}
.badge.warning{background:#fef3c7;color:#b45309}
.badge.info{background:#e0f2fe;color:#0369a1}
.badge.ok{background:#dcfce7;color:#15803d;margin-right:8px}
.empty{padding:16px 18px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f5f9;
color:var(--body);padding:2px 6px;border-radius:5px;word-break:break-all}
footer{margin-top:52px;padding-top:18px;border-top:1px solid var(--line);text-align:center;
font-size:12px;color:var(--faint)}
@media (max-width:820px){.grid{grid-template-columns:minmax(0,1fr)}
.metric.primary{grid-column:1/-1;grid-row:auto}.page{padding:28px 16px}h1{font-size:26px}}
@media print{body{background:#fff;font-size:12px}.page{max-width:none;padding:0}
.card{box-shadow:none;break-inside:avoid}.metric.primary{-webkit-print-color-adjust:exact;
print-color-adjust:exact}section{margin-top:24px}h2{break-after:avoid}
tbody tr:hover td{background:none}}
"""


# --- recommendation -------------------------------------------------------------------------


def write_recommend_report(path: str | os.PathLike[str], *, title: str, metrics: Mapping[str, Any],
                           leaderboard: Mapping[str, Mapping[str, Any]], buckets: Sequence[Mapping[str, Any]],
                           info: Mapping[str, Any], data_name: str) -> Path:
    """A self-contained HTML report of a recommender: headline ranking metrics on the held-out
    interactions, every family tried, and the metrics by user activity."""
    chips = [("Task", "Recommendation"), ("Data", data_name),
             ("Users evaluated", f"{int(metrics.get('users', 0)):,}"),
             ("Generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))]
    chip_html = "".join(f'<span class="chip">{_e(k)} <b>{_e(v)}</b></span>' for k, v in chips)
    header = ('<header class="top"><div class="brand"><span class="logo"></span>takeoff · evaluation report</div>'
              f'<h1>{_e(title)}</h1><div class="meta">{chip_html}</div></header>')
    meanings = {"hr": "share of users whose held-out item is in their top K",
                "ndcg": "like HR, but a hit counts more the higher it is ranked",
                "map": "mean average precision of the top K",
                "coverage": "share of the catalogue recommended to someone"}
    cards = []
    for name, value in metrics.items():
        if not _is_number(value) or name == "users":
            continue
        kind = name.split("@")[0]
        primary = kind == "ndcg"
        cards.append(
            f'<div class="card metric{" primary" if primary else ""}"><div class="name">{_e(name.upper())}'
            f'<span class="dir" title="higher is better">↑</span>{"<span class=tag>primary</span>" if primary else ""}</div>'
            f'<div class="value">{float(value):.4f}</div><div class="hint">{_e(meanings.get(kind, ""))}</div></div>')
    body = header + _section("metrics", "Headline metrics", f'<div class="cards">{"".join(cards)}</div>'
                             '<p class="note">Each user\'s last interaction was held out; every item the user had '
                             "not seen in training was ranked.</p>")
    body += _section("families", "Families tried (validation)", _model_info({"leaderboard": dict(leaderboard)}))
    if buckets:
        body += _section("activity", "By user activity (training interactions)",
                         _model_info({"buckets": {str(b["bucket"]): {k: v for k, v in b.items() if k != "bucket"}
                                                  for b in buckets}}))
    body += _section("model", "Model", _model_info(info))
    return _atomic_write(Path(path), _page(title, body))
