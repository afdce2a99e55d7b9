"""Personal data: recall and precision of the scanner per kind, on a generated table with
known planted values mixed with look-alikes (order numbers, non-Luhn 16-digit numbers, invalid
IBANs, version strings, SSNs of ranges never issued, dates, times, handles, SKUs).

    python benchmarks/pii.py [--per-kind 200] [--seed 0] [--json out.json]

A planted value counts as found when a span of its kind covers exactly it; any other span is
a false positive of its kind. Speed: the scan of the whole table (every row, both string
columns), against reading the same table from CSV in the same run (a ratio, this machine).

Goal (issue 24): recall ≥ 0.95 and precision ≥ 0.95 for every kind.
"""

from __future__ import annotations

import argparse
import io
import json
import time

from takeoff.data.pii import KINDS, find, scan
from takeoff.testing.pii import planted_table


def measure(per_kind: int, seed: int) -> dict:
    df, planted = planted_table(per_kind=per_kind, seed=seed)
    truth = {(p["row"], p["column"]): p for p in planted}
    tp = dict.fromkeys(KINDS, 0)
    fp = dict.fromkeys(KINDS, 0)
    misses: dict[str, list[str]] = {k: [] for k in KINDS}
    wrong: dict[str, list[str]] = {k: [] for k in KINDS}
    for column in ("note", "contact"):
        for row, text in enumerate(df[column]):
            spans = find(str(text))
            p = truth.get((row, column))
            hit = False
            for start, end, kind in spans:
                if p is not None and kind == p["kind"] and text[start:end] == p["value"]:
                    tp[kind] += 1
                    hit = True
                else:
                    fp[kind] += 1
                    wrong[kind].append(text[start:end])
            if p is not None and not hit:
                misses[p["kind"]].append(p["value"])
    planted_per_kind = {k: sum(p["kind"] == k for p in planted) for k in KINDS}
    rows = {}
    for k in KINDS:
        rows[k] = {"planted": planted_per_kind[k], "found": tp[k], "false_positives": fp[k],
                   "recall": tp[k] / planted_per_kind[k] if planted_per_kind[k] else None,
                   "precision": tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else None,
                   "missed_examples": misses[k][:3], "false_positive_examples": wrong[k][:3]}
    csv = df.to_csv(index=False)
    import pandas as pd

    started = time.perf_counter()
    pd.read_csv(io.StringIO(csv))
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    scan(df, ["note", "contact"], sample_rows=len(df))
    scan_s = time.perf_counter() - started
    return {"rows": len(df), "lookalikes": len(df) - len(planted), "kinds": rows,
            "scan_seconds": round(scan_s, 3), "read_csv_seconds": round(read_s, 4),
            "scan_over_read": round(scan_s / read_s, 1), "rows_per_second": round(len(df) / scan_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = measure(args.per_kind, args.seed)
    print(f"{result['rows']} rows: {args.per_kind} planted values per kind, {result['lookalikes']} look-alikes")
    print(f"{'kind':<7}{'planted':>9}{'found':>7}{'false +':>9}{'recall':>8}{'precision':>11}")
    ok = True
    for kind, r in result["kinds"].items():
        print(f"{kind:<7}{r['planted']:>9}{r['found']:>7}{r['false_positives']:>9}{r['recall']:>8.3f}{r['precision']:>11.3f}")
        ok &= r["recall"] >= 0.95 and r["precision"] >= 0.95
        for label, key in (("missed", "missed_examples"), ("false +", "false_positive_examples")):
            if r[key]:
                print(f"        {label}: {', '.join(r[key])}")
    print(f"scan of every row: {result['scan_seconds']}s ({result['rows_per_second']:,} rows/s), "
          f"{result['scan_over_read']}× the time pandas takes to read the same table from CSV")
    print("goal (recall and precision ≥ 0.95 for every kind):", "met" if ok else "NOT met")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
