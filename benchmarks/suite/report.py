"""The suite's table as Markdown: how it was run, the summary, the per-table scores, takeoff's
time against its budget, and any failures."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from .scoring import HIGHER_IS_BETTER

ORDER = ("takeoff", "autogluon", "lightgbm", "hgb", "linear")
OVERRUN_LIMIT = 0.10  # issue 20: auto never overruns its budget by more than 10%


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _versions(records: pd.DataFrame) -> str:
    import lightgbm
    import scipy
    import sklearn

    import takeoff

    root = Path(__file__).resolve().parents[2]
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    ag = {info.get("version") for info in records.loc[records["contender"] == "autogluon", "info"] if isinstance(info, dict)}
    ag.discard(None)
    parts = [f"takeoff {takeoff.__version__} ({commit or 'no git'})", f"lightgbm {lightgbm.__version__}",
             f"scikit-learn {sklearn.__version__}", f"scipy {scipy.__version__}", f"python {platform.python_version()}"]
    if ag:
        parts.insert(1, f"autogluon.tabular {', '.join(sorted(ag))}")
    return ", ".join(parts)


def _fmt(value: float) -> str:
    if pd.isna(value):
        return "—"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"


def render(summary: dict, records: pd.DataFrame, *, command: str, budget: float, tie_tolerance: float,
           title: str = "Public suite") -> str:
    """The Markdown page section for one run of the suite."""
    contenders = [c for c in ORDER if c in set(records["contender"])]
    lines = [f"## {title}", "", f"Command: `{command}`", "",
             f"Machine: {platform.system()} {platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores. "
             f"Date: {dt.date.today().isoformat()}. Versions: {_versions(records)}.", "",
             f"Budget: {budget:g} s per fit for takeoff `auto` and AutoGluon `medium_quality`; LightGBM, "
             f"HistGradientBoosting and the linear model use their defaults / their own CV grid. Splits: 75/25 "
             f"(stratified for classification), 3 seeded splits for tables under 1,000 rows, else 1. Ranked metric: "
             f"ROC-AUC (binary), accuracy (multiclass; log-loss recorded too), RMSE (regression).", ""]

    lines += [f"Mean rank over the {summary['ranked_tables']} tables every contender finished (1 = best):", "",
              "| contender | mean rank |", "|---|---|"]
    lines += [f"| {name} | {rank:.2f} |" for name, rank in summary["mean_rank"].items()]
    if summary["versus"]:
        lines += ["", f"takeoff against each peer (tie: relative difference under {tie_tolerance:.1%}; Wilcoxon "
                      "signed-rank test, two-sided, on the per-table relative differences):", "",
                  "| takeoff vs | tables | wins | ties | losses | median relative difference | p-value |",
                  "|---|---|---|---|---|---|---|"]
        for other, v in summary["versus"].items():
            lines.append(f"| {other} | {v['tables']} | {v['wins']} | {v['ties']} | {v['losses']} | "
                         f"{v['median_gain']:+.2%} | {v['p_value']:.3g} |")

    lines += ["", "Per table (mean over splits; best in bold):", "",
              "| table | task | rows | splits | metric | " + " | ".join(contenders) + " | takeoff fit s |",
              "|---" * (6 + len(contenders)) + "|"]
    scores = summary["scores"]
    takeoff_fit = records[records["contender"] == "takeoff"].groupby("table")["fit_seconds"].mean()
    for table, group in records.groupby("table", sort=False):
        first = group.iloc[0]
        row = scores.loc[table] if table in scores.index else pd.Series(dtype=float)
        higher = HIGHER_IS_BETTER[first["ranked_metric"]]
        best = row.max() if higher else row.min()
        cells = []
        for c in contenders:
            value = row.get(c, np.nan)
            cells.append(f"**{_fmt(value)}**" if not pd.isna(value) and value == best else _fmt(value))
        lines.append(f"| {table} | {first['task']} | {first['rows']} | {group['split'].nunique()} | "
                     f"{first['ranked_metric']} | " + " | ".join(cells) + f" | {takeoff_fit.get(table, np.nan):.1f} |")

    fits = records.loc[(records["contender"] == "takeoff") & records["error"].isna(), "fit_seconds"]
    if len(fits):
        overrun = fits / budget - 1
        lines += ["", f"takeoff's time against its {budget:g} s budget over {len(fits)} fits: median "
                      f"{fits.median():.1f} s, max {fits.max():.1f} s (overrun {overrun.max():+.0%}); "
                      f"{int((overrun > OVERRUN_LIMIT).sum())} fits over the 10% limit."]
    failed = records[records["error"].notna()]
    if len(failed):
        lines += ["", "Failures:", ""]
        lines += [f"- {r.table} split {r.split} {r.contender}: {str(r.error).strip().splitlines()[-1][:200]}" for r in failed.itertuples()]
    return "\n".join(lines) + "\n"
