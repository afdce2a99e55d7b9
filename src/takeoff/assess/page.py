"""The feasibility page: the verdict, the learning-curve chart and the numbers behind them,
one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"


def write_assessment(path: str | Path, result: dict[str, Any]) -> Path:
    """Write ``result`` (from :func:`takeoff.assess.assess`) as an HTML page, atomically."""
    from takeoff.evaluation import plots
    from takeoff.evaluation.formatting import info_tables
    from takeoff.evaluation.html import generated, markup, render, write_page

    points: dict[str, tuple[list[float], list[float]]] = {}
    for p in result["points"]:
        rows, scores = points.setdefault(p["family"], ([], []))
        rows.append(p["rows"])
        scores.append(p["score"])
    curve = result.get("curve")
    fitted = band = None
    if curve:
        fitted = ([f["rows"] for f in curve["fitted"]], [f["score"] for f in curve["fitted"]])
        band = ([b["rows"] for b in curve["band"]], [b["low"] for b in curve["band"]], [b["high"] for b in curve["band"]])
    chart = markup(plots.rows_curve_svg(points, result["metric"], fitted, band, result["baseline"]))
    tables: dict[str, Any] = {
        "rows": result["rows"],
        "fits": {f"{p['family']} {p['fraction']:.0%} #{p['repeat'] + 1}": {"rows": p["rows"], result["metric"]: p["score"],
                                                                           "seconds": p["seconds"]}
                 for p in result["points"]},
    }
    if result.get("serving"):
        tables["serving cost (this machine)"] = result["serving"]["forms"]
    chips = [("Data", result["source"]), ("Target", result["target"]), ("Task", result["task"]),
             ("Metric", result["metric"]), ("Generated", generated())]
    text = render("assess.html", TEMPLATES, title=f"Is predicting '{result['target']}' worth pursuing?", kind="feasibility",
                  chips=chips, verdict=result["verdict"], chart=chart, tables=info_tables(tables))
    return write_page(path, text)
