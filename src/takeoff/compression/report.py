"""The compression report: one self-contained HTML page comparing the two bundles."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from takeoff.evaluation.report import _atomic_write, _e, _model_info, _page, _section

_LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mae"}


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def _ratio(value: float) -> str:
    return f"{value:.2f}×"


def comparison_rows(result) -> list[tuple[str, str, str, str]]:
    """(what, original, compressed, change) rows of the report and the CLI table."""
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
    chips = [("Bundle", result.path.name), ("Rows", result.rows),
             ("Generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))]
    chip_html = "".join(f'<span class="chip">{_e(k)} <b>{_e(v)}</b></span>' for k, v in chips)
    header = ('<header class="top"><div class="brand"><span class="logo"></span>takeoff · compression report</div>'
              f'<h1>{_e(" → ".join(s["step"] for s in result.steps))}</h1><div class="meta">{chip_html}</div></header>')
    table = "".join(f"<tr><th>{_e(a)}</th><td>{_e(b)}</td><td>{_e(c)}</td><td>{_e(d)}</td></tr>"
                    for a, b, c, d in comparison_rows(result))
    compare = ('<div class="card table-card wide"><h3>Original vs compressed</h3><table class="kv">'
               "<tr><th></th><th>original</th><th>compressed</th><th>change</th></tr>"
               f"{table}</table></div>")
    note = ('<p class="note">Both bundles were measured in the same process on the same rows: latency is '
            "from JSON-like records to model outputs (validation, features and model), on this machine's CPU, "
            "the two taking turns call by call after a warm-up, so a slow phase of the machine falls on both.</p>")
    steps: dict[str, Any] = {f"{i + 1}. {s['step']}": {k: v for k, v in s.items() if k != "step"}
                             for i, s in enumerate(result.steps)}
    body = header + _section("compare", "What changed", compare + note)
    body += _section("steps", "Steps", _model_info(steps))
    return _atomic_write(Path(path), _page("compression report", body))
