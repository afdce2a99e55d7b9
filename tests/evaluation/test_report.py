"""The HTML report, the metrics JSON and the SVG charts behind them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from takeoff.data.schema import Task
from takeoff.errors import DataError
from takeoff.evaluation import plots, report
from takeoff.evaluation.metrics import compute_metrics, tune_threshold
from takeoff.evaluation.report import write_metrics_json, write_report

EVIL = "<script>alert('x')</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"

HISTORY = {
    "lightgbm": {"train_loss": list(np.linspace(0.7, 0.2, 120)),
                 "valid_loss": list(0.35 + 0.3 * np.exp(-np.arange(120) / 20))},
    "mlp": {"train_loss": [0.7, 0.5, 0.4, 0.35], "valid_loss": [0.72, 0.55, 0.5, 0.52]},
}
FINDINGS = [
    {"check": "missing_values", "severity": "warning", "column": EVIL,
     "message": "12 rows are empty", "fix": "nothing: they are imputed"},
    {"check": "leakage", "severity": "error", "column": "cancel_date",
     "message": "predicts the target alone", "fix": "drop the column"},
]
MODEL_INFO = {
    "time_taken_s": 95.4,
    "families": {"lightgbm": {"weight": 0.7, "valid_roc_auc": 0.86},
                 "mlp": {"weight": 0.3, "valid_roc_auc": 0.84}},
    "versions": {"numpy": np.__version__, "takeoff": "0.1.0"},
}


def binary_data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    p = 1 / (1 + np.exp(-rng.normal(-1 + 2 * y, 1.0)))
    return y, np.column_stack([1 - p, p])


def sections(html: str) -> set[str]:
    return set(re.findall(r'<(?:section|figure|div)[^>]*\bid="([^"]+)"', html))


def assert_self_contained(html: str) -> None:
    """Nothing in the page can make the browser fetch anything."""
    lowered = html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", lowered)
    assert "@import" not in lowered
    assert not re.search(r"""url\(\s*["']?\s*(https?:|//)""", lowered)
    assert "<link" not in lowered and "<script" not in lowered and "<iframe" not in lowered
    assert "http" not in lowered  # stricter still: not even namespace URLs


def assert_svgs_well_formed(html: str) -> list[str]:
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    for svg in svgs:
        ET.fromstring(svg)  # raises on malformed XML
    ids = re.findall(r'\bid="([^"]+)"', "".join(svgs))
    assert len(ids) == len(set(ids)), "element ids must be unique across charts"
    return svgs


@pytest.fixture(scope="module")
def binary_report(tmp_path_factory):
    y, pred = binary_data()
    task = Task("binary", "churn", ["no", EVIL])
    threshold = tune_threshold(y, pred[:, 1])
    metrics = compute_metrics(task, y, pred, threshold=threshold)
    path = tmp_path_factory.mktemp("binary") / "report.html"
    out = write_report(path, title=f"Churn {EVIL}", task=task, metrics=metrics, y=y, pred=pred,
                       importance={"age": 0.4, EVIL: 0.2, "price_$": 0.1}, history=HISTORY,
                       findings=FINDINGS, model_info=MODEL_INFO, data_name=f"data{EVIL}.csv")
    return out, metrics


def test_binary_report_has_every_section(binary_report):
    path, metrics = binary_report
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert {"metrics", "performance", "roc", "pr", "calibration", "confusion", "importance",
            "learning-curves", "findings", "model"} <= sections(html)
    assert len(assert_svgs_well_formed(html)) == 6  # roc, pr, calibration, cm, importance, lc
    # Primary metric first, with its value as shown on the card.
    cards = re.findall(r'<div class="name">([^<]+)<', html)
    assert cards[0] == "ROC AUC"
    assert f"{metrics['roc_auc']:.3f}" in html
    assert "Log loss" in html and "Brier score" in html
    assert f"{metrics['threshold']:.3g}" in html
    # Findings sorted by severity, model info rendered as tables with humane formatting.
    assert html.index("leakage") < html.index("missing_values")
    assert "1 min 35 s" in html and "Valid ROC AUC" in html and np.__version__ in html


def test_binary_report_is_self_contained_and_escaped(binary_report):
    html = binary_report[0].read_text(encoding="utf-8")
    assert_self_contained(html)
    assert EVIL not in html
    assert "<script" not in html
    # The malicious name shows up escaped: title, data name, class label, finding column...
    assert html.count(EVIL_ESCAPED) >= 4
    # ...and inside the importance chart's SVG text, escaped by XML rules.
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html or \
        "&lt;script&gt;alert('x')&lt;/script&gt;" in html


def test_report_file_is_readable_by_others(binary_report):
    assert binary_report[0].stat().st_mode & 0o044 == 0o044


def test_multiclass_report(tmp_path):
    rng = np.random.default_rng(1)
    task = Task("multiclass", "species", ["setosa", "versicolor", EVIL])
    y = rng.integers(0, 3, 600)
    proba = rng.dirichlet(np.ones(3), 600)
    proba[np.arange(600), y] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    metrics = compute_metrics(task, y, proba)
    html = write_report(tmp_path / "m.html", title="Species", task=task, metrics=metrics, y=y,
                        pred=proba).read_text(encoding="utf-8")
    found = sections(html)
    assert {"metrics", "confusion", "per-class"} <= found
    assert not {"roc", "pr", "calibration", "residuals", "importance", "findings"} & found
    assert re.findall(r'<div class="name">([^<]+)<', html)[0] == "Log loss"
    assert html.count("<tr><td>") >= 3  # one per-class row per class
    assert EVIL not in html and EVIL_ESCAPED in html
    assert_self_contained(html)
    assert_svgs_well_formed(html)


def test_multiclass_report_with_many_classes_groups_the_rest(tmp_path):
    rng = np.random.default_rng(2)
    k = 40
    task = Task("multiclass", "t", [f"class {i}" for i in range(k)])
    y = rng.integers(0, k, 2000)
    proba = rng.dirichlet(np.ones(k), 2000)
    html = write_report(tmp_path / "m.html", title="Many", task=task,
                        metrics=compute_metrics(task, y, proba), y=y,
                        pred=proba).read_text(encoding="utf-8")
    assert "(other)" in html and "most frequent of 40 classes" in html


def test_regression_report(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.gamma(3, 1000, 20_000)
    pred = y * np.exp(rng.normal(0, 0.2, y.size))
    task = Task("regression", "price")
    metrics = compute_metrics(task, y, pred)
    path = write_report(tmp_path / "r.html", title="Prices", task=task, metrics=metrics, y=y,
                        pred=pred, findings=[], history={"mlp": {"valid_loss": [3.0, 2.0]}})
    html = path.read_text(encoding="utf-8")
    assert {"metrics", "residuals", "findings", "learning-curves"} <= sections(html)
    assert not {"roc", "confusion", "per-class", "model"} & sections(html)
    assert re.findall(r'<div class="name">([^<]+)<', html)[0] == "RMSE"
    assert "no issues found" in html
    assert_self_contained(html)
    assert_svgs_well_formed(html)
    # 20k rows: the scatter is capped, so the page stays small.
    assert path.stat().st_size < 400_000


def test_report_without_predictions_has_cards_only(tmp_path):
    task = Task("regression", "y")
    html = write_report(tmp_path / "r.html", title="T", task=task,
                        metrics={"rmse": 1.5, "mae": 1.0, "r2": 0.5}, y=None,
                        pred=None).read_text(encoding="utf-8")
    assert sections(html) == {"metrics"}
    assert "<svg" not in html


def test_single_class_binary_report_does_not_crash(tmp_path):
    task = Task("binary", "t", [0, 1])
    y = np.zeros(8, dtype=np.int64)
    p = np.linspace(0.05, 0.6, 8)
    pred = np.column_stack([1 - p, p])
    metrics = compute_metrics(task, y, pred)
    html = write_report(tmp_path / "b.html", title="Tiny", task=task, metrics=metrics, y=y,
                        pred=pred).read_text(encoding="utf-8")
    assert "only one class" in html
    assert {"calibration", "confusion"} <= sections(html)


def test_report_is_written_atomically(tmp_path, monkeypatch):
    y, pred = binary_data(400)
    task = Task("binary", "t", ["no", "yes"])
    metrics = compute_metrics(task, y, pred)
    path = tmp_path / "report.html"
    write_report(path, title="First", task=task, metrics=metrics, y=y, pred=pred)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temp files
    before = path.read_bytes()

    # A failure while rendering leaves the existing report untouched.
    def broken(*args, **kwargs):
        raise RuntimeError("chart failed")

    with monkeypatch.context() as m:
        m.setattr(plots, "calibration_svg", broken)
        with pytest.raises(RuntimeError, match="chart failed"):
            write_report(path, title="Second", task=task, metrics=metrics, y=y, pred=pred)
    assert path.read_bytes() == before

    # A failure while moving the file into place removes the temp file and keeps the old one.
    with monkeypatch.context() as m:
        m.setattr(report.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError, match="disk full"):
            write_report(path, title="Third", task=task, metrics=metrics, y=y, pred=pred)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]

    # Bad input for a chart is a clear error, raised before anything is written.
    with pytest.raises(DataError, match="importance"):
        write_report(path, title="Fourth", task=task, metrics=metrics, y=y, pred=pred,
                     importance={"a": float("nan")})
    assert path.read_bytes() == before


def test_write_metrics_json(tmp_path):
    task = Task("binary", "t", ["no", "yes"])
    metrics = {"roc_auc": np.float64(0.91), "support": np.int64(3), "bad": float("nan"),
               "per_class": {"a": {"f1": np.float32(0.5)}}}
    path = write_metrics_json(tmp_path / "out" / "metrics.json", task, metrics)
    data = json.loads(path.read_text())
    assert data == {"task": "binary", "metrics": {"roc_auc": 0.91, "support": 3, "bad": None,
                                                  "per_class": {"a": {"f1": 0.5}}}}
    assert os.listdir(path.parent) == ["metrics.json"]


# --- charts ---------------------------------------------------------------------------------


def test_charts_are_inline_svg_and_leave_global_state_alone():
    import matplotlib

    before = dict(matplotlib.rcParams)
    y, pred = binary_data(500)
    svgs = [
        plots.roc_curve_svg(y, pred[:, 1], threshold=0.5),
        plots.pr_curve_svg(y, pred[:, 1]),
        plots.calibration_svg(y, pred[:, 1]),
        plots.confusion_matrix_svg(y, (pred[:, 1] > 0.5).astype(int), ["no", "yes"]),
        plots.residuals_svg(np.arange(50.0), np.arange(50.0) + 1),
        plots.importance_svg({"a": 1.0, "b": -0.5}),
        plots.learning_curve_svg({"m": {"train_loss": [1, 0.5], "valid_loss": [1, 0.7]}}),
    ]
    for svg in svgs:
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert "<?xml" not in svg and "DOCTYPE" not in svg and "http" not in svg
        ET.fromstring(svg)
        assert "<text" in svg  # text stays text (svg.fonttype = none)
    assert dict(matplotlib.rcParams) == before


def test_chart_text_is_literal():
    svg = plots.importance_svg({"price_$": 1.0, "<b>bold</b>": 0.5})
    assert "price_$" in svg  # not parsed as math
    assert "<b>" not in svg and "&lt;b&gt;bold&lt;/b&gt;" in svg


def test_curve_charts_cap_rows_and_points():
    rng = np.random.default_rng(4)
    n = 1_000_000
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    svg = plots.roc_curve_svg(y, p)
    assert len(svg) < 60_000
    scatter = plots.residuals_svg(p, p + rng.normal(0, 0.1, n))
    assert len(scatter) < 250_000


def test_charts_reject_unusable_input():
    with pytest.raises(DataError, match="both classes"):
        plots.roc_curve_svg(np.zeros(5), np.linspace(0, 1, 5))
    with pytest.raises(DataError, match="equally long"):
        plots.pr_curve_svg(np.array([0, 1]), np.array([0.5]))
    with pytest.raises(DataError, match="codes must be in 0..1"):
        plots.confusion_matrix_svg(np.array([0, 2]), np.array([0, 1]), ["a", "b"])
    with pytest.raises(DataError, match="no values"):
        plots.learning_curve_svg({"m": {"loss": []}})
    with pytest.raises(DataError, match="empty"):
        plots.importance_svg({})


def test_importing_evaluation_does_not_import_matplotlib_or_sklearn():
    code = ("import sys, takeoff.evaluation.report, takeoff.evaluation.metrics; "
            "print(sorted(m for m in ('matplotlib', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent)
    assert out.stdout.strip() == "[]"
