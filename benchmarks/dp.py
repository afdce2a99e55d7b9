"""Differential privacy: what DP-SGD costs the mlp on a shared table, at ε ∈ {1, 3, 8, ∞}.

    python benchmarks/dp.py [--table credit_risk] [--seeds 0,1,2] [--epochs 10] [--json out.json]

Each run trains the mlp family on the table's fixed train split (``shared/datasets/splits``)
and scores it on the fixed test split: ε = ∞ is the ordinary (non-private) mlp with its early
stopping; finite ε is DP-SGD through Opacus (Poisson sampling, per-row clipping at 1.0, noise
calibrated to spend ε over ``--epochs`` epochs, δ = min(1e-5, 0.1 / rows)). Prints one row per
ε: accuracy and ROC AUC (mean ± sd over seeds), the ε the accountant reports as spent, and
the noise multiplier. See docs/privacy.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

DATA = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
TARGETS = {"credit_risk": "Status", "telco_churn": "churn"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="credit_risk", choices=sorted(TARGETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--epsilons", default="1,3,8,inf")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import takeoff

    train = pd.read_csv(DATA / "splits" / f"{args.table}.train.csv")
    test = pd.read_csv(DATA / "splits" / f"{args.table}.test.csv")
    target = TARGETS[args.table]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for eps_text in args.epsilons.split(","):
        eps = float(eps_text)
        runs = []
        for seed in seeds:
            config = {"family": "mlp", "seed": seed, "dp": {"epochs": args.epochs}}
            started = time.monotonic()
            with tempfile.TemporaryDirectory() as scratch:
                model = takeoff.train(train, target, config=config, time_budget=600, out=Path(scratch) / "m",
                                      dp_epsilon=None if eps == float("inf") else eps)
                metrics = model.evaluate(test)
            dp = model.manifest.get("privacy", {}).get("dp") or {}
            runs.append({"seed": seed, "accuracy": metrics["accuracy"], "roc_auc": metrics["roc_auc"],
                         "epsilon_spent": dp.get("epsilon"), "noise_multiplier": dp.get("noise_multiplier"),
                         "steps": dp.get("steps"), "seconds": time.monotonic() - started})
            print(f"ε={eps_text} seed={seed}: accuracy {metrics['accuracy']:.4f}, ROC AUC {metrics['roc_auc']:.4f}, "
                  f"spent {dp.get('epsilon')}, {runs[-1]['seconds']:.0f}s", flush=True)
        rows.append({"epsilon": eps_text, "runs": runs})
    print(f"\n{args.table}: train {len(train):,} rows, test {len(test):,} rows; mlp; DP-SGD {args.epochs} epochs, "
          f"seeds {args.seeds}\n")
    print("| ε (target) | ε spent (accountant) | noise multiplier | accuracy | ROC AUC | seconds per fit |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        r = row["runs"]

        def stat(key: str) -> str:
            values = [x[key] for x in r]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.4f} ± {sd:.4f}"

        spent = "—" if r[0]["epsilon_spent"] is None else f"{statistics.mean(x['epsilon_spent'] for x in r):.3f}"
        noise = "—" if r[0]["noise_multiplier"] is None else f"{r[0]['noise_multiplier']:.3f}"
        print(f"| {row['epsilon']} | {spent} | {noise} | {stat('accuracy')} | {stat('roc_auc')} | "
              f"{statistics.mean(x['seconds'] for x in r):.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
