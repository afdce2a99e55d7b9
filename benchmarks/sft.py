"""Fine-tuning speed: takeoff's SFT (LoRA through its Trainer) against TRL's ``SFTTrainer`` with
the same model, pairs, LoRA rank and targets, batch size, sequence limit, epochs and
precision, in the same run. Both put the loss on the answer tokens only.

Reports training samples/s of each and the ratio. TRL is a benchmark-only dependency
(``pip install trl``); without it its row says so.

Usage::

    python benchmarks/sft.py --model smollm2 --pairs 64 --batch 8 --rank 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAQ = HERE / "data" / "debian_faq" / "qa.jsonl"


def load_pairs(n: int) -> list[tuple[str, str]]:
    """The first ``n`` training pairs of the Debian FAQ set (benchmarks/data/debian_faq)."""
    rows = [json.loads(line) for line in FAQ.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("split", "train") == "train"]
    if len(rows) < n:
        raise SystemExit(f"{FAQ} has {len(rows)} training pairs; asked for {n}")
    return [(r["question"], r["answer"]) for r in rows[:n]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="both trainers: float32, or bf16 autocast")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--only", choices=("takeoff", "trl"), help="run one side (for separate processes)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from takeoff.pipelines.generation.base_models import resolve_base

    folder = resolve_base(args.model)
    pairs = load_pairs(args.pairs)
    results = {"model": args.model, "pairs": args.pairs, "batch": args.batch, "rank": args.rank,
               "max_length": args.max_length, "epochs": args.epochs, "precision": args.precision,
               "threads": args.threads, "torch": torch.__version__}
    if args.only in (None, "trl"):
        results["trl"] = trl_side(folder, pairs, args)
    if args.only in (None, "takeoff"):
        results["takeoff"] = takeoff_side(folder, pairs, args)
    print(f"\n## SFT speed — {args.model}, {args.pairs} pairs, batch {args.batch}, LoRA r={args.rank}, "
          f"max length {args.max_length}, {args.epochs} epoch(s), {args.precision}, {args.threads} threads\n")
    print("| trainer | samples/s | seconds | final training loss |")
    print("| --- | ---: | ---: | ---: |")
    for name in ("trl", "takeoff"):
        row = results.get(name)
        if row and "samples_per_s" in row:
            print(f"| {name} | {row['samples_per_s']:.3f} | {row['seconds']:.1f} | {row['loss']:.4f} |")
        elif row:
            print(f"| {name} | {row.get('skipped')} | | |")
    if "samples_per_s" in results.get("trl", {}) and "samples_per_s" in results.get("takeoff", {}):
        print(f"\ntakeoff / TRL samples/s: {results['takeoff']['samples_per_s'] / results['trl']['samples_per_s']:.2f}x")
    sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def takeoff_side(folder: Path, pairs, args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from takeoff.pipelines.generation.params import GenerateParams
    from takeoff.pipelines.generation.sft import encode_pairs, fine_tune
    from takeoff.pipelines.generation.template import Template
    from takeoff.training.context import FitContext

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    lm = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    params = GenerateParams(lora_rank=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0, epochs=args.epochs,
                            batch_size=args.batch, max_length=args.max_length, learning_rate=2e-4)
    examples, _ = encode_pairs(Template(tokenizer), [[{"role": "user", "content": q}] for q, _ in pairs],
                               [a for _, a in pairs], args.max_length, "truncate")
    start = time.perf_counter()
    tuned = fine_tune(lm, examples, [], params, FitContext(seed=0, progress=False), tokenizer.pad_token_id, {},
                      precision=args.precision)
    seconds = time.perf_counter() - start
    return {"samples_per_s": len(examples) * args.epochs / seconds, "seconds": seconds,
            "loss": tuned.history["train_loss"][-1]}


def trl_side(folder: Path, pairs, args) -> dict:
    try:
        from datasets import Dataset
        from peft import LoraConfig
        from trl import SFTConfig, SFTTrainer
    except ImportError as error:
        return {"skipped": f"TRL is not installed here ({error.name}); pip install trl datasets"}
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    lm = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a}]}
                              for q, a in pairs])
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    with tempfile.TemporaryDirectory() as out:
        config = SFTConfig(output_dir=out, per_device_train_batch_size=args.batch, num_train_epochs=args.epochs,
                           learning_rate=2e-4, max_length=args.max_length, packing=False, bf16=args.precision == "bf16",
                           use_cpu=True, report_to="none", save_strategy="no", logging_steps=1, seed=0,
                           dataloader_num_workers=0, completion_only_loss=True, lr_scheduler_type="linear",
                           warmup_steps=1, max_grad_norm=1.0)
        trainer = SFTTrainer(model=lm, args=config, train_dataset=data, processing_class=tokenizer,
                             peft_config=LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
                                                    target_modules=targets, task_type="CAUSAL_LM"))
        start = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"samples_per_s": len(pairs) * args.epochs / seconds, "seconds": seconds,
            "trainer_samples_per_s": output.metrics.get("train_samples_per_second"), "loss": losses[-1] if losses else float("nan")}


if __name__ == "__main__":
    main()
