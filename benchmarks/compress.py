"""Compression: what `takeoff compress` buys and costs, each original and its compressed bundle
measured in the same run on the same held-out rows (the fixed test splits).

    python benchmarks/compress.py [--text-budget 420] [--skip-text] [--skip-tabular] [--json out.json]

Text: a MiniLM fine-tuned on the tweets (text column only, target `source`) is the PyTorch
fp32 bundle; it is exported to ONNX (fp32), to ONNX with int8 weights, and distilled into the
TF-IDF + linear family. Tabular: the credit-risk `auto` bundle (LightGBM + MLP) exported,
pruned and distilled. Latency is from JSON-like records to outputs, in process, on this
machine's CPU; p50 over alternating blocks of calls per bundle (see takeoff/compression/measure.py).

Goals (from the issue): int8 ONNX MiniLM ≥ 3× faster and ≥ 3.5× smaller than the PyTorch fp32
bundle with at most one point of accuracy lost; a distilled student ≥ 10× faster than its
teacher within two points.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

DATA = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def row(label: str, result, seconds: float) -> dict:
    from takeoff.compression.report import comparison_rows

    r = result.ratios()
    d = result.deltas()
    o, c = result.original, result.compressed
    out = {
        "variant": label,
        "steps": [s["step"] for s in result.steps],
        "mb_before": o.bytes / 1e6, "mb_after": c.bytes / 1e6, "size_ratio": r["size"],
        "b1_ms_before": o.latency_ms["1"]["p50"], "b1_ms_after": c.latency_ms["1"]["p50"],
        "b64_ms_before": o.latency_ms["64"]["p50"], "b64_ms_after": c.latency_ms["64"]["p50"],
        "speed_b1": r["speed_b1_p50"], "speed_b64": r["speed_b64_p50"],
        "seconds": seconds,
        "details": result.steps,
        "table": comparison_rows(result),
    }
    for metric in ("accuracy", "roc_auc", "macro_f1", "rmse"):
        if metric in o.metrics:
            out[f"{metric}_before"], out[f"{metric}_after"], out[f"{metric}_delta"] = o.metrics[metric], c.metrics[metric], d[metric]
    print(json.dumps({k: v for k, v in out.items() if k not in ("details", "table")}), flush=True)
    return out


def run(label: str, bundle: Path, train: pd.DataFrame, test: pd.DataFrame, work: Path, **options) -> dict:
    from takeoff.compression.compress import compress

    started = time.perf_counter()
    result = compress(bundle, train, work / label.replace(" ", "-"), eval_data=test, **options)
    return row(label, result, time.perf_counter() - started)


def text_part(budget: float, work: Path) -> list[dict]:
    import takeoff

    train = pd.read_csv(DATA / "splits" / "tweets_source.train.csv")[["text", "source"]]
    test = pd.read_csv(DATA / "splits" / "tweets_source.test.csv")[["text", "source"]]
    teacher = work / "tweets-minilm"
    started = time.perf_counter()
    takeoff.train(train, target="source", family="text-finetune", time_budget=budget, seed=0, out=teacher,
                  config={"models": {"text-finetune": {"max_length": 64}}, "refit": False})
    print(f"text-finetune trained in {time.perf_counter() - started:.0f}s", flush=True)
    rows = [
        run("MiniLM fine-tuned → ONNX fp32", teacher, train, test, work, onnx=True),
        run("MiniLM fine-tuned → ONNX int8", teacher, train, test, work, quantize="int8"),
        run("MiniLM fine-tuned → distilled into tfidf", teacher, train, test, work, distill="tfidf", time_budget=180),
    ]
    for r in rows:
        r["dataset"] = "tweets_source (text)"
    return rows


def tabular_part(work: Path) -> list[dict]:
    import takeoff

    train = pd.read_csv(DATA / "splits" / "credit_risk.train.csv")
    test = pd.read_csv(DATA / "splits" / "credit_risk.test.csv")
    teacher = work / "credit-auto"
    takeoff.train(train, target="Status", time_budget=60, seed=0, out=teacher)
    rows = [
        run("credit auto → ONNX fp32", teacher, train, test, work, onnx=True),
        run("credit auto → ONNX int8 (mlp weights)", teacher, train, test, work, quantize="int8"),
        run("credit auto → prune 50% (trees, mlp weights)", teacher, train, test, work, prune=0.5, time_budget=30),
        run("credit auto → prune 50% structured", teacher, train, test, work, prune=0.5, structured=True, time_budget=30),
        run("credit auto → distilled into lightgbm", teacher, train, test, work, distill="lightgbm", time_budget=60),
    ]
    trees = work / "credit-lightgbm"
    takeoff.train(train, target="Status", family="lightgbm", time_budget=60, seed=0, out=trees)
    rows += [
        run("credit lightgbm → ONNX fp32 (tree ensemble in ONNX Runtime)", trees, train, test, work, onnx=True),
        run("credit lightgbm → prune 50% of the rounds", trees, train, test, work, prune=0.5),
    ]
    for r in rows:
        r["dataset"] = "credit_risk"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text-budget", type=float, default=420.0, help="seconds to fine-tune MiniLM")
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-tabular", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args()

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="takeoff-bench-compress-") as work:
        work = Path(work)
        if not args.skip_tabular:
            rows += tabular_part(work)
        if not args.skip_text:
            rows += text_part(args.text_budget, work)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(f"\n{os.cpu_count()} cores; p50 latency from records to outputs; metrics on the test split\n")
    print("| dataset | variant | MB before → after | size × | batch 1 ms | × | batch 64 ms | × | accuracy Δ | ROC-AUC Δ |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        acc = f"{r['accuracy_before']:.3f} → {r['accuracy_after']:.3f}" if "accuracy_before" in r else "—"
        auc = f"{r['roc_auc_delta']:+.4f}" if "roc_auc_delta" in r else "—"
        print(f"| {r['dataset']} | {r['variant']} | {r['mb_before']:.2f} → {r['mb_after']:.2f} | {r['size_ratio']:.2f} "
              f"| {r['b1_ms_before']:.2f} → {r['b1_ms_after']:.2f} | {r['speed_b1']:.2f} "
              f"| {r['b64_ms_before']:.1f} → {r['b64_ms_after']:.1f} | {r['speed_b64']:.2f} | {acc} | {auc} |")


if __name__ == "__main__":
    main()
