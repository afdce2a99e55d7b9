"""Supervised fine-tuning of a causal language model on prompt → answer pairs.

The pairs are formatted with the model's template (:mod:`.template`) and tokenised once; the
loss is on the answer's tokens only. Training runs in the one :class:`~takeoff.training.Trainer`
(the progress bar, the time budget, early stopping on the validation loss, checkpoints that a
Ctrl-C'd run resumes from), with:

* **LoRA by default** (peft): low-rank adapters on the attention and MLP projections, merged
  into the weights at the end, so the bundle is a plain model; ``method="full"`` trains every
  weight;
* **length bucketing**: each batch holds pairs of similar length (sorted within shuffled
  windows of 16 batches), cut to its longest pair, so little compute goes to padding;
* **logits only where the loss is**: the vocabulary projection (49k columns for SmolLM2) runs
  on the answer positions only, not on every prompt token;
* bf16 autocast where the device computes it natively; gradient checkpointing on a GPU
  (``gradient_checkpointing``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from takeoff.errors import DataError, preview

IGNORE = -100
BUCKET_WINDOW = 16  # batches per window whose pairs are sorted by length together
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                "c_attn", "c_proj", "c_fc", "query_key_value", "dense", "fc1", "fc2")


@dataclass
class Example:
    ids: list[int]
    start: int  # where the answer's tokens start


def encode_pairs(template, conversations: Sequence[list[dict[str, str]]], answers: Sequence[str], max_length: int,
                 on_long: str) -> tuple[list[Example], list[str]]:
    """Tokenise each conversation + answer; cut (or refuse) those over ``max_length`` tokens.

    Returns:
        ``(examples, notes)``: notes count the truncated pairs.

    Raises:
        DataError: ``on_long="refuse"`` and some pairs are too long (names their rows).
    """
    tokenizer = template.tokenizer
    examples, cut, too_long = [], [], []
    for row, (messages, answer) in enumerate(zip(conversations, answers)):
        prompt, completion = template.answer(messages, answer)
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if len(p) + len(c) > max_length:
            if on_long == "refuse":
                too_long.append(row)
                continue
            cut.append(row)
            if len(c) > max_length // 2:  # a very long answer keeps at least half the window
                c = c[:max(max_length // 2, max_length - len(p))]
            room = max_length - len(c)
            p = p[len(p) - room:] if room > 0 else []
        examples.append(Example(p + c, len(p)))
    if too_long:
        raise DataError(f"{len(too_long)} pair(s) have more than {max_length} tokens of prompt + answer "
                        f"(rows {preview(too_long, 8)}). Fix: raise generate.max_length, shorten them, or set "
                        "generate.on_long: truncate (the prompt's start is dropped).", rows=too_long)
    notes = []
    if cut:
        notes.append(f"{len(cut)} pair(s) longer than {max_length} tokens were truncated (the prompt's start "
                     f"dropped; rows {preview(cut, 8)})")
    return examples, notes


def tensors(examples: Sequence[Example], pad: int):
    """A TensorSet: inputs (ids, mask, labels) padded on the right; the target is unused (zeros)."""
    from takeoff.training.tensors import TensorSet

    longest = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(examples), longest), dtype=torch.long)
    labels = torch.full((len(examples), longest), IGNORE, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.ids)
        ids[i, :n] = torch.tensor(e.ids)
        mask[i, :n] = 1
        labels[i, e.start:n] = ids[i, e.start:n]
    return TensorSet((ids, mask, labels), torch.zeros(len(examples)))


def trim(batch):
    """Cut a batch's columns to its longest row (dynamic padding)."""
    width = int(batch.inputs[1].sum(1).max())
    return type(batch)(tuple(t[:, :width] for t in batch.inputs), batch.target, batch.weight)


def bucketed(lengths: Sequence[int], batch_size: int, seed: int):
    """``batch_order(epoch)``: batches of similar lengths; depends on (seed, epoch) only."""
    def order(epoch: int) -> list[list[int]]:
        rng = random.Random(seed * 1_000_003 + epoch)
        rows = list(range(len(lengths)))
        rng.shuffle(rows)
        window = batch_size * BUCKET_WINDOW
        batches = []
        for a in range(0, len(rows), window):
            chunk = sorted(rows[a:a + window], key=lambda r: lengths[r])
            batches += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        return batches
    return order


class AnswerLoss(nn.Module):
    """Wraps a causal LM: ``forward(ids, mask, labels)`` → per row (summed answer-token NLL,
    answer tokens), computing the vocabulary projection on the answer positions only."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        hidden = base.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        target = labels[:, 1:]
        where = target != IGNORE
        logits = base.get_output_embeddings()(hidden[:, :-1][where])
        cap = getattr(base.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        nll = nn.functional.cross_entropy(logits.float(), target[where], reduction="none")
        rows = where.nonzero()[:, 0]
        sums = torch.zeros(ids.shape[0], device=ids.device, dtype=torch.float32).index_add(0, rows, nll)
        return torch.stack([sums, where.sum(1).float()], 1)


def mean_token_loss(outputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return outputs[:, 0].sum() / outputs[:, 1].sum().clamp(min=1)


@torch.no_grad()
def token_losses(lm: nn.Module, examples: Sequence[Example], batch_size: int, device) -> float:
    """Perplexity: exp(mean answer-token NLL) of ``examples`` under ``lm``."""
    if not examples:
        return float("nan")
    from takeoff.training.loop import forward_batches

    data = tensors(examples, 0)
    outputs = forward_batches(AnswerLoss(lm), data, batch_size, torch.device(device), collate=trim, precision="fp32")
    return float(math.exp(min(50.0, float(mean_token_loss(outputs, None, None)))))


@dataclass
class FineTuned:
    model: nn.Module  # the merged causal LM
    history: dict[str, list[float]]
    stop_reason: str
    epochs: int
    seconds: float
    trainable: int
    total: int
    samples: int  # pairs trained on, a partial last epoch included
    steps: int


def fine_tune(lm: nn.Module, train: list[Example], valid: list[Example], params, ctx, pad: int,
              meta: dict[str, Any], precision: str = "auto") -> FineTuned:
    """Fine-tune ``lm`` (LoRA or full, per ``params``) under ``ctx`` (deadline, seed, checkpoints,
    progress); returns the merged model and what happened. ``precision``: "auto" (bf16 autocast
    where the device computes bf16 natively), "bf16" or "fp32"."""
    from takeoff.training.callbacks import Checkpoint, EarlyStopping, ProgressBar, TerminateOnNaN, TimeBudget
    from takeoff.training.device import native_bf16, resolve_device
    from takeoff.training.loop import Trainer

    from takeoff.pipelines.generation.engine import quiet_transformers

    quiet_transformers()
    device = resolve_device(ctx.device)
    torch.manual_seed(ctx.seed)
    lm = lm.to(device)
    lora = params.method == "lora"
    if lora:
        lm = _with_lora(lm, params)
    total = sum(p.numel() for p in lm.parameters())
    trainable = sum(p.numel() for p in lm.parameters() if p.requires_grad)
    checkpointing = params.gradient_checkpointing == "auto" and device.type == "cuda" or params.gradient_checkpointing is True
    if checkpointing:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora:
            lm.enable_input_require_grads()
    lm.config.use_cache = False
    module = AnswerLoss(lm)
    rate = params.learning_rate or (2e-4 if lora else 2e-5)
    optimizer = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=rate, weight_decay=0.0)
    batches = math.ceil(len(train) / params.batch_size)
    steps = max(1, batches * params.epochs)
    warmup = max(1, int(0.05 * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - max(0, s - warmup) / max(1, steps - warmup)))
    callbacks = [TimeBudget(), TerminateOnNaN(), ProgressBar()]
    if valid:
        callbacks.append(EarlyStopping(patience=max(1, params.patience), restore_best_weights=True))
    if ctx.checkpoint_dir is not None:
        callbacks.append(Checkpoint(ctx.checkpoint_dir))
    trainer = Trainer(module, mean_token_loss, optimizer, scheduler, train=tensors(train, pad),
                      valid=tensors(valid, pad) if valid else None, batch_size=params.batch_size,
                      max_epochs=params.epochs, callbacks=callbacks, ctx=ctx, device=device, grad_clip=1.0,
                      meta=meta, eval_batch_size=params.batch_size, collate=trim,
                      batch_order=bucketed([len(e.ids) for e in train], params.batch_size, ctx.seed),
                      precision="fp32" if precision == "fp32" else "auto" if precision == "auto" else "bf16",
                      autocast_cpu=precision == "bf16" or (precision == "auto" and native_bf16(device)))
    if ctx.checkpoint_dir is not None:
        trainer.resume(ctx.checkpoint_dir)
    result = trainer.fit()
    if checkpointing:
        lm.gradient_checkpointing_disable()
    merged = lm.merge_and_unload() if lora else lm
    merged.config.use_cache = True
    steps = trainer.global_step
    return FineTuned(merged.eval(), result.history, result.stop_reason, result.epochs, result.seconds, trainable, total,
                     min(steps * params.batch_size, len(train) * (result.epochs + 1)), steps)


def lora_targets(lm: nn.Module, params) -> list[str]:
    """The module names LoRA adapts: ``params.lora_targets``, or the projections ``lm`` has."""
    if params.lora_targets != "auto":
        return list(params.lora_targets)
    names = {name.rsplit(".", 1)[-1] for name, m in lm.named_modules() if isinstance(m, nn.Linear)}
    found = [t for t in LORA_TARGETS if t in names]
    if not found:
        raise DataError("the base model has none of the projections LoRA adapts by default "
                        f"({', '.join(LORA_TARGETS)}). Fix: set generate.lora_targets to some of its linear layers: "
                        f"{', '.join(sorted(names)[:12])}")
    return found


def _with_lora(lm: nn.Module, params) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=params.lora_rank, lora_alpha=params.lora_alpha, lora_dropout=params.lora_dropout,
                        target_modules=lora_targets(lm, params), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(lm, config)


def save_merged(model: nn.Module, tokenizer, folder: Path) -> None:
    """The merged model (float32 safetensors) and tokenizer into ``folder``."""
    model.to(torch.float32).save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
