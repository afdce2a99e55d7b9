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


def throughput(texts: list[str], rounds: int = 5) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from takeoff.models.encoder import TextEncoder, resolve_encoder

    torch.set_num_threads(2)
    folder = resolve_encoder()
    st = SentenceTransformer(str(folder), device="cpu")
    ours = TextEncoder(folder)  # the default: bf16 where the CPU has it, else ONNX Runtime float32
    fp32 = TextEncoder(folder, runtime="torch", precision="fp32")
    onnx = TextEncoder(folder, runtime="onnx")
    started = time.perf_counter()
    onnx.embed(texts[:64])  # exports the graph (once per encoder)
    export_s = time.perf_counter() - started
    ours.embed(texts[:64])
    fp32.embed(texts[:64])
    st.encode(texts[:64], batch_size=64)

    def st_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return st.encode(texts, batch_size=64)

    batches = f"batches of ~{ours.max_tokens:,} tokens, one padded length each"
    paths = {"sentence-transformers encode (batch 64, float32: its default)": lambda: st.encode(texts, batch_size=64),
             "sentence-transformers encode (batch 64) under bf16 autocast": st_bf16,
             f"takeoff TextEncoder.embed, PyTorch float32 ({batches})": lambda: fp32.embed(texts),
             "takeoff TextEncoder.embed, ONNX Runtime float32, same batches": lambda: onnx.embed(texts),
             f"takeoff TextEncoder.embed, default here: {ours.runtime} {ours.precision}, same batches":
                 lambda: ours.embed(texts)}
    # interleaved rounds, best of each: all paths see the same machine load
    out = {name: (0.0, None) for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            started = time.perf_counter()
            vectors = fn()
            rate = len(texts) / (time.perf_counter() - started)
            out[name] = (max(out[name][0], rate), np.asarray(vectors))
    base, *others = (v for _, v in out.values())
    cosines = {name: float((base * v).sum(axis=1).min()) for name, (_, v) in list(out.items())[1:]}
    return {"rows": {k: v[0] for k, v in out.items()}, "min_cosine": cosines, "export_s": export_s}


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
    print("\n| encoder path (2,000 tweets, 2 threads) | texts/s | vs sentence-transformers | smallest cosine to its vectors |"
          "\n|---|---|---|---|")
    base = next(iter(speed["rows"].values()))
    for name, rate in speed["rows"].items():
        cosine = speed["min_cosine"].get(name)
        print(f"| {name} | {rate:.0f} | {rate / base:.2f}x | {'—' if cosine is None else f'{cosine:.6f}'} |")
    print(f"\nthe ONNX export took {speed['export_s']:.1f} s (once per encoder, included in no row)")


if __name__ == "__main__":
    main()
