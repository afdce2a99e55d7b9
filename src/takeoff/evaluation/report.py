"""The evaluation report: one self-contained HTML file, and the metrics as JSON.

The HTML has inline CSS and inline SVG charts and references nothing outside itself (no
CDN, no web fonts, no URLs), so it can be mailed, archived or opened offline. The page is the
``evaluation.html`` template (``evaluation/templates/``); this module computes what it shows.
Every string that comes from the user (title, data name, labels, column names, findings, model
info) is HTML-escaped by the template. Files are written atomically: rendered fully in memory
first, then written to a temporary file in the same folder and moved into place, so a failure
never leaves a half-written or clobbered report.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from takeoff.data.schema import TASKS, Task
from takeoff.errors import UnknownNameError
from takeoff.evaluation import plots
from takeoff.evaluation.formatting import fmt_metric, fmt_number, info_tables, is_number
from takeoff.evaluation.html import generated, markup, render, write_page
from takeoff.evaluation.metrics import (
    DEFAULT_THRESHOLD,
    PRIMARY_METRIC,
    greater_is_better,
    predicted_codes,
)

MAX_MATRIX_CLASSES = 25  # past this, the confusion matrix shows the top classes + "(other)"
MISTAKES_SHOWN = 12

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
    fairness: Mapping[str, Any] | None = None,
    privacy: Mapping[str, Any] | None = None,
    card: str | None = None,
    sections: Sequence[Mapping[str, Any]] = (),
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
        fairness: the fairness audit (the manifest's ``fairness``): warnings, a per-group
            chart per sensitive column, parity differences and ratios, the mitigation's cost.
        privacy: the DP-SGD accounting (the manifest's ``privacy.dp``).
        card: the model card (Markdown), shown as the last section.
        sections: more sections, before the model details: dicts with ``anchor``, ``title``
            and ``html`` (trusted markup made by takeoff, e.g. a search's trials).

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
    has_predictions = y is not None and pred is not None
    context: dict[str, Any] = {
        "title": title, "kind": "report", "task": task.kind, "chips": _chips(task, data_name, None if y is None else len(y)),
        "positive": task.positive_label if task.kind == "binary" else "",
        "performance": None, "class_rows": None, "mistakes": None, "importance": None,
        "learning_curves": None, "findings": None, "model_tables": None,
        "fairness": _fairness(fairness) if fairness else None,
        "privacy": info_tables({"differential privacy (DP-SGD)": dict(privacy)}) if privacy else None,
        **_metric_cards(task, metrics),
    }
    if has_predictions:
        context["performance"] = _performance(task, np.asarray(y), np.asarray(pred), threshold, metrics)
    elif task.kind == "multiclass" and "per_class" in metrics:
        context["class_rows"] = {"anchor": "per-class", "title": "Per-class results", "heading": "Class",
                                 "rows": _class_rows(metrics["per_class"])}
    elif task.kind == "multilabel" and "per_label" in metrics:
        context["class_rows"] = {"anchor": "per-label", "title": "Per-label results", "heading": "Label",
                                 "rows": _class_rows(metrics["per_label"])}
    if images is not None and has_predictions and len(images) == len(y):
        context["mistakes"] = _mistakes(task, np.asarray(y), np.asarray(pred), images, threshold)
    if importance:
        context["importance"] = {"shown": min(len(importance), 20), "total": len(importance),
                                 "svg": markup(plots.importance_svg(importance))}
    if history and any(len(v) for series in history.values() for v in series.values()):
        context["learning_curves"] = markup(plots.learning_curve_svg(history))
    if findings is not None:
        context["findings"] = _findings(findings)
    if model_info:
        context["model_tables"] = info_tables(model_info)
    context["card"] = _card_html(card) if card else None
    context["sections"] = [{**s, "html": markup(s["html"])} for s in sections]
    return write_page(path, render("evaluation.html", **context))


def _fairness(audit: Mapping[str, Any]) -> dict[str, Any]:
    """The fairness section: warnings, one per-group chart per sensitive column, tables."""
    figures = []
    for column, records in audit.get("groups", {}).items():
        if not records:
            continue
        metrics = [m for m in ("selection_rate", "true_positive_rate", "false_positive_rate") if m in records[0]]
        metrics = metrics or [m for m in records[0] if m not in ("group", "count")][:3]
        figures.append({"title": f"By {column}", "svg": markup(plots.group_metrics_svg(records, metrics, column)),
                        "caption": "Each group's rates on the scored rows; the four-fifths rule compares the lowest "
                                   "with the highest."})
    tables: dict[str, Any] = {}
    if audit.get("differences"):
        tables["differences between groups"] = dict(audit["differences"])
    if audit.get("ratios"):
        tables["ratios between groups (below 0.8 fails the four-fifths rule)"] = dict(audit["ratios"])
    for column, records in audit.get("groups", {}).items():
        tables[f"per group of {column}"] = {r["group"]: {k: v for k, v in r.items() if k != "group"} for r in records}
    mitigation = audit.get("mitigation")
    if mitigation:
        cost = mitigation.get("cost", {})
        tables[f"threshold mitigation ({mitigation.get('constraint')}): before and after"] = {
            k: cost[k] for k in ("before", "after") if k in cost}
    return {"warnings": list(audit.get("warnings", [])), "figures": figures, "tables": info_tables(tables),
            "used_as_features": audit.get("used_as_features", False), "sensitive": audit.get("sensitive", [])}


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
    return write_page(path, text + "\n")


# --- what the template shows ----------------------------------------------------------------


def _chips(task: Task, data_name: str, n_rows: int | None) -> list[tuple[str, Any]]:
    chips: list[tuple[str, Any]] = [("Task", _TASK_NAMES[task.kind]), ("Target", task.target)]
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
    chips.append(("Generated", generated()))
    return chips


def _metric_cards(task: Task, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The headline cards (primary metric first) and what the note under them says."""
    primary = PRIMARY_METRIC[task.kind]
    names = [k for k, v in metrics.items() if is_number(v) and k != "threshold"]
    names.sort(key=lambda k: (k != primary, list(_METRICS).index(k) if k in _METRICS else 99))
    cards = []
    for name in names:
        label, meaning = _METRICS.get(name, (name.replace("_", " ").capitalize(), ""))
        if name == "f1" and task.kind == "binary":
            meaning = f"positive class '{task.positive_label}'"
        try:
            higher = greater_is_better(name)
        except UnknownNameError:
            higher = None
        cards.append({"label": label, "value": fmt_metric(name, metrics[name]), "hint": meaning,
                      "primary": name == primary, "higher": higher})
    shown = None
    if task.kind == "binary" and is_number(metrics.get("threshold")):
        shown = f"{float(metrics['threshold']):.3g}"
    return {"cards": cards, "threshold_shown": shown, "has_macro_f1": "macro_f1" in metrics}


def _performance(task: Task, y: np.ndarray, pred: np.ndarray, threshold: float | None,
                 metrics: Mapping[str, Any]) -> dict[str, Any]:
    if task.kind == "regression":
        return {"kind": "regression", "scatter_points": f"{plots.SCATTER_POINTS:,}",
                "residuals": markup(plots.residuals_svg(y, pred))}
    if task.kind == "multilabel":
        return {"kind": "multilabel", "rows": _class_rows(metrics.get("per_label") or {})}
    labels = list(task.classes)
    codes = predicted_codes(task, pred, threshold)
    y = y.astype(np.int64)
    if task.kind == "binary":
        p_pos = pred[:, 1] if pred.ndim == 2 else pred
        both = y.min() != y.max()
        return {
            "kind": "binary",
            "roc": markup(plots.roc_curve_svg(y, p_pos, threshold)) if both else None,
            "pr": markup(plots.pr_curve_svg(y, p_pos, threshold)) if both else None,
            "calibration": markup(plots.calibration_svg(y, p_pos)),
            "threshold": f"{threshold:.3g}",
            "confusion": markup(plots.confusion_matrix_svg(y, codes, labels)),
        }
    shown_y, shown_codes, shown_labels, note = _top_classes(y, codes, labels)
    return {"kind": "multiclass", "note": note, "wide": len(labels) > 6,
            "confusion": markup(plots.confusion_matrix_svg(shown_y, shown_codes, shown_labels)),
            "rows": _class_rows(metrics["per_class"]) if metrics.get("per_class") else []}


def _mistakes(task: Task, y: np.ndarray, pred: np.ndarray, images: np.ndarray,
              threshold: float | None) -> dict[str, Any] | None:
    """The rows the model got most confidently wrong, with their images."""
    if task.kind == "multilabel":
        return None  # a row is rarely all right or all wrong; the per-label table says where it errs
    if task.kind == "regression":
        error = np.abs(pred.astype(np.float64) - y.astype(np.float64))
        order = np.argsort(-error, kind="stable")[:MISTAKES_SHOWN]
        captions = [f"actual {fmt_number(float(y[i]))} · predicted {fmt_number(float(pred[i]))}" for i in order]
        title, caption = "Largest errors", "The rows with the largest absolute error, largest first."
    else:
        labels = list(task.classes)
        codes = predicted_codes(task, pred, threshold)
        proba = pred if pred.ndim == 2 else np.stack([1 - pred, pred], axis=1)
        wrong = np.flatnonzero(codes != y.astype(np.int64))
        if not len(wrong):
            return {"title": "Confident mistakes", "caption": "", "thumbs": []}
        confidence = proba[wrong, codes[wrong]]
        order = wrong[np.argsort(-confidence, kind="stable")][:MISTAKES_SHOWN]
        captions = [f"actual {labels[int(y[i])]} · predicted {labels[int(codes[i])]} ({proba[i, codes[i]]:.0%})"
                    for i in order]
        title = "Most confident mistakes"
        caption = (f"{len(wrong):,} of {len(y):,} images are misclassified; the {len(order)} the model was surest "
                   "about are shown, surest first. Wrong labels in the data often show up here.")
    from takeoff.data.images import picture, png_data_uri

    thumbs = [{"text": text, "src": png_data_uri(picture(images[i], 96))} for i, text in zip(order, captions)]
    return {"title": title, "caption": caption, "thumbs": thumbs}


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


def _class_rows(per_class: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the per-class (or per-label: most frequent first, with thresholds) table."""
    items = list(per_class.items())
    with_threshold = any("threshold" in row for _, row in items)
    if with_threshold:
        items.sort(key=lambda kv: -int(kv[1].get("support", 0)))
    rows = []
    for label, row in items:
        f1 = float(row.get("f1", 0.0))
        rows.append({"label": label, "precision": f"{float(row.get('precision', 0.0)):.3f}",
                     "recall": f"{float(row.get('recall', 0.0)):.3f}", "f1": f"{f1:.3f}",
                     "f1_width": f"{100 * f1:.0f}", "support": f"{int(row.get('support', 0)):,}",
                     "threshold": f"{float(row['threshold']):.3g}" if with_threshold else None})
    return rows


def _findings(findings: Sequence[Any]) -> dict[str, Any]:
    """Finding rows, most severe first, and a count per severity."""

    def get(f: Any, key: str) -> Any:
        value = f.get(key) if isinstance(f, Mapping) else getattr(f, key, None)
        return "" if value is None else value

    ordered = sorted(findings, key=lambda f: _SEVERITY_ORDER.get(str(get(f, "severity")), 3))
    counts: dict[str, int] = {}
    rows = []
    for f in ordered:
        severity = str(get(f, "severity")).lower() or "info"
        counts[severity] = counts.get(severity, 0) + 1
        rows.append({"severity": severity, "badge": severity if severity in _SEVERITY_ORDER else "info",
                     "check": get(f, "check"), "column": get(f, "column"), "message": get(f, "message"),
                     "fix": get(f, "fix")})
    summary = " · ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items())
    return {"rows": rows, "summary": summary}


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


# --- recommendation -------------------------------------------------------------------------

_RANKING_MEANINGS = {"hr": "share of users whose held-out item is in their top K",
                     "ndcg": "like HR, but a hit counts more the higher it is ranked",
                     "map": "mean average precision of the top K",
                     "coverage": "share of the catalogue recommended to someone"}


def write_recommend_report(path: str | os.PathLike[str], *, title: str, metrics: Mapping[str, Any],
                           leaderboard: Mapping[str, Mapping[str, Any]], buckets: Sequence[Mapping[str, Any]],
                           info: Mapping[str, Any], data_name: str) -> Path:
    """A self-contained HTML report of a recommender: headline ranking metrics on the held-out
    interactions, every family tried, and the metrics by user activity."""
    chips = [("Task", "Recommendation"), ("Data", data_name),
             ("Users evaluated", f"{int(metrics.get('users', 0)):,}"), ("Generated", generated())]
    cards = [{"label": name.upper(), "value": f"{float(value):.4f}", "primary": name.split("@")[0] == "ndcg",
              "hint": _RANKING_MEANINGS.get(name.split("@")[0], ""), "higher": True}
             for name, value in metrics.items() if is_number(value) and name != "users"]
    activity = None
    if buckets:
        activity = info_tables({"buckets": {str(b["bucket"]): {k: v for k, v in b.items() if k != "bucket"}
                                            for b in buckets}})
    return write_page(path, render("recommend.html", title=title, kind="report", chips=chips, cards=cards,
                                   families=info_tables({"leaderboard": dict(leaderboard)}), activity=activity,
                                   model_tables=info_tables(info)))


def _card_html(card: str) -> Any:
    """The model card's Markdown as HTML (raw HTML in it is escaped, not passed through)."""
    from markdown_it import MarkdownIt

    return markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(card))


_GENERATION_MEANINGS = {
    "perplexity": "exp(mean loss per answer token) on the validation pairs",
    "rouge_l": "longest common word subsequence with the reference (F-measure)",
    "token_f1": "words shared with the reference (F1, SQuAD's rule)",
    "exact_match": "answers equal to the reference after normalising",
}


def write_generate_report(path: str | os.PathLike[str], *, title: str, data_name: str, base: Mapping[str, Any],
                          tuned: Mapping[str, Any], prompts: Sequence[str], references: Sequence[str],
                          history: Mapping[str, Sequence[float]], info: Mapping[str, Any], notes: Sequence[str],
                          method: str) -> Path:
    """A self-contained HTML report of a fine-tuned language model: its validation metrics
    beside the base model's, sample answers side by side, the learning curve.

    ``base`` and ``tuned`` are ``{"metrics": {...}, "samples": [answers]}``; ``prompts`` and
    ``references`` are the validation pairs the samples answer."""
    chips = [("Task", "Text generation"), ("Data", data_name), ("Method", method), ("Generated", generated())]
    cards = []
    for name, meaning in _GENERATION_MEANINGS.items():
        after, before = tuned["metrics"].get(name), base["metrics"].get(name)
        if not is_number(after):
            continue
        value = f"{float(after):.4f}" + (f" (base {float(before):.4f})" if is_number(before) and method != "none" else "")
        cards.append({"label": name.replace("_", "-").upper() if name != "perplexity" else "Perplexity", "value": value,
                      "primary": name == "rouge_l", "hint": meaning, "higher": name != "perplexity"})
    n = min(len(prompts), len(references), len(tuned.get("samples", [])))
    samples = [{"prompt": prompts[i], "reference": references[i], "tuned": tuned["samples"][i],
                "base": base["samples"][i] if i < len(base.get("samples", [])) else ""} for i in range(n)]
    curve = None
    if history and any(len(v) > 1 for v in history.values()):
        curve = markup(plots.learning_curve_svg({"fine-tuning": history}))
    comparison = {name: {"base model": base["metrics"].get(name, "—"), "fine-tuned": tuned["metrics"].get(name, "—")}
                  for name in dict.fromkeys([*base["metrics"], *tuned["metrics"]])}
    return write_page(path, render("generate.html", title=title, kind="report", chips=chips, cards=cards,
                                   samples=samples, tuned_label="fine-tuned" if method != "none" else "model",
                                   show_base=method != "none", curve=curve, notes=list(notes),
                                   comparison=info_tables({"validation metrics": comparison}),
                                   model_tables=info_tables(info)))


_ANSWER_MEANINGS = {
    "citation_accuracy": ("Citation accuracy", "answered, with the right passage cited first"),
    "hit@1": ("Hit@1", "the right passage retrieved first"),
    "hit@k": ("Hit@k", "the right passage among those retrieved"),
    "refusal_rate": ("Refusal rate", "unanswerable questions refused"),
    "false_refusal_rate": ("False refusals", "answerable questions refused"),
}
ANSWER_ROWS_SHOWN = 200


def write_answer_report(path: str | os.PathLike[str], *, title: str, data_name: str, metrics: Mapping[str, Any],
                        answerable: Sequence[Mapping[str, Any]], unanswerable: Sequence[Mapping[str, Any]],
                        documents: Mapping[str, Any], skipped: Sequence[tuple[str, str]], notes: Sequence[str],
                        info: Mapping[str, Any]) -> Path:
    """A self-contained HTML report of a grounded answerer: what was read (passages per file,
    files skipped and why) and, with evaluation questions, retrieval hit@k, citation accuracy
    and refusal rates, with every question's outcome.

    ``answerable`` rows hold question, expected, source, section, score, rank, refused;
    ``unanswerable`` rows question, source, section, score, refused (see
    ``takeoff.pipelines.answers.evaluate_answers``)."""
    k = metrics.get("k")
    cards = []
    for name, (label, hint) in _ANSWER_MEANINGS.items():
        key = f"hit@{k}" if name == "hit@k" else name
        value = metrics.get(key)
        if is_number(value):
            cards.append({"label": label.replace("@k", f"@{k}"), "value": f"{float(value):.1%}",
                          "primary": name == "citation_accuracy", "hint": hint, "higher": name != "false_refusal_rate"})

    def cited(row: Mapping[str, Any]) -> str:
        return " — ".join(str(x) for x in (row.get("source"), row.get("section")) if x)

    answered = []
    for row in answerable[:ANSWER_ROWS_SHOWN]:
        ok = row.get("rank") == 1 and not row.get("refused")
        outcome = "refused" if row.get("refused") else ("cited" if ok else "wrong passage")
        answered.append({"question": row.get("question"), "expected": row.get("expected", ""), "cited": cited(row),
                         "score": row.get("score"), "rank": row.get("rank") or "—", "outcome": outcome,
                         "badge": "ok" if ok else "error"})
    refused = [{"question": row.get("question"), "cited": cited(row), "score": row.get("score"),
                "outcome": "refused" if row.get("refused") else "answered",
                "badge": "ok" if row.get("refused") else "error"} for row in unanswerable[:ANSWER_ROWS_SHOWN]]
    chips = [("Task", "Grounded answers"), ("Documents", data_name), ("Generated", generated())]
    return write_page(path, render("answer.html", title=title, kind="report", chips=chips, cards=cards,
                                   answerable=answered, unanswerable=refused,
                                   more_answerable=max(0, len(answerable) - ANSWER_ROWS_SHOWN),
                                   more_unanswerable=max(0, len(unanswerable) - ANSWER_ROWS_SHOWN),
                                   documents=info_tables({"passages per file": dict(documents)}),
                                   skipped=list(skipped), notes=list(notes), model_tables=info_tables(info)))
