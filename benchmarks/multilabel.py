"""Multilabel benchmark: which add-on services a telco customer takes, on the fixed telco split.

    python benchmarks/multilabel.py [--budget SECONDS] [--markdown FILE]

Targets: four 0/1 columns made from the table's own Yes/No columns (online_security,
tech_support, streaming_tv, streaming_movies); customers without internet service are left
out (they cannot take any). Inputs: the other columns, churn included. Contenders, same split,
same run: scikit-learn one-vs-rest logistic regression on one-hot + scaled inputs, one
LightGBM classifier per label (defaults), and takeoff `auto` trained from the 0/1 columns.
Reports micro-F1, macro-F1, exact match, macro ROC-AUC on the test file, and fit seconds.
The baselines decide at 0.5; takeoff at its per-label thresholds tuned on validation.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")) / "splits"
SERVICES = ["online_security", "tech_support", "streaming_tv", "streaming_movies"]


def load(name: str) -> pd.DataFrame:
    df = pd.read_csv(SPLITS / f"telco_churn.{name}.csv")
    df = df[df["internet_service"] != "No"].reset_index(drop=True)
    for column in SERVICES + ["online_backup", "device_protection"]:
        df[column] = (df[column] == "Yes").astype(int)
    return df


def scores(y: np.ndarray, proba: np.ndarray, hit: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score, roc_auc_score

    return {
        "micro_f1": float(f1_score(y, hit, average="micro")),
        "macro_f1": float(f1_score(y, hit, average="macro")),
        "exact_match": float((hit == y).all(axis=1).mean()),
        "roc_auc": float(roc_auc_score(y, proba, average="macro")),
    }


def baselines(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, tuple[dict[str, float], float]]:
    import lightgbm as lgb
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X_train, X_test = train.drop(columns=SERVICES), test.drop(columns=SERVICES)
    y_train, y_test = train[SERVICES].to_numpy(), test[SERVICES].to_numpy()
    text = [c for c in X_train.columns if not pd.api.types.is_numeric_dtype(X_train[c])]
    numbers = [c for c in X_train.columns if c not in text]
    out = {}
    started = time.monotonic()
    linear = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), text),
                                (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers)),
        OneVsRestClassifier(LogisticRegression(max_iter=2000)))
    linear.fit(X_train, y_train)
    proba = linear.predict_proba(X_test)
    out["baseline: one-vs-rest logistic regression (sklearn)"] = (scores(y_test, proba, (proba >= 0.5).astype(int)),
                                                                 time.monotonic() - started)
    started = time.monotonic()
    Xtr, Xte = X_train.copy(), X_test.copy()
    for c in text:
        cats = pd.Index(pd.concat([Xtr[c], Xte[c]]).dropna().astype(str).unique())
        Xtr[c], Xte[c] = pd.Categorical(Xtr[c].astype(str), cats), pd.Categorical(Xte[c].astype(str), cats)
    proba = np.column_stack([lgb.LGBMClassifier(verbosity=-1, random_state=0).fit(Xtr, y_train[:, k]).predict_proba(Xte)[:, 1]
                             for k in range(len(SERVICES))])
    out["baseline: LightGBM per label (defaults)"] = (scores(y_test, proba, (proba >= 0.5).astype(int)),
                                                     time.monotonic() - started)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=120, help="takeoff's time budget in seconds")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import takeoff
    import torch

    train, test = load("train"), load("test")
    print(f"telco services: {len(train)} train / {len(test)} test customers, labels {SERVICES}; "
          f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}", file=sys.stderr)
    results = baselines(train, test)
    started = time.monotonic()
    model = takeoff.train(train, target=SERVICES, time_budget=args.budget, seed=0)
    seconds = time.monotonic() - started
    proba = model.predict_proba(test).to_numpy()
    order = [model.classes.index(s) for s in SERVICES]
    hit = np.asarray(proba[:, order] >= np.asarray(model.threshold)[order], dtype=int)
    kept = " + ".join(m["family"] for m in model.manifest["members"])
    results[f"takeoff auto (kept {kept})"] = (scores(test[SERVICES].to_numpy(), proba[:, order], hit), seconds)
    lines = ["| model | micro-F1 | macro-F1 | exact match | macro ROC-AUC | seconds |", "|---|---|---|---|---|---|"]
    for name, (s, t) in results.items():
        lines.append(f"| {name} | {s['micro_f1']:.3f} | {s['macro_f1']:.3f} | {s['exact_match']:.3f} | "
                     f"{s['roc_auc']:.3f} | {t:.0f} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
