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
bundle loads without ``peft``. It runs on the shared trainer
(:class:`~takeoff.models.torch_family.TorchFamily`): early stopping on the validation loss per
epoch keeps the best weights, at the deadline the best weights so far are kept, an interrupted
fit resumes from its checkpoint, and a nan training loss (read every 32 batches) ends the fit
with the fix.

Classification weighs each class alike in the loss by default (``class_weights``), so a class
of 9% of the rows is learned rather than drowned by the majority; the probabilities are then
those of a model trained on balanced classes.

``auto`` tries it after ``tfidf`` and ``text-embed`` when the fit fits the time left
(:meth:`TextFinetuneFamily.auto_skip`: on a CPU, a few hundred to a few thousand rows in the
default budget); it is fitted once, never per cross-validation fold.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from takeoff.bundle import write_atomic
from takeoff.data.schema import Task
from takeoff.errors import BudgetError, BundleError, ConfigError, DataError, MissingDependencyError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, FitReport, Params
from takeoff.models.encoder import DEFAULT_ENCODER, check_encoder_folder, resolve_encoder
from takeoff.models.torch_family import TorchFamily, embedding_dim
from takeoff.training.context import FitContext

SPEC_FILE, HEAD_FILE, ENCODER_DIR = "text_finetune.json", "head.safetensors", "encoder"
FORMAT, FORMAT_VERSION = "takeoff-text-finetune", 1
HASHED = re.compile(r"__h\d+$")
LAYER = re.compile(r"\.layers?\.(\d+)\.")
BUCKET_BATCHES = 50  # batches per length-sorted chunk
PREDICT_BATCH = 64
FINITE_EVERY = 32  # batches between reads of the running training loss (a GPU sync)
# What auto_skip's estimate of a CPU fit assumes. Fine-tuning the default MiniLM on this project's
# 2-core machine (AVX-512 BF16): ~90 tweets/s (~2,800 tokens/s) on an idle machine (docs/text.md),
# 800-1,600 tokens/s with other jobs running (50 rows/s of 31-token tweets, 9 rows/s of 92-token
# texts), and ~20 s to load the encoder, tokenise and validate. Texts are taken as AUTO_TOKENS
# long (or max_length if shorter), a short review: auto sees only the row count.
AUTO_TOKENS_PER_S = 1500.0
AUTO_TOKENS = 64
AUTO_OVERHEAD_S = 20.0
AUTO_SHARE = 0.6  # the share of the time left one fit may take


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
    class_weights: bool = Field(True, description="Classification: every class weighs alike in the cross-entropy "
                                                  "(rows weighted n / (k * class count)); False: every row alike.")
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

        def forward(self, numeric, categorical, *tokens: torch.Tensor):
            """``tokens``: per text column its ids and attention mask, each (n, longest in batch)."""
            parts = []
            for ids, mask in zip(tokens[0::2], tokens[1::2]):
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
    ``_arrays`` and ``predict`` do around it."""
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
            tokens = [given[f"text.{c}.{part}"] for c in spec["text_columns"] for part in ("input_ids", "attention_mask")]
            n = tokens[0].shape[0]
            if "numeric" in given:  # the pipeline's block (n, d_num) -> the kept columns, standardised
                numeric = (given["numeric"].index_select(1, self.kept) - self.mean) / self.std
                numeric = torch.where(torch.isnan(numeric), torch.zeros_like(numeric), numeric)
            else:
                numeric = torch.zeros((n, 0), dtype=torch.float32)
            categorical = torch.minimum(given["categorical"], self.top).clamp(min=0) if "categorical" in given else None
            out = self.net(numeric, categorical, *tokens).float()  # (n, n_outputs)
            if classification:
                return torch.softmax(out, dim=1)
            if multilabel:
                return torch.sigmoid(out)
            return out[:, 0] * spec["target_std"] + spec["target_mean"]  # (n,)

    return Exported()


class TextFinetuneFamily(TorchFamily):
    """A pretrained text encoder fine-tuned with a fusion head over the other columns.

    Example:
        >>> from takeoff.data.schema import Task
        >>> model = TextFinetuneFamily(Task("binary", "y", [0, 1]), {"max_epochs": 2, "max_length": 64})
    """

    name: ClassVar[str] = "text-finetune"
    auto_order: ClassVar[int | None] = 50  # after tfidf and text-embed: the slowest text family
    cross_validates: ClassVar[bool] = False  # one fit takes most of a CPU budget
    fast_params: ClassVar[dict[str, Any]] = {"max_epochs": 1, "max_length": 32, "batch_size": 16, "fusion_dim": 32}
    exports_onnx: ClassVar[bool] = True
    quantizes_int8: ClassVar[bool] = True
    prunable: ClassVar[bool] = True
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "multilabel", "regression")
    Params: ClassVar[type[Params]] = TextFinetuneParams
    needs_text: ClassVar[bool] = True
    weights_file: ClassVar[str] = HEAD_FILE
    spec_file: ClassVar[str] = SPEC_FILE
    format: ClassVar[str] = FORMAT
    format_version: ClassVar[int] = FORMAT_VERSION
    predict_batch: ClassVar[int] = PREDICT_BATCH
    budget_fix: ClassVar[str] = "give a larger time budget, or a smaller max_length"
    chance_warning: ClassVar[bool] = False
    min_delta: ClassVar[float] = 1e-6
    prune_epochs: ClassVar[int] = 1
    prune_batch: ClassVar[int] = 32
    prune_lr: ClassVar[float] = 2e-5

    @classmethod
    def unavailable(cls, params: dict[str, Any] | None = None) -> str | None:
        """Why it cannot train here: transformers missing, or the encoder not found locally."""
        try:
            import transformers  # noqa: F401
        except ImportError:
            return "text-finetune needs transformers: pip install 'takeoff[text]'"
        try:
            resolve_encoder((params or {}).get("encoder", DEFAULT_ENCODER))
        except (OSError, BundleError) as error:  # EncoderNotFoundError is a FileNotFoundError
            return str(error).splitlines()[0]
        return None

    @classmethod
    def fit_seconds(cls, rows: int, params: dict[str, Any] | None = None) -> float:
        """Estimated seconds of one fit on ``rows`` training rows on a 2-core CPU: the epochs
        times the rows (plus a quarter as many validation rows, forward only) over the measured
        speed, plus loading (see ``AUTO_TOKENS_PER_S``)."""
        p = TextFinetuneParams(**(params or {}))
        epochs = p.epochs or p.max_epochs
        tokens = min(p.max_length, AUTO_TOKENS)
        rows_per_s = AUTO_TOKENS_PER_S / tokens
        return AUTO_OVERHEAD_S + epochs * rows * (1.0 + 0.25 / 3.0) / rows_per_s

    @classmethod
    def auto_skip(cls, rows: int, seconds: float, params: dict[str, Any] | None = None) -> str | None:
        """A reason to leave it out of ``auto`` when it is unavailable, or when its estimated fit
        (:meth:`fit_seconds`) exceeds 60% of the ``seconds`` left; None to try it."""
        problem = cls.unavailable(params)
        if problem is not None:
            return problem
        needed = cls.fit_seconds(rows, params)
        if needed > AUTO_SHARE * seconds:
            return (f"fine-tuning on {rows:,} rows would take about {needed:.0f}s on a CPU, more than "
                    f"{AUTO_SHARE:.0%} of the {seconds:.0f}s left. Fix: raise --time-budget, or train on a GPU "
                    "(--device cuda), or choose it with --family text-finetune.")
        return None

    def __init__(self, task: Task, params=None):
        super().__init__(task, params)
        self._tokenizer: Any = None
        self._folder: Path | None = None  # the pretrained encoder a fit starts from
        self._initial: Any = None  # the fit's initial-validation callback
        self.n_trainable: int | None = None  # parameters the last fit trained
        self._class_weight: list[float] | None = None  # balanced class weights of the last fit's loss

    # ------------------------------------------------------------------ inputs
    def _kept(self, X: Features) -> np.ndarray:
        return np.array([i for i, n in enumerate(X.numeric_names) if not HASHED.search(n)], dtype=np.int64)

    def _inputs(self, X: Features) -> tuple[list[list[list[int]]], np.ndarray, np.ndarray]:
        """Token ids per text column per row, the standardised numbers, and the codes."""
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
        return ids, numeric, np.maximum(categorical, 0)

    def _arrays(self, X: Features) -> tuple[np.ndarray, ...]:
        """Numbers, codes, then per text column its token ids and attention mask (n, longest
        text of ``X``), right-padded; :meth:`_collate` cuts each batch to its own longest."""
        ids, numeric, categorical = self._inputs(X)
        pad = self._tokenizer.pad_token_id or 0
        tokens: list[np.ndarray] = []
        for col in ids:
            longest = max([1, *(len(t) for t in col)])
            batch = np.full((len(col), longest), pad, dtype=np.int64)
            mask = np.zeros((len(col), longest), dtype=np.int64)
            for row, t in enumerate(col):
                batch[row, : len(t)], mask[row, : len(t)] = t, 1
            tokens += [batch, mask]
        return (numeric, categorical, *tokens)

    def _collate(self):
        def collate(batch):
            """Dynamic padding: each text column's ids and mask cut to the batch's longest text."""
            numeric, categorical, *tokens = batch.inputs
            cut = []
            for ids, mask in zip(tokens[0::2], tokens[1::2]):
                longest = max(1, int(mask.sum(dim=1).max())) if len(mask) else 1
                cut += [ids[:, :longest], mask[:, :longest]]
            return type(batch)((numeric, categorical, *cut), batch.target, batch.weight)

        return collate

    @staticmethod
    def _lengths(inputs) -> np.ndarray:
        """Tokens per row, all text columns together (from the attention masks)."""
        return sum(np.asarray(m).sum(axis=1) for m in inputs[3::2]).astype(np.int64)

    def _batch_order(self, train, batch_size: int, seed: int):
        lengths = self._lengths(train.inputs)

        def order(epoch: int) -> list[list[int]]:
            """Shuffled rows, sorted by length within chunks of ~50 batches, cut into batches whose
            order is shuffled: little padding, still random; drawn from (seed, epoch) only."""
            rng = np.random.default_rng([seed, epoch])
            rows = rng.permutation(len(lengths))
            chunk = batch_size * BUCKET_BATCHES
            batches = []
            for a in range(0, len(rows), chunk):
                part = rows[a : a + chunk]
                part = part[np.argsort(lengths[part], kind="stable")]
                batches += [part[b : b + batch_size].tolist() for b in range(0, len(part), batch_size)]
            return [batches[i] for i in rng.permutation(len(batches))]

        return order

    def _tensors(self, data: Dataset):
        """The rows sorted by length (validation then pads little); the batch order shuffles them."""
        rows = super()._tensors(data)
        import torch

        order = torch.from_numpy(np.argsort(self._lengths(rows.inputs), kind="stable"))
        return rows.take(order)

    def _prune_data(self, X: Features):
        rows = super()._prune_data(X)
        import torch

        return rows.take(torch.from_numpy(np.argsort(self._lengths(rows.inputs), kind="stable")))

    # ------------------------------------------------------------------ fit
    def _check_training(self, train: Dataset, ctx: FitContext) -> None:
        """Raises ConfigError (no text column), BudgetError (no time left) or
        MissingDependencyError (``lora_r`` without ``peft``)."""
        if not train.X.text:
            raise ConfigError("family 'text-finetune' needs a free-text column; this table has none")
        if len(train) < 2:
            raise DataError(f"model family 'text-finetune' needs at least 2 training rows; received {len(train)}")
        if ctx.expired():
            raise BudgetError("model family 'text-finetune': no time left to fine-tune. Fix: raise --time-budget.")
        if self.params.lora_r is not None:
            try:
                import peft  # noqa: F401
            except ImportError:
                raise MissingDependencyError("peft", "LoRA fine-tuning (lora_r)", extra="text") from None

    def _make_spec(self, train: Dataset) -> dict[str, Any]:
        from transformers import AutoConfig, AutoTokenizer

        p: TextFinetuneParams = self.params  # type: ignore[assignment]
        self._folder = resolve_encoder(p.encoder)
        self._tokenizer = AutoTokenizer.from_pretrained(str(self._folder), local_files_only=True)
        config = AutoConfig.from_pretrained(str(self._folder), local_files_only=True)
        kept = self._kept(train.X)
        numeric = train.X.numeric[:, kept].astype(np.float64)
        mean, std = (numeric.mean(0), numeric.std(0)) if len(kept) else (np.zeros(0), np.ones(0))
        std = np.where(std > 1e-9, std, 1.0)
        y = train.y.astype(np.float64)
        plain = self.task.is_classification or self.task.is_multilabel
        t_mean, t_std = (0.0, 1.0) if plain else (float(y.mean()), float(y.std()) or 1.0)
        cards = [int(c) for c in train.X.cardinalities]
        class_weight = None
        if self.task.is_classification and p.class_weights:
            counts = np.bincount(train.y.astype(np.int64), minlength=self.task.n_outputs).astype(np.float64)
            class_weight = (counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1.0))).tolist()
        self._class_weight = class_weight
        return {
            "text_columns": sorted(train.X.text), "n_text": len(train.X.text), "hidden": int(config.hidden_size),
            "n_numeric": int(len(kept)), "mean": mean.tolist(), "std": std.tolist(), "cardinalities": cards,
            "embedding_dims": [embedding_dim(c, p.embedding_dim_max) for c in cards],
            "fusion_dim": p.fusion_dim, "dropout": p.dropout,
            "n_outputs": self.task.n_outputs, "target_mean": t_mean, "target_std": t_std,
        }

    def _loss(self, device):
        import torch

        from takeoff.models.losses import task_loss

        weight = self._class_weight
        return task_loss(self.task.kind, None if weight is None else torch.tensor(weight, dtype=torch.float32, device=device))

    def _build(self, spec: dict[str, Any]):
        """The pretrained encoder (with LoRA adapters when ``lora_r``) under a new head."""
        from transformers import AutoModel

        p: TextFinetuneParams = self.params  # type: ignore[assignment]
        encoder = AutoModel.from_pretrained(str(self._folder), local_files_only=True)
        if p.lora_r is not None:
            import peft

            config = peft.LoraConfig(r=p.lora_r, lora_alpha=p.lora_alpha, lora_dropout=0.0)
            try:
                encoder = peft.get_peft_model(encoder, config)
            except ValueError as error:  # no default target modules for this architecture
                raise ConfigError(f"LoRA cannot wrap encoder '{p.encoder}': {error}", path="models.text-finetune.lora_r")
        if p.gradient_checkpointing:
            encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        net = _network(encoder, spec)
        self.n_trainable = sum(t.numel() for t in net.parameters() if t.requires_grad)
        return net

    @classmethod
    def _network(cls, spec: dict[str, Any]):
        raise NotImplementedError("text-finetune builds its network around a pretrained encoder (_build, _read_network)")

    def _prepare(self, net, device):
        import torch

        return torch.compile(net) if self.params.compile else net

    def _batch_size(self, n_rows: int) -> int:
        return self.params.batch_size

    def _grad_accum(self) -> int:
        return self.params.grad_accum

    def _precision(self) -> tuple[str, bool]:
        return self.params.precision, True

    def _predict_precision(self) -> str:
        # float32 on a CPU whatever the training precision: the same outputs on every machine
        return "fp32" if self.params.precision == "fp32" else "auto"

    def _steps_per_epoch(self, n_rows: int, batch_size: int) -> int:
        return math.ceil(math.ceil(n_rows / batch_size) / self.params.grad_accum)

    def _scheduler(self, optimizer, total_steps: int):
        """A linear warm-up over ``warmup_ratio`` of the steps, then a linear decay to zero."""
        import torch

        total = max(1, total_steps)
        warmup = int(total * self.params.warmup_ratio)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))

    def _extra_callbacks(self, net, epochs: int) -> list[Any]:
        self._initial, finite = _callbacks()
        return [self._initial, finite]

    def _after_fit(self, net, data, device, batch_size: int) -> None:
        if self.params.lora_r is not None:
            net.encoder = net.encoder.merge_and_unload()  # a plain model: saving and loading need no peft
        if self.params.gradient_checkpointing:
            net.encoder.gradient_checkpointing_disable()

    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        """Fine-tune on ``train``, early-stopping on ``valid`` (see the module docstring); the
        report's history also holds ``valid_loss_initial``, the validation loss before training.

        Raises:
            ConfigError: the table has no text column.
            MissingDependencyError: ``lora_r`` is set and ``peft`` is not installed.
            BudgetError: the deadline passed before a single optimizer step.
            DataError: the training loss became nan or infinite.
        """
        report = super().fit(train, valid, ctx)
        if self._initial is not None and self._initial.loss is not None:
            report.history["valid_loss_initial"] = [self._initial.loss]
        return report

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
        """Probabilities (n, n_classes), per-label probabilities (n, n_labels) or values (n,), float32."""
        self._require_fitted()
        arrays = self._arrays(X)
        # rows of similar length batched together pad little; the outputs go back in row order
        order = np.argsort(self._lengths(arrays), kind="stable")
        out = np.empty((len(X), self.spec["n_outputs"]), dtype=np.float32)
        out[order] = self._forward(tuple(a[order] for a in arrays))
        return self._finish(out)

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
        ids, _, _ = self._inputs(sample)  # checks the text and numeric columns
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
    # save()/load() are TorchFamily's: ``text_finetune.json`` (architecture, scaling, params),
    # ``head.safetensors`` (fusion and head) and ``encoder/`` (fine-tuned weights and tokenizer)
    def _write_weights(self, directory: Path) -> None:
        from safetensors.torch import save_file

        self._net.encoder.save_pretrained(str(directory / ENCODER_DIR))  # safetensors
        self._tokenizer.save_pretrained(str(directory / ENCODER_DIR))
        heads = {k: v.detach().cpu().contiguous() for k, v in self._net.heads().items()}
        write_atomic(directory / HEAD_FILE, lambda tmp: save_file(heads, str(tmp), metadata={"format": "pt"}))

    def _read_network(self, directory: Path, spec: dict[str, Any]):
        """The encoder and tokenizer from ``encoder/`` and the head from ``head.safetensors``
        (no code from the folder runs)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        folder = directory / ENCODER_DIR
        check_encoder_folder(folder)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
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
        return net


def _check_finite(total) -> float:
    """The summed training loss as a float; DataError when it is nan or infinite."""
    value = float(total)
    if not math.isfinite(value):
        raise DataError("model family 'text-finetune': the training loss became nan or infinite. "
                        "Fix: lower learning_rate or head_lr.")
    return value


def _callbacks() -> tuple[Any, Any]:
    """(initial validation, finite loss): the text fit's own trainer callbacks."""
    from takeoff.training.callbacks import Callback

    class InitialValidation(Callback):
        """The validation loss before the first step (kept across a resume), for the report."""

        def __init__(self) -> None:
            self.loss: float | None = None

        def on_train_begin(self, trainer) -> None:
            if self.loss is None and trainer.epoch == 0 and trainer.valid_data is not None:
                self.loss = trainer.evaluate(trainer.valid_data)["valid_loss"]

        def state_dict(self) -> dict[str, Any]:
            return {"loss": self.loss}

        def load_state_dict(self, state: dict[str, Any]) -> None:
            self.loss = state["loss"]

    class FiniteLoss(Callback):
        """Ends the fit with a DataError (and the fix) when the training loss turns nan or
        infinite. The losses are summed on the device and read every ``FINITE_EVERY`` batches
        and at the end of each epoch: reading each one would make the CPU wait for the GPU at
        every step."""

        def __init__(self) -> None:
            self.running: Any = 0.0

        def on_epoch_begin(self, trainer, epoch: int) -> None:
            self.running = 0.0

        def on_batch_end(self, trainer, step: int, loss) -> None:
            self.running = self.running + loss
            if (step + 1) % FINITE_EVERY == 0 or step + 1 == trainer.batches_per_epoch:
                _check_finite(self.running)

    return InitialValidation(), FiniteLoss()
