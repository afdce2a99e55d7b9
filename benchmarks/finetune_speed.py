"""Fine-tuning throughput: takeoff's ``text-finetune`` loop against Hugging Face ``Trainer``,
same encoder, batch size, epochs and machine, in the same run.

    python benchmarks/finetune_speed.py [--epochs 3] [--batch-size 32] [--max-length 128]
                                        [--rows N] [--compile] [--device auto] [--json out.json]

Data: the tweets training split (``splits/tweets_source.train.csv``, target ``source``), text
column only. Both sides fine-tune all-MiniLM-L6-v2 (the packaged default encoder) with a
two-class head for the same number of epochs at the same batch size and learning rate:

- ``Trainer``: ``AutoModelForSequenceClassification``, texts padded to ``--max-length`` (as the
  issue's reference measurement did), bf16 where takeoff uses it too (a device that computes
  bf16 natively), no evaluation, no checkpoints, no logging;
  timed around ``trainer.train()`` only (tokenising is not counted).
- takeoff: ``TextFinetuneFamily.fit`` with fixed ``epochs`` (no early stopping, no validation):
  dynamic padding over length-bucketed batches, fused AdamW, bf16 autocast where the device
  computes bf16 natively (a GPU from Ampere on, a CPU with AVX-512 BF16 or AMX),
  ``torch.compile`` with ``--compile``; timed around the whole ``fit`` (loading the encoder and
  tokenising included, which only counts against takeoff).

samples/s = rows x epochs / seconds. The goal in the text issue is at least 2x the Trainer's
throughput on a GPU. On a CPU the script runs too (use ``--rows 512 --epochs 1`` for a quick
check that both paths work); its numbers then say little about the GPU.
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
LEARNING_RATE = 5e-5


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_trainer(texts: list[str], labels: np.ndarray, args, device) -> dict:
    """Hugging Face Trainer: the same encoder with a sequence-classification head."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from takeoff.models.encoder import resolve_encoder
    from takeoff.training.device import native_bf16

    bf16 = native_bf16(device)  # the same precision as takeoff's side
    folder = str(resolve_encoder())
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True, num_labels=2)
    encoded = tokenizer(texts, truncation=True, max_length=args.max_length, padding="max_length")
    rows = [{"input_ids": ids, "attention_mask": mask, "labels": int(y)}
            for ids, mask, y in zip(encoded["input_ids"], encoded["attention_mask"], labels)]
    with tempfile.TemporaryDirectory() as out:
        training = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, num_train_epochs=args.epochs,
            learning_rate=LEARNING_RATE, bf16=bf16, use_cpu=device.type == "cpu",
            eval_strategy="no", save_strategy="no", logging_strategy="no", report_to=[],
            dataloader_pin_memory=device.type == "cuda", seed=0, disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=training, train_dataset=rows)
        _sync(device)
        started = time.perf_counter()
        trainer.train()
        _sync(device)
        seconds = time.perf_counter() - started
    del trainer, model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"path": f"Hugging Face Trainer (padded to {args.max_length}, {'bf16' if bf16 else 'fp32'})",
            "seconds": seconds, "samples_per_s": len(texts) * args.epochs / seconds}


def run_takeoff(frame: pd.DataFrame, args, device) -> dict:
    """takeoff's text-finetune family on the same rows, epochs and batch size."""
    from takeoff.data.conform import conform
    from takeoff.data.schema import infer_schema, infer_task
    from takeoff.features.pipeline import FeaturePipeline
    from takeoff.models.base import Dataset
    from takeoff.models.text_finetune import TextFinetuneFamily
    from takeoff.training.context import FitContext

    schema = infer_schema(frame, "source")
    task = infer_task(frame["source"], "source")
    conformed, _ = conform(frame, schema)
    X = FeaturePipeline(schema).fit(conformed).transform(conformed)
    params = {"epochs": args.epochs, "batch_size": args.batch_size, "max_length": args.max_length,
              "learning_rate": LEARNING_RATE, "compile": args.compile}
    model = TextFinetuneFamily(task, params)
    _sync(device)
    started = time.perf_counter()
    model.fit(Dataset(X, task.encode(frame["source"])), None, FitContext(seed=0, progress=False, device=str(device)))
    _sync(device)
    seconds = time.perf_counter() - started
    from takeoff.training.device import native_bf16

    label = (f"takeoff text-finetune (dynamic padding, length buckets, {'bf16' if native_bf16(device) else 'fp32'}"
             + (", compiled" if args.compile else "") + ")")
    return {"path": label, "seconds": seconds, "samples_per_s": len(frame) * args.epochs / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--rows", type=int, default=None, help="use the first N training rows (default: all)")
    parser.add_argument("--compile", action="store_true", help="takeoff side through torch.compile")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()

    import torch

    from takeoff.training.device import resolve_device

    device = resolve_device(args.device)
    frame = pd.read_csv(DATA / "splits" / "tweets_source.train.csv")[["text", "source"]]
    if args.rows:
        frame = frame.head(args.rows)
    frame = frame.reset_index(drop=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{len(frame):,} tweets, {args.epochs} epoch(s), batch {args.batch_size}, max_length {args.max_length}, "
          f"on {name}; torch {torch.__version__}", flush=True)
    labels = (frame["source"] == sorted(frame["source"].unique())[-1]).to_numpy().astype(np.int64)
    rows = [run_trainer(frame["text"].tolist(), labels, args, device)]
    print(json.dumps(rows[-1]), flush=True)
    rows.append(run_takeoff(frame, args, device))
    print(json.dumps(rows[-1]), flush=True)

    base = rows[0]["samples_per_s"]
    print("\n| path | seconds | samples/s | vs Trainer |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['path']} | {r['seconds']:.1f} | {r['samples_per_s']:,.0f} | {r['samples_per_s'] / base:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
