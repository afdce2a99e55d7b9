"""What MLflow tracking costs a training run: paired runs in one process, the same 60-second
``takeoff.train`` without and with ``track=True`` (alternating which goes first), plus the
one-time cost of a fresh store (importing MLflow and creating its SQLite tables).

    python benchmarks/tracking.py --data credit_risk.csv --target Status --budget 60 --pairs 3

Reports the wall time of each run, the time ``log_train`` itself took (timed inside the tracked
run), and its share of the training's wall time (goal < 2%).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import takeoff
    from takeoff import tracking

    logging.getLogger("takeoff").setLevel(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlruns/mlflow.db"
        started = time.perf_counter()
        tracking.record("train", name="warm-up", params={}, metrics={"x": 1.0}, uri=store)
        first = time.perf_counter() - started
        print(f"fresh store (import MLflow, create its tables, one empty run): {first:.1f}s", flush=True)
        for pair in range(args.pairs):
            order = (False, True) if pair % 2 == 0 else (True, False)
            walls = {}
            for track in order:
                out = Path(tmp) / f"run{pair}-{int(track)}"
                started = time.perf_counter()
                model = takeoff.train(args.data, args.target, time_budget=args.budget, out=out)
                trained = time.perf_counter()
                if track:
                    tracking.log_train(model, uri=store)
                done = time.perf_counter()
                walls[track] = {"wall": done - started, "train": trained - started, "log": done - trained}
            share = walls[True]["log"] / walls[True]["train"]
            rows.append({"pair": pair, "untracked_s": round(walls[False]["wall"], 2), "tracked_s": round(walls[True]["wall"], 2),
                         "log_train_s": round(walls[True]["log"], 3), "log_share": round(share, 4)})
            print(f"pair {pair}: untracked {walls[False]['wall']:.1f}s, tracked {walls[True]['wall']:.1f}s "
                  f"(of which logging {walls[True]['log']:.2f}s = {share:.2%})", flush=True)
    shares = [r["log_share"] for r in rows]
    ratio = statistics.mean(r["tracked_s"] / r["untracked_s"] for r in rows)
    summary = {"pairs": rows, "fresh_store_s": round(first, 2), "mean_log_share": round(statistics.mean(shares), 4),
               "max_log_share": round(max(shares), 4), "mean_wall_ratio": round(ratio, 4)}
    print(f"logging costs {statistics.mean(shares):.2%} of a {args.budget:g}s training on average (max {max(shares):.2%}; "
          f"goal < 2%); tracked/untracked wall time {ratio:.3f} (budget-bound runs: noise of the machine)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    sys.exit(main())
