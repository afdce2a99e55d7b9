"""`takeoff demo`: the whole path on the credit-risk table shipped with the package."""

from __future__ import annotations

from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

DEMO_TARGET = "Status"


def demo_data() -> Path:
    """Path of the shipped credit-risk table (4,454 loan applications, target ``Status``)."""
    return Path(str(files("takeoff") / "resources" / "credit_risk.csv"))


def run_demo(out_dir: str | Path = "takeoff-runs", time_budget: float = 60.0, seed: int = 0) -> dict[str, Any]:
    """Train on 80% of the credit table, evaluate on the held-out 20%, write bundle + report.

    Returns:
        {"bundle": Path, "report": Path, "metrics": dict (held-out), "model": Model}
    """
    from sklearn.model_selection import train_test_split

    from takeoff.api import train

    df = pd.read_csv(demo_data())
    train_df, test_df = train_test_split(df, test_size=0.2, random_state=seed, stratify=df[DEMO_TARGET])
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    bundle = Path(out_dir) / f"{stamp}-credit-risk"
    model = train(train_df, target=DEMO_TARGET, time_budget=time_budget, seed=seed, out=bundle)
    report = bundle.parent / f"{bundle.name}-holdout-report.html"
    metrics = model.evaluate(test_df, report=report)
    return {"bundle": bundle, "report": report, "metrics": metrics, "model": model}
