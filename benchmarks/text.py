"""Text: takeoff's text families against TF-IDF + logistic regression and frozen MiniLM +
logistic regression on the tweets split (target `source`), and the encoder's throughput
against sentence-transformers' `encode`, all in the same run.

    python benchmarks/text.py [--budget 600] [--families tfidf,text-embed,auto] [--skip-quality]

Quality uses the text column only (as the reference numbers in the issue do), then `auto` on
every column. Throughput embeds 2,000 training tweets with 2 torch threads.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def scores(y_true: np.ndarray, proba: np.ndarray, positive: str, classes: list) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return {"accuracy": accuracy_score(y_true, pred), "macro_f1": f1_score(y_true, pred, average="macro"),
            "roc_auc": roc_auc_score(y_true == positive, proba[:, list(classes).index(positive)])}


def throughput(texts: list[str]) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from takeoff.models.encoder import TextEncoder, resolve_encoder

    torch.set_num_threads(2)
    folder = resolve_encoder()
    st = SentenceTransformer(str(folder), device="cpu")
    ours = TextEncoder(folder)
    st.encode(texts[:64], batch_size=64)
    ours.embed(texts[:64])
    paths = {"sentence-transformers encode (batch 64)": lambda: st.encode(texts, batch_size=64),
             "takeoff TextEncoder.embed": lambda: ours.embed(texts)}
    # interleaved rounds, best of three each: both paths see the same machine load
    out = {name: (0.0, None) for name in paths}
    for _ in range(3):
        for name, fn in paths.items():
            started = time.perf_counter()
            vectors = fn()
            rate = len(texts) / (time.perf_counter() - started)
            out[name] = (max(out[name][0], rate), np.asarray(vectors))
    a, b = (v for _, v in out.values())
    cosine = float((a * b).sum(axis=1).min())
    return {"rows": {k: v[0] for k, v in out.items()}, "min_cosine": cosine}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=600.0, help="time budget per takeoff model (seconds)")
    parser.add_argument("--families", default="tfidf,text-embed,auto")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()

    train = pd.read_csv(DATA / "splits" / "tweets_source.train.csv")
    test = pd.read_csv(DATA / "splits" / "tweets_source.test.csv")
    positive = "Twitter for iPhone"
    rows = []
    if not args.skip_quality:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        started = time.perf_counter()
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        lr = LogisticRegression(max_iter=2000).fit(vectorizer.fit_transform(train["text"]), train["source"])
        proba = lr.predict_proba(vectorizer.transform(test["text"]))
        rows.append({"model": "baseline: TF-IDF (words 1-2) + logistic regression", "columns": "text",
                     **scores(test["source"].to_numpy(), proba, positive, list(lr.classes_)), "seconds": time.perf_counter() - started})
        print(json.dumps(rows[-1]), flush=True)

        from takeoff.models.encoder import TextEncoder, resolve_encoder

        started = time.perf_counter()
        encoder = TextEncoder(resolve_encoder())
        lr = LogisticRegression(max_iter=2000).fit(encoder.embed(train["text"].tolist()), train["source"])
        proba = lr.predict_proba(encoder.embed(test["text"].tolist()))
        rows.append({"model": "baseline: frozen MiniLM + logistic regression", "columns": "text",
                     **scores(test["source"].to_numpy(), proba, positive, list(lr.classes_)), "seconds": time.perf_counter() - started})
        print(json.dumps(rows[-1]), flush=True)

        import takeoff

        runs = [(f, ["text", "source"]) for f in args.families.split(",")] + [("auto", list(train.columns))]
        for family, columns in runs:
            started = time.perf_counter()
            model = takeoff.train(train[columns], target="source", family=family, time_budget=args.budget, seed=0)
            seconds = time.perf_counter() - started
            proba = model.predict_proba(test[columns]).to_numpy()
            kept = "+".join(m["family"] for m in model.manifest["members"])
            rows.append({"model": f"takeoff {family}" + (f" (kept {kept})" if family == "auto" else ""),
                         "columns": "text" if columns == ["text", "source"] else "all",
                         **scores(test["source"].to_numpy(), proba, positive, [str(c) for c in model.task.classes]),
                         "seconds": seconds})
            print(json.dumps(rows[-1]), flush=True)

    speed = throughput(train["text"].astype(str).tolist()[:2000])
    print(f"\ntweets_source: {len(train):,} training and {len(test):,} test tweets, {os.cpu_count()} cores, "
          f"takeoff budget {args.budget:g}s per model:\n")
    if rows:
        print("| model | columns | accuracy | macro-F1 | ROC-AUC | seconds |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['model']} | {r['columns']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['roc_auc']:.3f} | {r['seconds']:.0f} |")
    print("\n| encoder path (2,000 tweets, 2 threads) | texts/s |\n|---|---|")
    for name, rate in speed["rows"].items():
        print(f"| {name} | {rate:.0f} |")
    base, ours = speed["rows"].values()
    print(f"\nspeed-up {ours / base:.2f}x; smallest cosine between the two paths' vectors: {speed['min_cosine']:.6f}")


if __name__ == "__main__":
    main()
