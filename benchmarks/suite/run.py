"""Run the public suite: every contender on the same fixed splits of every table, one JSON
result per (table, split, contender), then the summary table.

    python -m benchmarks.suite.run [--budget 30] [--only TABLE ...] [--contenders takeoff,lightgbm]
                                   [--results DIR] [--fresh] [--tie-tolerance 0.002] [--markdown FILE]

Existing results in ``--results`` are kept (a run resumes where it stopped; failed ones are
tried again); ``--fresh`` re-runs everything asked for. Re-running one contender against
stored peers: ``--contenders takeoff --fresh`` with the same ``--results``; the summary always
reads every stored contender. See benchmarks/suite/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shlex
import sys
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import from the repository root, not this folder
    sys.path[0] = str(Path(__file__).resolve().parents[2])

import numpy as np
import pandas as pd

from benchmarks.suite import datasets
from benchmarks.suite.contenders import CONTENDERS
from benchmarks.suite.report import render
from benchmarks.suite.scoring import HIGHER_IS_BETTER, RANKED, score, summarize

SMALL_TABLE_ROWS = 1_000  # tables under this get SMALL_TABLE_SPLITS splits, others one
SMALL_TABLE_SPLITS = 3
TEST_SHARE = 0.25
DEFAULT_RESULTS = Path(__file__).resolve().parents[1] / "out" / "suite"  # git ignores benchmarks/out/


def split_indices(frame: pd.DataFrame, table: datasets.Table) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded 75/25 splits (seed = split number), stratified for classification."""
    from sklearn.model_selection import train_test_split

    n_splits = SMALL_TABLE_SPLITS if len(frame) < SMALL_TABLE_ROWS else 1
    stratify = None if table.task == "regression" else frame[table.target]
    return [tuple(train_test_split(np.arange(len(frame)), test_size=TEST_SHARE, random_state=seed, stratify=stratify))
            for seed in range(n_splits)]


def result_path(results: Path, table: str, split: int, contender: str) -> Path:
    return results / table / f"split{split}-{contender}.json"


def write_json(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    tmp.replace(path)


def run_one(table: datasets.Table, frame: pd.DataFrame, split: int, indices, contender: str, budget: float) -> dict:
    """Fit one contender on one split and score it; a failure is recorded, not raised."""
    train_idx, test_idx = indices
    train, test = frame.iloc[train_idx].reset_index(drop=True), frame.iloc[test_idx].reset_index(drop=True)
    metric = RANKED[table.task]
    record = {"table": table.name, "task": table.task, "rows": len(frame), "split": split, "contender": contender,
              "ranked_metric": metric, "higher_is_better": HIGHER_IS_BETTER[metric], "budget": budget,
              "started": dt.datetime.now().isoformat(timespec="seconds"), "error": None}
    try:
        prediction = CONTENDERS[contender](train, test.drop(columns=[table.target]), table.target, table.task, budget, metric)
        classes = sorted(frame[table.target].unique()) if table.task != "regression" else []
        metrics = score(table.task, test[table.target], prediction, classes)
        record.update(metrics=metrics, ranked_score=metrics[metric], fit_seconds=prediction.fit_seconds,
                      wall_seconds=prediction.wall_seconds, info=prediction.info)
    except Exception:  # noqa: BLE001 - one failing fit must not stop the suite; the record says why
        record["error"] = traceback.format_exc(limit=8)
    return record


def load_records(results: Path, tables: list[str]) -> pd.DataFrame:
    rows = [json.loads(p.read_text()) for name in tables for p in sorted((results / name).glob("*.json"))]
    records = pd.DataFrame(rows)
    for column in ("ranked_score", "fit_seconds", "wall_seconds", "info", "error"):
        if column not in records:
            records[column] = None
    records["ranked_score"] = records["ranked_score"].astype(float)
    records["fit_seconds"] = records["fit_seconds"].astype(float)
    return records


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=30, help="seconds per fit for takeoff and AutoGluon (default 30)")
    parser.add_argument("--only", nargs="+", metavar="TABLE", choices=sorted(datasets.BY_NAME), help="tables to run")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated, from {', '.join(CONTENDERS)} (default: all)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help="folder of results, one JSON per (table, split, contender) (default benchmarks/out/suite)")
    parser.add_argument("--fresh", action="store_true", help="re-run the asked contenders even where results exist")
    parser.add_argument("--shard", default="0/1", metavar="I/N",
                        help="run only every N-th (table, split), starting at the I-th: N workers, each pinned to "
                             "its own core, share a run (see README); the summary reads every stored result")
    parser.add_argument("--summary-only", action="store_true", help="run nothing; summarize the stored results")
    parser.add_argument("--tie-tolerance", type=float, default=0.002,
                        help="relative difference under which takeoff vs a peer is a tie (default 0.002 = 0.2%%)")
    parser.add_argument("--markdown", type=Path, help="also write the summary table here")
    parser.add_argument("--title", default="Public suite", help="heading of the Markdown section")
    args = parser.parse_args(argv)
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    try:
        args.shard = tuple(int(x) for x in args.shard.split("/"))
        assert len(args.shard) == 2 and 0 <= args.shard[0] < args.shard[1]
    except (ValueError, AssertionError):
        parser.error(f"--shard takes I/N with 0 <= I < N, e.g. 0/2; received {args.shard!r}")
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {', '.join(CONTENDERS)}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tables = [datasets.BY_NAME[n] for n in args.only] if args.only else list(datasets.TABLES)
    job = -1
    for table in [] if args.summary_only else tables:
        frame = datasets.load(table)
        for split, indices in enumerate(split_indices(frame, table)):
            job += 1
            if job % args.shard[1] != args.shard[0]:
                continue
            for contender in args.contenders:
                path = result_path(args.results, table.name, split, contender)
                if path.exists() and not args.fresh and json.loads(path.read_text())["error"] is None:
                    continue
                record = run_one(table, frame, split, indices, contender, args.budget)
                write_json(path, record)
                shown = "FAILED " + record["error"].strip().splitlines()[-1] if record["error"] else \
                    f"{record['ranked_metric']} {record['ranked_score']:.4f}  fit {record['fit_seconds']:.1f} s"
                print(f"{table.name:22s} split {split} {contender:10s} {shown}", flush=True)

    records = load_records(args.results, [t.name for t in tables])
    if records.empty:
        sys.exit(f"no results in {args.results}")
    summary = summarize(records, tie_tolerance=args.tie_tolerance)
    command = "python -m benchmarks.suite.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    markdown = render(summary, records, command=command, budget=args.budget, tie_tolerance=args.tie_tolerance,
                      title=args.title)
    print("\n" + markdown)
    if args.markdown:
        args.markdown.write_text(markdown)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
