"""`takeoff demo`: train, evaluate and report on the credit-risk table shipped with takeoff."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from takeoff.cli.output import err, metrics_table, out, run


def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where runs are written.")] = Path("takeoff-runs"),
    time_budget: Annotated[float, typer.Option("--time-budget", help="Seconds for training.")] = 60.0,
) -> None:
    """Train, evaluate and report on the credit-risk table shipped with takeoff."""
    from takeoff.demo import DEMO_TARGET, demo_data, run_demo

    err.print(f"demo: credit risk ({demo_data().name}), target '{DEMO_TARGET}'; training on 80%, testing on 20%")
    result = run(run_demo, out_dir, time_budget)
    out.print(metrics_table("held-out test metrics (credit risk, 20% of rows)", result["metrics"]))
    out.print(f"bundle: {result['bundle']}")
    out.print(f"report: {result['report']}")
    out.print(f"next: takeoff predict {result['bundle']} new_rows.csv -o predictions.csv")
