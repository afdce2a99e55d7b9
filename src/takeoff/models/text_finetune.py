"""``text-finetune``: a pretrained encoder fine-tuned end to end with a task head.

Each text column goes through the shared encoder (all-MiniLM-L6-v2 by default) and is
mean-pooled; the pooled vectors, the table's other numbers (standardised, without the hashed
bags of words) and an embedding per categorical column are concatenated and fused by
``Linear → GELU → Dropout → Linear`` into one logit per class (cross-entropy) or one value
(mean squared error on the standardised target).

Training: AdamW (fused where torch supports it), a linear warm-up then a linear decay,
layer-wise learning-rate decay (the top encoder layer gets ``learning_rate``, each layer below
``layer_decay`` times the one above, the embeddings the least; the head gets ``head_lr``),
gradient accumulation, optional gradient checkpointing and ``torch.compile``, bf16 autocast where
the device computes bf16 natively (``precision``: a GPU from Ampere on, a CPU with AVX-512 BF16
or AMX; float32 elsewhere), and dynamic padding over length-bucketed batches. With ``lora_r``
only LoRA adapters (``peft``) and the head train; the adapters are merged before saving, so a
bundle loads without ``peft``. Early stopping on the validation loss per epoch keeps the best
weights; at the deadline the best weights so far are kept.

Slow on a CPU, so ``auto`` does not try it; choose it with ``family: text-finetune``.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from takeoff.bundle import read_spec, write_json
from takeoff.data.schema import Task
from takeoff.errors import BudgetError, BundleError, ConfigError, DataError, MissingDependencyError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport, Params
from takeoff.models.encoder import DEFAULT_ENCODER, check_encoder_folder, resolve_encoder
from takeoff.training.context import FitContext

SPEC_FILE, HEAD_FILE, ENCODER_DIR = "text_finetune.json", "head.safetensors", "encoder"
FORMAT, FORMAT_VERSION = "takeoff-text-finetune", 1
HASHED = re.compile(r"__h\d+$")
LAYER = re.compile(r"\.layers?\.(\d+)\.")
BUCKET_BATCHES = 50  # batches per length-sorted chunk
PREDICT_BATCH = 64
FINITE_EVERY = 32  # batches between reads of the running training loss (a GPU sync)


class TextFinetuneParams(Params):
    """Hyperparameters of the text-finetune family."""

    encoder: str = Field(DEFAULT_ENCODER, description="Encoder name (org/name), alias, or a local model folder.")
    max_length: int = Field(128, ge=8, le=8192, description="Tokens kept per text; longer texts are truncated.")
    batch_size: int = Field(16, ge=1, description="Rows per forward pass (an optimizer step takes grad_accum of them).")
    grad_accum: int = Field(1, ge=1, description="Batches whose gradients are summed before each optimizer step.")
    learning_rate: float = Field(5e-5, gt=0, le=1, description="Peak learning rate of the top encoder layer (AdamW).")
    layer_decay: float = Field(0.9, gt=0, le=1, description="Learning-rate factor per encoder layer, from the top down.")
    head_lr: float = Field(1e-3, gt=0, le=1, description="Peak learning rate of the fusion layer and head.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (matrices only, not biases or norms).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of the optimizer steps spent warming up linearly.")
    max_epochs: int = Field(3, ge=1, description="Most epochs; early stopping on validation may end sooner.")
    patience: int = Field(1, ge=1, description="Epochs without a better validation loss before stopping.")
    epochs: int | None = Field(None, ge=1, description="Train exactly this many epochs without early stopping (refit).")
    fusion_dim: int = Field(128, ge=1, description="Width of the fusion layer joining text vectors and other columns.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout after the fusion layer.")
    embedding_dim_max: int = Field(16, ge=1, description="Cap on a categorical column's embedding size.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward: less memory, slower.")
    compile: bool = Field(False, description="Train through torch.compile (pays off on long GPU runs only).")
    lora_r: int | None = Field(None, ge=1, description="LoRA rank: train only adapters and the head (needs peft); None = full.")
    lora_alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator (scale = lora_alpha / lora_r).")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="Training arithmetic: auto = bf16 autocast where the device computes bf16 natively (a GPU "
                            "from Ampere on, a CPU with AVX-512 BF16 or AMX), else float32. Predictions run in float32 on a CPU.")


def _network(encoder, spec: dict[str, Any]):
    """The fused model: ``encoder`` (a Hugging Face model) plus the fusion layer and head."""
    import torch
    from torch import nn

    class FineTuned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.embeddings = nn.ModuleList(nn.Embedding(c, d) for c, d in zip(spec["cardinalities"], spec["embedding_dims"]))
            width = spec["hidden"] * spec["n_text"] + spec["n_numeric"] + sum(spec["embedding_dims"])
            self.fusion = nn.Sequential(nn.Linear(width, spec["fusion_dim"]), nn.GELU(), nn.Dropout(spec["dropout"]))
            self.head = nn.Linear(spec["fusion_dim"], spec["n_outputs"])

        def forward(self, texts: list[tuple[torch.Tensor, torch.Tensor]], numeric, categorical):
            parts = []
            for ids, mask in texts:  # ids, mask: (n, longest in batch)
                hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (n, t, h)
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                parts.append((hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9))  # (n, h)
            parts.append(numeric)
            parts += [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
            return self.head(self.fusion(torch.cat(parts, dim=1)))  # (n, n_outputs)

        def heads(self):
            """The non-encoder part, saved beside the encoder."""
            return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    return FineTuned()


def _onnx_network(net, spec: dict[str, Any], kept: np.ndarray, names: list[str], classification: bool,
                  multilabel: bool = False):
    """``net`` behind the exported graph's inputs ``names`` (see ``to_onnx``), doing what
    ``_inputs`` and ``predict`` do around it."""
    import torch
    from torch import nn

    class Exported(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("kept", torch.from_numpy(kept.astype(np.int64)))
            self.register_buffer("mean", torch.tensor(spec["mean"], dtype=torch.float32))
            self.register_buffer("std", torch.tensor(spec["std"], dtype=torch.float32))
            self.register_buffer("top", torch.tensor(spec["cardinalities"], dtype=torch.int64).reshape(-1) - 1)

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            given = dict(zip(names, inputs))
            texts = [(given[f"text.{c}.input_ids"], given[f"text.{c}.attention_mask"]) for c in spec["text_columns"]]
            n = texts[0][0].shape[0]
            if "numeric" in given:  # the pipeline's block (n, d_num) -> the kept columns, standardised
                numeric = (given["numeric"].index_select(1, self.kept) - self.mean) / self.std
                numeric = torch.where(torch.isnan(numeric), torch.zeros_like(numeric), numeric)
            else:
                numeric = torch.zeros((n, 0), dtype=torch.float32)
            categorical = torch.minimum(given["categorical"], self.top).clamp(min=0) if "categorical" in given else None
            out = self.net(texts, numeric, categorical).float()  # (n, n_outputs)
            if classification:
                return torch.softmax(out, dim=1)
            if multilabel:
                return torch.sigmoid(out)
            return out[:, 0] * spec["target_std"] + spec["target_mean"]  # (n,)

    return Exported()


class TextFinetuneFamily(Family):
    """A pretrained text encoder fine-tuned with a fusion head over the other columns.

    Example:
        >>> from takeoff.data.schema import Task
        >>> model = TextFinetuneFamily(Task("binary", "y", [0, 1]), {"max_epochs": 2, "max_length": 64})
    """

    name: ClassVar[str] = "text-finetune"
    fast_params: ClassVar[dict[str, Any]] = {"max_epochs": 1, "max_length": 32, "batch_size": 16, "fusion_dim": 32}
    exports_onnx: ClassVar[bool] = True
    quantizes_int8: ClassVar[bool] = True
    prunable: ClassVar[bool] = True
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "multilabel", "regression")
    Params: ClassVar[type[Params]] = TextFinetuneParams
    needs_text: ClassVar[bool] = True

    def __init__(self, task: Task, params=None):
        super().__init__(task, params)
        self.spec: dict[str, Any] | None = None
        self.best_epoch: int | None = None
        self._net: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self.n_trainable: int | None = None  # parameters the last fit trained

    # ------------------------------------------------------------------ inputs
    def _kept(self, X: Features) -> np.ndarray:
        return np.array([i for i, n in enumerate(X.numeric_names) if not HASHED.search(n)], dtype=np.int64)

    def _inputs(self, X: Features) -> tuple[list[list[list[int]]], np.ndarray, np.ndarray, np.ndarray]:
        """Token ids per text column per row, the standardised numbers, codes, and row lengths."""
        spec = self.spec
        if sorted(X.text) != spec["text_columns"]:
            raise DataError(f"model family 'text-finetune' was trained on text columns {spec['text_columns']}; "
                            f"received {sorted(X.text)}. Fix: transform the rows with the model's own feature pipeline.")
        ids = [self._tokenizer([str(t) for t in X.text[c]], truncation=True, max_length=self.params.max_length)["input_ids"]
               for c in spec["text_columns"]]
        numeric = X.numeric[:, self._kept(X)].astype(np.float64) if X.numeric.size else np.zeros((len(X), 0))
        if numeric.shape[1] != spec["n_numeric"]:
            raise DataError(f"model family 'text-finetune' was trained with {spec['n_numeric']} numeric column(s); "
                            f"received {numeric.shape[1]}. Fix: transform the rows with the model's own feature pipeline.")
        numeric = np.nan_to_num((numeric - np.asarray(spec["mean"])) / np.asarray(spec["std"])).astype(np.float32)
        categorical = np.minimum(X.categorical.astype(np.int64), np.asarray(spec["cardinalities"], dtype=np.int64) - 1) \
            if spec["cardinalities"] else np.zeros((len(X), 0), np.int64)
        lengths = np.array([sum(len(col[i]) for col in ids) for i in range(len(X))], dtype=np.int64)
        return ids, numeric, np.maximum(categorical, 0), lengths

    def _collate(self, ids, numeric, categorical, target, weight):
        pad = self._tokenizer.pad_token_id or 0

        def collate(index: list[int]):
            import torch

            texts = []
            for col in ids:
                longest = max(1, max(len(col[i]) for i in index))
                batch = np.full((len(index), longest), pad, dtype=np.int64)
                mask = np.zeros((len(index), longest), dtype=np.int64)
                for row, i in enumerate(index):
                    batch[row, : len(col[i])] = col[i]
                    mask[row, : len(col[i])] = 1
                texts.append((torch.from_numpy(batch), torch.from_numpy(mask)))
            out = [texts, torch.from_numpy(numeric[index]), torch.from_numpy(categorical[index])]
            out.append(None if target is None else torch.from_numpy(target[index]))
            out.append(None if weight is None else torch.from_numpy(weight[index]))
            return out

        return collate

    @staticmethod
    def _to(batch, device):
        texts, numeric, categorical, target, weight = batch
        move = (lambda t: t if t is None else t.to(device, non_blocking=True))
        return [(move(a), move(b)) for a, b in texts], move(numeric), move(categorical), move(target), move(weight)

    @staticmethod
    def _buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[list[int]]:
        """Shuffled rows, sorted by length within chunks of ~50 batches, cut into batches whose
        order is shuffled: little padding, still random."""
        order = rng.permutation(len(lengths))
        chunk = batch_size * BUCKET_BATCHES
        batches = []
        for a in range(0, len(order), chunk):
            part = order[a : a + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches += [part[b : b + batch_size].tolist() for b in range(0, len(part), batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    # ------------------------------------------------------------------ fit
    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        """Fine-tune on ``train``, early-stopping on ``valid`` (see the module docstring).

        Raises:
            ConfigError: the table has no text column.
            MissingDependencyError: ``lora_r`` is set and ``peft`` is not installed.
            BudgetError: the deadline passed before a single optimizer step.
        """
        import torch
        from transformers import AutoModel, AutoTokenizer

        from takeoff.training.device import autocast_context, resolve_device, seed_everything

        started = time.monotonic()
        p: TextFinetuneParams = self.params  # type: ignore[assignment]
        if not train.X.text:
            raise ConfigError("family 'text-finetune' needs a free-text column; this table has none")
        if len(train) < 2:
            raise DataError(f"model family 'text-finetune' needs at least 2 training rows; received {len(train)}")
        if ctx.expired():
            raise BudgetError("model family 'text-finetune': no time left to fine-tune. Fix: raise --time-budget.")
        if p.lora_r is not None:
            try:
                import peft
            except ImportError:
                raise MissingDependencyError("peft", "LoRA fine-tuning (lora_r)", extra="text") from None
        device = resolve_device(ctx.device)
        seed_everything(ctx.seed, deterministic=False)
        folder = resolve_encoder(p.encoder)
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(folder), local_files_only=True)

        classification, multilabel = self.task.is_classification, self.task.is_multilabel
        kept = self._kept(train.X)
        numeric = train.X.numeric[:, kept].astype(np.float64)
        mean, std = (numeric.mean(0), numeric.std(0)) if len(kept) else (np.zeros(0), np.ones(0))
        std = np.where(std > 1e-9, std, 1.0)
        y = train.y.astype(np.float64)
        t_mean, t_std = (0.0, 1.0) if classification or multilabel else (float(y.mean()), float(y.std()) or 1.0)
        cards = [int(c) for c in train.X.cardinalities]
        self.spec = {
            "text_columns": sorted(train.X.text), "n_text": len(train.X.text), "hidden": int(encoder.config.hidden_size),
            "n_numeric": int(len(kept)), "mean": mean.tolist(), "std": std.tolist(), "cardinalities": cards,
            "embedding_dims": [max(1, min(p.embedding_dim_max, (c + 1) // 2)) for c in cards],
            "fusion_dim": p.fusion_dim, "dropout": p.dropout,
            "n_outputs": self.task.n_outputs, "target_mean": t_mean, "target_std": t_std,
        }
        if p.lora_r is not None:
            config = peft.LoraConfig(r=p.lora_r, lora_alpha=p.lora_alpha, lora_dropout=0.0)
            try:
                encoder = peft.get_peft_model(encoder, config)
            except ValueError as error:  # no default target modules for this architecture
                raise ConfigError(f"LoRA cannot wrap encoder '{p.encoder}': {error}", path="models.text-finetune.lora_r")
        if p.gradient_checkpointing:
            encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        net = _network(encoder, self.spec).to(device)
        self.n_trainable = sum(t.numel() for t in net.parameters() if t.requires_grad)
        step_net = torch.compile(net) if p.compile else net

        def data(d: Dataset):
            ids, num, cat, lengths = self._inputs(d.X)
            target = (d.y.astype(np.int64) if classification else d.y.astype(np.float32) if multilabel
                      else ((d.y.astype(np.float64) - t_mean) / t_std).astype(np.float32))
            weight = None if d.weight is None else np.asarray(d.weight, dtype=np.float32)
            return lengths, self._collate(ids, num, cat, target, weight)

        def loader(batches, collate):
            # single-process: the collate is cheap, and workers would fork the whole model
            return torch.utils.data.DataLoader(batches, batch_size=None, collate_fn=collate, num_workers=0,
                                               pin_memory=device.type == "cuda")

        def loss_of(out, target, weight):
            out = out.float()
            if classification:
                per_row = torch.nn.functional.cross_entropy(out, target, reduction="none")
            elif multilabel:  # a sigmoid per label
                per_row = torch.nn.functional.binary_cross_entropy_with_logits(out, target, reduction="none").mean(dim=1)
            else:
                per_row = (out[:, 0] - target) ** 2
            return per_row.mean() if weight is None else (per_row * weight).sum() / weight.sum().clamp_min(1e-12)

        train_lengths, train_collate = data(train)
        valid_data = data(valid) if valid is not None and len(valid) else None
        early_stop = valid_data is not None and p.epochs is None
        epochs = p.epochs or p.max_epochs
        n_batches = math.ceil(len(train) / p.batch_size)
        total_steps = max(1, epochs * math.ceil(n_batches / p.grad_accum))
        warmup = int(total_steps * p.warmup_ratio)
        optimizer = self._optimizer(net, device)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / (warmup + 1) if s < warmup
                                                      else max(0.0, (total_steps - s) / max(1, total_steps - warmup)))

        def valid_loss() -> float:
            lengths, collate = valid_data
            order = np.argsort(lengths, kind="stable")
            batches = [order[a : a + PREDICT_BATCH].tolist() for a in range(0, len(order), PREDICT_BATCH)]
            net.eval()
            total, count = 0.0, 0.0
            with torch.no_grad(), autocast_context(device, p.precision, cpu=True):
                for batch in loader(batches, collate):
                    texts, num, cat, target, weight = self._to(batch, device)
                    w = torch.ones(target.shape[0], dtype=torch.float32, device=target.device) if weight is None else weight
                    total += float(loss_of(net(texts, num, cat), target, w) * w.sum())
                    count += float(w.sum())
            return total / max(count, 1e-12)

        history: dict[str, list[float]] = {"train_loss": []}
        if valid_data is not None:
            history["valid_loss"] = []
            history["valid_loss_initial"] = [valid_loss()]
        best_loss, best_state, best_epoch, bad, steps, stopped_by = math.inf, None, 0, 0, 0, "max"
        rng = np.random.default_rng(ctx.seed)
        epoch = 0
        for epoch in range(1, epochs + 1):
            net.train()
            # the loss is summed on the device and read every FINITE_EVERY batches: reading it
            # each batch would make the CPU wait for the GPU at every step
            running, seen, out_of_time = torch.zeros((), device=device, dtype=torch.float64), 0, False
            optimizer.zero_grad(set_to_none=True)
            batches = self._buckets(train_lengths, p.batch_size, rng)
            for i, batch in enumerate(loader(batches, train_collate)):
                if ctx.expired():
                    out_of_time = True
                    break
                texts, num, cat, target, weight = self._to(batch, device)
                with autocast_context(device, p.precision, cpu=True):
                    loss = loss_of(step_net(texts, num, cat), target, weight)
                (loss / p.grad_accum).backward()
                running += loss.detach().double() * len(target)
                seen += len(target)
                if (i + 1) % FINITE_EVERY == 0 or i + 1 == len(batches):
                    _check_finite(running)
                if (i + 1) % p.grad_accum == 0 or i + 1 == len(batches):
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    steps += 1
            if steps == 0:
                raise BudgetError("model family 'text-finetune': the time budget ran out before the first optimizer "
                                  "step. Fix: give a larger time budget, or a smaller max_length.")
            history["train_loss"].append(_check_finite(running) / max(seen, 1))
            if out_of_time:
                stopped_by = "time_budget"
                break
            if valid_data is not None:
                history["valid_loss"].append(valid_loss())
                if history["valid_loss"][-1] < best_loss - 1e-6:
                    best_loss, best_epoch, bad = history["valid_loss"][-1], epoch, 0
                    if early_stop:
                        best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
                else:
                    bad += 1
                if early_stop and bad >= p.patience:
                    stopped_by = "early_stopping"
                    break
            if ctx.expired():
                stopped_by = "time_budget"
                break
        if best_state is not None and best_epoch != epoch:
            net.load_state_dict(best_state)
        self.best_epoch = best_epoch if early_stop and best_epoch else max(1, epoch - (stopped_by == "time_budget"))
        if p.lora_r is not None:
            net.encoder = net.encoder.merge_and_unload()  # a plain model: saving and loading need no peft
        if p.gradient_checkpointing:
            net.encoder.gradient_checkpointing_disable()
        self._net, self._device = net.eval(), device
        self.report = FitReport(best_iteration=self.best_epoch, history=history, stopped_by=stopped_by,
                                seconds=time.monotonic() - started)
        return self.report

    def _optimizer(self, net, device):
        """AdamW with per-layer learning rates (layer-wise decay) and no decay on biases/norms."""
        import torch

        p: TextFinetuneParams = self.params  # type: ignore[assignment]
        n_layers = int(getattr(net.encoder.config, "num_hidden_layers", 0) or 0)
        groups: dict[tuple[float, float], list] = {}
        for name, param in net.named_parameters():
            if not param.requires_grad:
                continue
            if not name.startswith("encoder."):
                lr = p.head_lr
            elif (match := LAYER.search(name)) is not None:
                lr = p.learning_rate * p.layer_decay ** max(0, n_layers - 1 - int(match.group(1)))
            elif "embeddings" in name:
                lr = p.learning_rate * p.layer_decay ** n_layers
            else:  # pooler, final norm: above the top layer
                lr = p.learning_rate
            decay = p.weight_decay if param.ndim >= 2 else 0.0
            groups.setdefault((lr, decay), []).append(param)
        param_groups = [{"params": v, "lr": lr, "weight_decay": wd} for (lr, wd), v in groups.items()]
        try:
            return torch.optim.AdamW(param_groups, fused=True)
        except (RuntimeError, ValueError, TypeError):  # no fused kernel for this device or dtype
            return torch.optim.AdamW(param_groups)

    # ------------------------------------------------------------------ predict
    def predict(self, X: Features) -> np.ndarray:
        """Probabilities (n, n_classes) or values (n,), float32."""
        import torch

        from takeoff.training.device import autocast_context

        if self._net is None:
            raise DataError("model family 'text-finetune' has not been fitted or loaded; call fit() or load() first")
        ids, num, cat, lengths = self._inputs(X)
        collate = self._collate(ids, num, cat, None, None)
        order = np.argsort(lengths, kind="stable")
        width = self.spec["n_outputs"]
        out = np.zeros((len(X), width), dtype=np.float32)
        # float32 on a CPU whatever the training precision: the same outputs on every machine
        with torch.no_grad(), autocast_context(self._device, "fp32" if self.params.precision == "fp32" else "auto"):
            for a in range(0, len(order), PREDICT_BATCH):
                index = order[a : a + PREDICT_BATCH].tolist()
                texts, n, c, _, _ = self._to(collate(index), self._device)
                logits = self._net(texts, n, c).float()
                if self.task.is_classification:
                    logits = torch.softmax(logits, dim=1)
                elif self.task.is_multilabel:
                    logits = torch.sigmoid(logits)
                out[index] = logits.cpu().numpy()
        if self.task.is_classification or self.task.is_multilabel:
            return out
        return (out[:, 0].astype(np.float64) * self.spec["target_std"] + self.spec["target_mean"]).astype(np.float32)

    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        """``{"epochs": n}``: the epochs that were best on validation."""
        return None if self.best_epoch is None else {"epochs": int(self.best_epoch)}

    # ------------------------------------------------------------------ onnx
    def to_onnx(self, sample: Features):
        """The whole model as one ONNX graph (torch's dynamo exporter, opset 18), with what
        :meth:`predict` does around the network: the hashed bags of words dropped and the other
        numbers re-standardised, the codes clamped, then softmax (classification) or the
        target's scaling undone (regression).

        Inputs (see :meth:`Family.to_onnx`): ``numeric`` float32 [N, d_num] and ``categorical``
        int64 [N, d_cat] when the model reads such columns, and per text column
        ``text.<column>.input_ids`` / ``text.<column>.attention_mask`` int64 [N, L] from
        :func:`takeoff.features.tokens.encode_texts` with the files of :meth:`onnx_assets`;
        N and each L are dynamic. Output ``outputs``: probabilities [N, n_classes] or values [N].

        Raises:
            DataError: the model is not fitted, or ``sample`` lacks rows or its text columns.
        """
        import copy
        import logging
        import warnings

        import torch

        if self._net is None or self.spec is None:
            raise DataError("model family 'text-finetune' has not been fitted or loaded; call fit() or load() first")
        if len(sample) == 0:
            raise DataError("model family 'text-finetune': to_onnx needs at least one sample row; received 0")
        spec = self.spec
        # torch.export specialises an axis of size 1 and may merge axes of equal sizes: the trace
        # takes two or three rows, and per text column a token length of its own above the row
        # count, every row ending in padding (only the shapes matter, not what the tokens say)
        rows = np.resize(np.arange(len(sample)), min(max(2, len(sample)), 3))
        sample = sample.take(rows)
        ids, _, _, _ = self._inputs(sample)  # checks the text and numeric columns
        names = [n for n, width in (("numeric", spec["n_numeric"]), ("categorical", len(spec["cardinalities"]))) if width]
        arrays = {"numeric": sample.numeric.astype(np.float32), "categorical": sample.categorical.astype(np.int64)}
        args = [torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in names]
        batch = torch.export.Dim("N")
        shapes: list[dict[int, Any]] = [{0: batch} for _ in names]
        pad = self._tokenizer.pad_token_id or 0
        for c, (column, col) in enumerate(zip(spec["text_columns"], ids)):
            width = len(rows) + 3 + c
            token_ids = np.full((len(rows), width), pad, dtype=np.int64)  # (n, L_c)
            mask = np.zeros_like(token_ids)
            for row, t in enumerate(col):
                t = t[: width - 1]
                token_ids[row, : len(t)], mask[row, : len(t)] = t, 1
            length = torch.export.Dim(f"L{c}")
            args += [torch.from_numpy(token_ids), torch.from_numpy(mask)]
            shapes += [{0: batch, 1: length}, {0: batch, 1: length}]
            names += [f"text.{column}.input_ids", f"text.{column}.attention_mask"]

        net = copy.deepcopy(self._net).cpu().float().eval()  # the family's own net stays as it is
        try:  # plain attention ops: fewer nodes than the exported scaled_dot_product_attention
            net.encoder.set_attn_implementation("eager")
        except (AttributeError, ValueError):
            pass
        module = _onnx_network(net, spec, self._kept(sample), names, self.task.is_classification,
                               self.task.is_multilabel).eval()
        exporter_log = logging.getLogger("torch.onnx")
        level = exporter_log.level
        exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" and the like
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(module, tuple(args), input_names=names, output_names=["outputs"],
                                            dynamo=True, opset_version=18, dynamic_shapes=(tuple(shapes),),
                                            verbose=False, report=False)
        finally:
            exporter_log.setLevel(level)
        return program.model_proto

    def onnx_assets(self, directory: Path) -> dict[str, dict[str, Any]]:
        """Write ``tokenizer.json`` (the fast tokenizer, set to truncate at ``max_length`` and
        pad with the model's pad token) into ``directory``; return, per text column, the file
        and ``max_length`` for :func:`takeoff.features.tokens.encode_texts`.

        Raises:
            DataError: the model is not fitted.
            ConfigError: the encoder's tokenizer has no fast (``tokenizers``) form.
        """
        from tokenizers import Tokenizer

        if self._tokenizer is None or self.spec is None:
            raise DataError("model family 'text-finetune' has not been fitted or loaded; call fit() or load() first")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        max_length = int(self.params.max_length)
        backend = getattr(self._tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ConfigError(f"model family 'text-finetune': the tokenizer of encoder '{self.params.encoder}' has no "
                              "fast (tokenizer.json) form, which the ONNX runtime needs. Fix: use an encoder that ships "
                              "tokenizer.json, or keep serving the bundle as it is.")
        tokenizer = Tokenizer.from_str(backend.to_str())  # a copy to configure
        tokenizer.enable_truncation(max_length, direction=getattr(self._tokenizer, "truncation_side", "right"))
        pad_id = self._tokenizer.pad_token_id or 0
        tokenizer.enable_padding(pad_id=pad_id, pad_token=self._tokenizer.pad_token or tokenizer.id_to_token(pad_id) or "[PAD]")
        tokenizer.save(str(directory / "tokenizer.json"))
        return {column: {"tokenizer": "tokenizer.json", "max_length": max_length} for column in self.spec["text_columns"]}

    # ------------------------------------------------------------------ bundle
    def save(self, directory: Path) -> None:
        """Write ``encoder/`` (fine-tuned weights and tokenizer), ``head.safetensors`` (fusion and
        head) and ``text_finetune.json`` (architecture, scaling, params)."""
        from safetensors.torch import save_file

        if self._net is None:
            raise DataError("model family 'text-finetune' has not been fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._net.encoder.save_pretrained(str(directory / ENCODER_DIR))  # safetensors
        self._tokenizer.save_pretrained(str(directory / ENCODER_DIR))
        save_file({k: v.detach().cpu().contiguous() for k, v in self._net.heads().items()},
                  str(directory / HEAD_FILE), metadata={"format": "pt"})
        write_json(directory / SPEC_FILE, {"format": FORMAT, "version": FORMAT_VERSION, "task": self.task.kind,
                                           "architecture": self.spec, "best_epoch": self.best_epoch,
                                           "params": self.params.model_dump(mode="json")})

    @classmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> TextFinetuneFamily:
        """Rebuild the model on the CPU from ``save``'s files (no code from the folder runs)."""
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        directory = Path(directory)
        document = read_spec(directory, SPEC_FILE, (HEAD_FILE,), FORMAT, (FORMAT_VERSION,), "text-finetune")
        spec = document["architecture"]
        expected = task.n_outputs
        if spec["n_outputs"] != expected:
            raise BundleError(str(directory / SPEC_FILE), f"the head has {spec['n_outputs']} output(s), "
                              f"the task '{task.kind}' needs {expected}")
        folder = directory / ENCODER_DIR
        check_encoder_folder(folder)
        model = cls(task, params)
        try:
            model._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            encoder = AutoModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise BundleError(str(folder), f"cannot be loaded as a text encoder: {str(error).splitlines()[0]}") from None
        net = _network(encoder, spec)
        try:
            missing = net.load_state_dict(load_file(str(directory / HEAD_FILE), device="cpu"), strict=False)
        except (OSError, SafetensorError, RuntimeError) as error:
            raise BundleError(str(directory / HEAD_FILE), f"weights do not match the architecture ({error})")
        if missing.unexpected_keys or any(not k.startswith("encoder.") for k in missing.missing_keys):
            raise BundleError(str(directory / HEAD_FILE), "weights do not match the architecture")
        model.spec, model.best_epoch = spec, document.get("best_epoch")
        model._net, model._device = net.eval(), torch.device("cpu")
        return model


def _check_finite(total) -> float:
    """The summed training loss as a float; DataError when it is nan or infinite."""
    value = float(total)
    if not math.isfinite(value):
        raise DataError("model family 'text-finetune': the training loss became nan or infinite. "
                        "Fix: lower learning_rate or head_lr.")
    return value
