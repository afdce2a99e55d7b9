"""Streaming batch prediction: `takeoff predict` on 100,000 and 1,000,000 rows.

    python benchmarks/predict_stream.py [--rows 1000000] [--workdir DIR]

Trains a LightGBM bundle on the credit-risk table, writes input CSVs of 100k, 400k and N rows
(sampled from the real table), then runs `takeoff predict` as a child process on each and
reports rows/s and the child's peak RSS. Peak RSS at N rows against the smaller files, in the
same run, shows whether memory stays flat (400k rows already span two 200k-row chunks); an
in-memory baseline (read the whole file with pandas, predict, write CSV) is measured beside it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHILD_PEAK = """
import resource, sys, time, json
import takeoff, pandas as pd
model = takeoff.load(sys.argv[1])
t = time.perf_counter()
df = pd.read_csv(sys.argv[2])
frame, _ = model.predict_frame(df)
frame.to_csv(sys.argv[3], index=False)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def peak_rss_of(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak RSS in MiB of that child, stdout)."""
    # ru_maxrss of RUSAGE_CHILDREN is the max over all waited-for children, so run each
    # measurement through a fresh intermediate Python that reports its own child's peak.
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(p.stderr)\n"
        "print(json.dumps({'rc': p.returncode, 'wall': time.perf_counter() - t, 'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, 'out': p.stdout}))\n"
    )
    result = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True)
    data = json.loads(result.stdout.strip().splitlines()[-1])
    if data["rc"] != 0:
        raise RuntimeError(f"{cmd} failed: {result.stderr[-2000:]}")
    return data["wall"], data["peak_kib"] / 1024, data["out"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import takeoff
    from takeoff.demo import demo_data

    work = args.workdir or Path(tempfile.mkdtemp(prefix="takeoff-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    credit = pd.read_csv(demo_data())
    bundle = work / "credit-lightgbm"
    if not bundle.exists():
        takeoff.train(credit, target="Status", family="lightgbm", out=bundle, time_budget=60)
    takeoff_bin = str(Path(sys.executable).with_name("takeoff"))
    features = credit.drop(columns=["Status"])
    rng = np.random.default_rng(0)

    results = []
    for n in sorted({100_000, 400_000, args.rows}):
        data = work / f"rows-{n}.csv"
        if not data.exists():
            sample = features.iloc[rng.integers(0, len(features), n)].reset_index(drop=True)
            sample.insert(0, "id", np.arange(n))
            sample.to_csv(data, index=False)
        wall, peak, _ = peak_rss_of([takeoff_bin, "predict", str(bundle), str(data), "-o", str(work / f"pred-{n}.csv"), "--id", "id"])
        base_wall, base_peak, _ = peak_rss_of([sys.executable, "-c", CHILD_PEAK, str(bundle), str(data), str(work / f"pred-mem-{n}.csv")])
        rows = len(pd.read_csv(work / f"pred-{n}.csv", usecols=["id"]))
        assert rows == n, (rows, n)
        results.append({"rows": n, "takeoff_predict_s": wall, "rows_per_s": n / wall, "peak_rss_mib": peak,
                        "in_memory_s": base_wall, "in_memory_peak_rss_mib": base_peak})
        print(json.dumps(results[-1]), flush=True)

    print("\n| rows | `takeoff predict` s (whole process) | rows/s | peak RSS MiB | in-memory pandas s | in-memory peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['rows']:,} | {r['takeoff_predict_s']:.1f} | {r['rows_per_s']:,.0f} | {r['peak_rss_mib']:.0f} | {r['in_memory_s']:.1f} | {r['in_memory_peak_rss_mib']:.0f} |")
    # 400k rows already span two 200k-row chunks: from there on, streaming memory should not grow
    for small in results[:-1]:
        big = results[-1]
        print(f"peak RSS {big['rows']:,} / {small['rows']:,} rows: takeoff predict "
              f"{big['peak_rss_mib'] / small['peak_rss_mib']:.2f}x, in-memory "
              f"{big['in_memory_peak_rss_mib'] / small['in_memory_peak_rss_mib']:.2f}x")


if __name__ == "__main__":
    main()
