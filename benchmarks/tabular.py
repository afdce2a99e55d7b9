"""Tabular benchmark: takeoff `auto` vs AutoGluon `medium_quality` (same budget), LightGBM
defaults, scikit-learn HistGradientBoosting defaults and a tuned linear model, on every fixed
split in shared/datasets/splits/datasets.json, in the same run. The contenders are the public
suite's (benchmarks/suite/contenders.py; AutoGluon runs in its own virtual environment, see
benchmarks/suite/autogluon_peer.py).

    python benchmarks/tabular.py [--budget SECONDS] [--only NAME ...] [--contenders takeoff,lightgbm,...]
                                 [--markdown FILE]

Prints, per dataset, the primary metric on the test file and the fit time of each contender.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks.suite

from benchmarks.suite.contenders import CONTENDERS  # noqa: E402
from benchmarks.suite.scoring import HIGHER_IS_BETTER, score  # noqa: E402

SPLITS = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")) / "splits"
DEFAULT_BUDGET = 120  # takeoff's default time budget, given to AutoGluon too
LABELS = {"takeoff": "takeoff auto", "autogluon": "AutoGluon medium", "lightgbm": "LightGBM defaults",
          "hgb": "HistGB defaults", "linear": "tuned linear"}


def run_dataset(spec: dict, contenders: list[str], budget: float) -> dict:
    """Every contender on one fixed split: {contender: (score, fit seconds, info)}."""
    train = pd.read_csv(SPLITS / spec["train"]["file"]).drop(columns=spec["drop_columns"])
    test = pd.read_csv(SPLITS / spec["test"]["file"]).drop(columns=spec["drop_columns"])
    target, task, metric = spec["target"], spec["task"], spec["primary_metric"]
    if task != "regression":
        train[target], test[target] = train[target].astype(str), test[target].astype(str)
    classes = sorted(train[target].unique()) if task != "regression" else []
    results = {}
    for name in contenders:
        prediction = CONTENDERS[name](train, test.drop(columns=[target]), target, task, budget, metric)
        results[name] = (score(task, test[target], prediction, classes)[metric], prediction.fit_seconds, prediction.info)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET,
                        help=f"seconds per dataset for takeoff and AutoGluon (default {DEFAULT_BUDGET})")
    parser.add_argument("--only", nargs="*", help="dataset names to run")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated (default: all)")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    contenders = [c for c in args.contenders.split(",") if c]

    spec_file = json.loads((SPLITS / "datasets.json").read_text())
    rows = []
    for spec in spec_file["datasets"]:
        if args.only and spec["name"] not in args.only:
            continue
        results = run_dataset(spec, contenders, args.budget)
        higher = HIGHER_IS_BETTER[spec["primary_metric"]]
        row = {"dataset": spec["name"], "metric": spec["primary_metric"]}
        row.update({name: r[0] for name, r in results.items()})
        row.update({f"{name}_s": r[1] for name, r in results.items()})
        if "takeoff" in results:
            row["takeoff_model"] = "+".join(f"{f}:{w:.2f}" for f, w in results["takeoff"][2].get("members", {}).items())
            peers = [r[0] for name, r in results.items() if name != "takeoff"]
            if peers:
                best = max(peers) if higher else min(peers)
                row["beats_best_peer"] = results["takeoff"][0] >= best if higher else results["takeoff"][0] <= best
        rows.append(row)
        print(json.dumps(row), flush=True)

    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    header = ["dataset", "metric"] + [LABELS[c] for c in contenders] + [f"{c} s" for c in contenders]
    if "takeoff" in contenders and len(contenders) > 1:
        header += ["takeoff model", "takeoff ≥ best peer"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for r in rows:
        cells = [r["dataset"], r["metric"]] + [fmt(r[c]) for c in contenders] + [f"{r[f'{c}_s']:.1f}" for c in contenders]
        if "beats_best_peer" in r:
            cells += [r["takeoff_model"], "yes" if r["beats_best_peer"] else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    markdown = "\n".join(lines)
    print()
    print(markdown)
    print(f"\nbudget {args.budget:g} s; {platform.platform()}, {os.cpu_count()} cores, python {platform.python_version()}",
          file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(markdown + "\n")
    behind = [r["dataset"] for r in rows if r.get("beats_best_peer") is False]
    if behind:
        print("takeoff is below the best peer on:", ", ".join(behind), file=sys.stderr)


if __name__ == "__main__":
    main()
