"""Tabular benchmark: takeoff `auto` vs LightGBM defaults vs scikit-learn HistGradientBoosting
defaults, on every fixed split in shared/datasets/splits/datasets.json, in the same run.

    python benchmarks/tabular.py [--budget SECONDS] [--only NAME ...] [--markdown FILE]

Prints, per dataset, the primary metric on the test file and the fit time of each contender.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")) / "splits"


def score(metric: str, y_true, proba_pos=None, values=None) -> float:
    from sklearn.metrics import mean_squared_error, roc_auc_score

    if metric == "roc_auc":
        return float(roc_auc_score(y_true, proba_pos))
    if metric == "rmse":
        return float(np.sqrt(mean_squared_error(y_true, values)))
    raise ValueError(f"unsupported metric {metric}")


def as_categories(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """String columns as pandas categories (same categories in both), as the libraries expect."""
    train, test = train.copy(), test.copy()
    for col in train.columns:
        if not pd.api.types.is_numeric_dtype(train[col]):
            cats = pd.Index(pd.concat([train[col], test[col]]).dropna().astype(str).unique())
            train[col] = pd.Categorical(train[col].astype("string"), categories=cats)
            test[col] = pd.Categorical(test[col].astype("string"), categories=cats)
    return train, test


def run_baselines(spec, X_train, y_train, X_test, y_test) -> dict[str, tuple[float, float]]:
    import lightgbm as lgb
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    classify = spec["task"] != "regression"
    results = {}
    Xtr, Xte = as_categories(X_train, X_test)
    if classify:
        positive = spec["positive_label"]
        ytr, yte = (y_train.astype(str) == str(positive)).astype(int), (y_test.astype(str) == str(positive)).astype(int)
        contenders = {
            "lightgbm": lgb.LGBMClassifier(verbosity=-1, random_state=0),
            "histgb": HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0),
        }
    else:
        ytr, yte = y_train, y_test
        contenders = {
            "lightgbm": lgb.LGBMRegressor(verbosity=-1, random_state=0),
            "histgb": HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0),
        }
    for name, model in contenders.items():
        started = time.perf_counter()
        model.fit(Xtr, ytr)
        seconds = time.perf_counter() - started
        if classify:
            value = score(spec["primary_metric"], yte, proba_pos=model.predict_proba(Xte)[:, 1])
        else:
            value = score(spec["primary_metric"], yte, values=model.predict(Xte))
        results[name] = (value, seconds)
    return results


def run_takeoff(spec, train: pd.DataFrame, test: pd.DataFrame, budget: float | None) -> tuple[float, float, str]:
    import takeoff

    started = time.perf_counter()
    model = takeoff.train(train, target=spec["target"], time_budget=budget, seed=0)
    seconds = time.perf_counter() - started
    if spec["task"] == "regression":
        value = score(spec["primary_metric"], test[spec["target"]], values=model.predict(test))
    else:
        proba = model.predict_proba(test)[str(spec["positive_label"])]
        y = (test[spec["target"]].astype(str) == str(spec["positive_label"])).astype(int)
        value = score(spec["primary_metric"], y, proba_pos=proba)
    members = "+".join(f"{m['family']}:{m['weight']:.2f}" for m in model.manifest["members"])
    return value, seconds, members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=None, help="takeoff time budget per dataset (default: takeoff's default)")
    parser.add_argument("--only", nargs="*", help="dataset names to run")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    spec_file = json.loads((SPLITS / "datasets.json").read_text())
    rows = []
    for spec in spec_file["datasets"]:
        if args.only and spec["name"] not in args.only:
            continue
        train = pd.read_csv(SPLITS / spec["train"]["file"]).drop(columns=spec["drop_columns"])
        test = pd.read_csv(SPLITS / spec["test"]["file"]).drop(columns=spec["drop_columns"])
        target = spec["target"]
        base = run_baselines(spec, train.drop(columns=[target]), train[target], test.drop(columns=[target]), test[target])
        tk_value, tk_seconds, members = run_takeoff(spec, train, test, args.budget)
        higher = spec["primary_metric"] != "rmse"
        best_base = max(base.values(), key=lambda r: r[0] if higher else -r[0])[0]
        wins = tk_value >= best_base if higher else tk_value <= best_base
        row = {
            "dataset": spec["name"],
            "metric": spec["primary_metric"],
            "takeoff": tk_value,
            "lightgbm": base["lightgbm"][0],
            "histgb": base["histgb"][0],
            "takeoff_s": tk_seconds,
            "lightgbm_s": base["lightgbm"][1],
            "histgb_s": base["histgb"][1],
            "takeoff_model": members,
            "beats_best_baseline": wins,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    table = pd.DataFrame(rows)
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [
        "| dataset | metric | takeoff auto | LightGBM defaults | HistGB defaults | takeoff s | LightGBM s | HistGB s | takeoff model | takeoff ≥ best baseline |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['metric']} | {fmt(r['takeoff'])} | {fmt(r['lightgbm'])} | {fmt(r['histgb'])} | "
            f"{r['takeoff_s']:.1f} | {r['lightgbm_s']:.1f} | {r['histgb_s']:.1f} | {r['takeoff_model']} | {'yes' if r['beats_best_baseline'] else 'no'} |"
        )
    markdown = "\n".join(lines)
    print()
    print(markdown)
    print(f"\n{platform.platform()}, {os.cpu_count()} cores, python {platform.python_version()}", file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(markdown + "\n")
    if not table.empty and not table["beats_best_baseline"].all():
        print("takeoff is below the best baseline on:", ", ".join(table.loc[~table["beats_best_baseline"], "dataset"]), file=sys.stderr)


if __name__ == "__main__":
    main()
