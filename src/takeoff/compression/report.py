"""The compression report: one self-contained HTML page comparing the two bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from takeoff.evaluation.formatting import info_tables
from takeoff.evaluation.html import generated, render, write_page

TEMPLATES = Path(__file__).parent / "templates"

_LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mae"}


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def _ratio(value: float) -> str:
    return f"{value:.2f}×"


def comparison_rows(result) -> list[tuple[str, str, str, str]]:
    """(what, original, compressed, change) rows of the report and the CLI table."""
    if hasattr(result, "comparison_rows"):  # a kind of bundle that measures other things (generate)
        return result.comparison_rows()
    o, c = result.original, result.compressed
    rows = [("size on disk", _mb(o.bytes), _mb(c.bytes), f"{_ratio(o.bytes / max(c.bytes, 1))} smaller")]
    for batch in o.latency_ms:
        if batch not in c.latency_ms:
            continue
        for stat in ("p50", "p99"):
            before, after = o.latency_ms[batch][stat], c.latency_ms[batch][stat]
            rows.append((f"latency batch {batch} {stat}", _ms(before), _ms(after),
                         f"{_ratio(before / max(after, 1e-9))} faster"))
    for name, delta in result.deltas().items():
        if name == "threshold":
            continue
        better = (delta < 0) if name in _LOWER_IS_BETTER else (delta > 0)
        sign = "+" if delta >= 0 else "−"
        note = "" if abs(delta) < 1e-12 else (" (better)" if better else " (worse)")
        rows.append((name, f"{o.metrics[name]:.4f}", f"{c.metrics[name]:.4f}", f"{sign}{abs(delta):.4f}{note}"))
    return rows


def write_compression_report(path: Path, result) -> Path:
    """Write the report of ``result`` (a compression run) as one self-contained HTML page
    (``templates/compression.html``), atomically."""
    chips = [("Bundle", result.path.name), ("Rows", result.rows), ("Generated", generated())]
    steps: dict[str, Any] = {f"{i + 1}. {s['step']}": {k: v for k, v in s.items() if k != "step"}
                             for i, s in enumerate(result.steps)}
    document = render("compression.html", TEMPLATES, title="compression report", kind="report", chips=chips,
                      steps_title=" → ".join(s["step"] for s in result.steps), rows=comparison_rows(result),
                      steps=info_tables(steps), note=getattr(result, "note", None))
    return write_page(path, document)
