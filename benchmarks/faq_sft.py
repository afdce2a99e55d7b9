"""Does fine-tuning help? SmolLM2-135M-Instruct fine-tuned with takeoff on the Debian FAQ
support pairs (benchmarks/data/debian_faq, train split) within a CPU time budget, then the base
model and the fine-tuned one scored on the held-out test split: perplexity of the reference
answers, and ROUGE-L / token F1 / exact match of greedy answers.

Usage::

    python benchmarks/faq_sft.py --budget 900 --out /tmp/faq-run --score 40
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
FAQ = HERE / "data" / "debian_faq" / "qa.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--budget", type=float, default=900.0, help="seconds for the whole `takeoff train` run")
    parser.add_argument("--out", type=Path, required=True, help="the run's bundle directory (must not exist)")
    parser.add_argument("--score", type=int, default=40, help="test questions answered for ROUGE-L (all are used for perplexity)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import takeoff
    from takeoff.evaluation.generation import text_scores
    from takeoff.pipelines.generation.base_models import resolve_base
    from takeoff.pipelines.generation.model import GenerativeModel

    rows = pd.read_json(FAQ, lines=True)
    train, test = rows[rows.split == "train"], rows[rows.split == "test"]
    data = args.out.parent / f"{args.out.name}-train.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    train[["question", "answer"]].to_csv(data, index=False)
    started = time.monotonic()
    tuned = takeoff.train(data, task="generate", prompt="question", target="answer", base_model=args.model,
                          time_budget=args.budget, out=args.out)
    train_s = time.monotonic() - started
    base = GenerativeModel.from_folder(resolve_base(args.model), name=args.model)
    questions, answers = test.question.tolist(), test.answer.tolist()
    result = {"model": args.model, "budget_s": args.budget, "train_s": round(train_s, 1), "train_pairs": len(train),
              "test_pairs": len(test), "scored": min(args.score, len(test)), "training": tuned.manifest["training"]}
    for name, model in (("base", base), ("fine-tuned", tuned)):
        t = time.monotonic()
        ppl = model.perplexity(questions, answers)
        said = model.generate(questions[:args.score], max_new_tokens=args.max_new_tokens)
        result[name] = {"perplexity": ppl, **text_scores(said, answers[:args.score]),
                        "seconds": round(time.monotonic() - t, 1), "samples": said[:5]}
    print(f"\n## Fine-tuning on the Debian FAQ — {args.model}, {len(train)} training pairs, budget {args.budget:.0f} s "
          f"(took {train_s:.0f} s), {len(test)} held-out pairs ({result['scored']} answered)\n")
    print("| model | perplexity (test) | ROUGE-L | token F1 | exact match |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in ("base", "fine-tuned"):
        r = result[name]
        print(f"| {name} | {r['perplexity']:.2f} | {r['rouge_l']:.4f} | {r['token_f1']:.4f} | {r['exact_match']:.4f} |")
    t = result["training"]
    print(f"\ntraining: {t.get('epochs')} epoch(s), stop: {t.get('stop_reason')}, {t.get('samples_per_second')} samples/s, "
          f"LoRA r={t.get('lora_rank')} ({t.get('trainable_parameters')} of {t.get('parameters')} weights)")
    for q, b, f, ref in zip(questions[:3], result["base"]["samples"], result["fine-tuned"]["samples"], answers):
        print(f"\nQ: {q}\n  reference: {ref}\n  base: {b}\n  fine-tuned: {f}")
    sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
