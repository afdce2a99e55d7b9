"""Recommendation on MovieLens: takeoff's families and `auto` against popularity and against
`implicit` ALS with a small grid, on the fixed leave-last-out split, in the same run.

    python benchmarks/recsys.py [--budget 60] [--families popular,itemknn,als,two-tower,auto]

Every model is fitted on `splits/movielens.train.csv` and ranks, for each user of
`splits/movielens.test.csv`, every item the user has not rated in training (HR@10, NDCG@10).
Item features (title, genres) come from `movielens_ratings.csv`. Then the latency of
`Model.recommend` for one user (p50/p99 over 500 calls) and of `recommend_batch` for 1,000 users.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
K = 10


def baseline_metrics(train: pd.DataFrame, test: pd.DataFrame, scores_for) -> dict:
    """HR/NDCG@10 of a score matrix maker over the same items-not-seen ranking."""
    import scipy.sparse as sp

    from takeoff.evaluation.ranking import ranking_metrics, top_k

    users = {u: i for i, u in enumerate(sorted(train["userId"].unique()))}
    items = {m: i for i, m in enumerate(sorted(train["movieId"].unique()))}
    seen = sp.csr_matrix((np.ones(len(train)), (train["userId"].map(users), train["movieId"].map(items))),
                         shape=(len(users), len(items)))
    seen.data[:] = 1.0
    started = time.perf_counter()
    scores = scores_for(seen)
    fit = time.perf_counter() - started
    rows = test["userId"].map(users).to_numpy()
    truth = [{items[m]} if m in items else set() for m in test["movieId"]]
    truth = [t if t else {-2} for t in truth]  # an item never seen in training is a miss for everyone
    matrix = np.asarray(scores[rows], dtype=np.float64)
    matrix[seen[rows].nonzero()] = -np.inf
    metrics = ranking_metrics(top_k(matrix, K), truth, len(items), K)
    return {"hr@10": metrics["hr@10"], "ndcg@10": metrics["ndcg@10"], "fit_s": fit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60.0, help="time budget per takeoff model (seconds)")
    parser.add_argument("--families", default="popular,itemknn,als,two-tower,auto")
    args = parser.parse_args()

    import takeoff

    train = pd.read_csv(DATA / "splits" / "movielens.train.csv")
    test = pd.read_csv(DATA / "splits" / "movielens.test.csv")
    work = Path(tempfile.mkdtemp(prefix="takeoff-recsys-"))
    items = pd.read_csv(DATA / "movielens_ratings.csv")[["movieId", "title", "genres"]].drop_duplicates("movieId")
    items_path = work / "items.csv"
    items.to_csv(items_path, index=False)
    rows = []

    # baselines, measured here on the same split
    pop = baseline_metrics(train, test, lambda seen: np.tile(np.asarray(seen.sum(axis=0)).ravel(), (seen.shape[0], 1)))
    rows.append({"model": "baseline: popularity", **pop})
    import implicit
    from threadpoolctl import threadpool_limits

    best_als = None
    for factors in (32, 64, 128):
        for reg in (0.01, 0.1):
            def als_scores(seen, factors=factors, reg=reg):
                with threadpool_limits(1, "blas"):
                    model = implicit.cpu.als.AlternatingLeastSquares(
                        factors=factors, regularization=reg, iterations=15, random_state=0)
                    model.fit(seen.tocsr().astype(np.float32), show_progress=False)
                return model.user_factors @ model.item_factors.T

            result = baseline_metrics(train, test, als_scores)
            print(f"implicit ALS factors={factors} reg={reg}: NDCG@10 {result['ndcg@10']:.4f}", flush=True)
            if best_als is None or result["ndcg@10"] > best_als["ndcg@10"]:
                best_als = {**result, "model": f"baseline: implicit ALS (best of 6: {factors} factors, reg {reg})"}
    rows.append(best_als)

    latency = None
    for family in args.families.split(","):
        started = time.perf_counter()
        model = takeoff.train(train, task="recommend", user="userId", item="movieId", rating="rating",
                              time_column="timestamp", items=items_path, family=family, time_budget=args.budget,
                              out=work / family, seed=0)
        seconds = time.perf_counter() - started
        metrics = model.evaluate(test)
        label = f"takeoff {family}" + (f" (chose {model.manifest['family']})" if family == "auto" else "")
        rows.append({"model": label, "hr@10": metrics["hr@10"], "ndcg@10": metrics["ndcg@10"], "fit_s": seconds})
        print(json.dumps(rows[-1]), flush=True)
        if family == "auto":
            users = sorted(train["userId"].unique())
            one = []
            for i in range(500):
                s = time.perf_counter()
                model.recommend(users[i % len(users)], k=K)
                one.append(time.perf_counter() - s)
            batch_users = [users[i % len(users)] for i in range(1000)]
            s = time.perf_counter()
            model.recommend_batch(batch_users, k=K)
            latency = {"family": model.manifest["family"], "p50_ms": np.percentile(one, 50) * 1e3,
                       "p99_ms": np.percentile(one, 99) * 1e3, "batch_1000_ms": (time.perf_counter() - s) * 1e3}

    best_baseline = max(r["ndcg@10"] for r in rows if r["model"].startswith("baseline"))
    best_takeoff = max((r["ndcg@10"] for r in rows if r["model"].startswith("takeoff")), default=float("nan"))
    print(f"\nMovieLens leave-last-out ({len(test)} users, {train['movieId'].nunique():,} items, "
          f"{len(train):,} training interactions), {os.cpu_count()} cores, budget {args.budget:g}s per takeoff model:\n")
    print("| model | HR@10 | NDCG@10 | fit s |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {r['fit_s']:.1f} |")
    print(f"\ntakeoff best NDCG@10 / best baseline: {best_takeoff / best_baseline:.2f}x")
    if latency:
        print(f"recommend one user ({latency['family']}): p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms; "
              f"1,000 users in one recommend_batch: {latency['batch_1000_ms']:.0f} ms")


if __name__ == "__main__":
    main()
