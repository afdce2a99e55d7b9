"""A small residual CNN trained from scratch, for small images and small data.

The network: the fitted per-channel normalisation, a 3x3 stem, three stages of two residual
blocks (widths ``width``, 2·``width``, 4·``width``; stride 2 between stages), global average
pooling; the other columns of the table (standardised numbers and category embeddings) are
concatenated to the pooled image features before a dropout and a linear head, so a table of
image + columns is one model.

Training (strong regularisation, fast schedule, as small data needs): random resized crops,
small rotations, optional horizontal flips and brightness/contrast jitter, applied on the
batch as tensors (on the GPU when training runs there) in train mode only, so predicting and
serving see exactly the eval transform (resize and centre crop at decode time, then the
normalisation); optional Mixup and CutMix (``mixup``, ``cutmix``: images and labels of pairs
mixed per batch); label smoothing; AdamW with a one-cycle schedule; early stopping on the
validation loss and the time budget. On CUDA: channels_last and bf16 autocast (the
trainer's), optionally ``torch.compile``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from takeoff.bundle import read_spec, write_atomic, write_json
from takeoff.data.schema import Task
from takeoff.errors import BudgetError, BundleError, ConfigError, DataError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport, Params
from takeoff.training.context import FitContext

WEIGHTS_FILE = "image_cnn.safetensors"
SPEC_FILE = "image_cnn.json"
FORMAT = "takeoff-image-cnn"
FORMAT_VERSION = 1
PREDICT_BATCH = 256


class ImageTrainParams(Params):
    """What every image family's training takes: optimisation, schedule and augmentation."""

    learning_rate: float = Field(3e-3, gt=0.0, le=1.0, description="Peak one-cycle learning rate (AdamW).")
    weight_decay: float = Field(5e-4, ge=0.0, description="AdamW weight decay.")
    batch_size: int = Field(128, ge=2, description="Images per optimizer step.")
    max_epochs: int = Field(40, ge=1, description="Most epochs; early stopping usually ends sooner.")
    patience: int = Field(8, ge=1, description="Epochs without a better validation loss before stopping.")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="Dropout before the head.")
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0, description="Label smoothing of the cross-entropy.")
    crop_scale: float = Field(
        0.7, gt=0.0, le=1.0, description="Smallest area share a random resized crop keeps (1: no crops)."
    )
    rotate_degrees: float = Field(10.0, ge=0.0, le=180.0, description="Largest random rotation.")
    flip: bool = Field(
        True, description="Random horizontal flips (turn off for text, digits and other images with a handedness)."
    )
    jitter: float = Field(0.2, ge=0.0, le=1.0, description="Random brightness and contrast change, as a share.")
    mixup: float = Field(
        0.0, ge=0.0, le=10.0,
        description="Mixup: blend image pairs and their labels with a Beta(mixup, mixup) share; 0 = off (classification).",
    )
    cutmix: float = Field(
        0.0, ge=0.0, le=10.0,
        description="CutMix: paste a box of another image, labels mixed by area, Beta(cutmix, cutmix); 0 = off.",
    )
    compile: bool = Field(False, description="torch.compile the network (CUDA only; pays off on long runs).")
    epochs: int | None = Field(None, ge=1, description="Train exactly this many epochs without early stopping (refit).")


class ImageCNNParams(ImageTrainParams):
    """Hyperparameters of the from-scratch image CNN."""

    width: int = Field(32, ge=4, le=512, description="Channels of the first stage (the others double it).")


def augment_module(options: dict[str, Any]):
    """The train-time augmentation as a module (identity in eval mode is the caller's job):
    random resized crop + rotation + flip in one affine resampling, then brightness and
    contrast jitter, on a float batch (n, c, h, w) of 0..255 pixels, on the batch's device.

    ``options``: ``crop_scale``, ``rotate_degrees``, ``flip``, ``jitter`` (see
    :class:`ImageCNNParams`)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Augment(nn.Module):
        def __init__(self, options: dict[str, Any]) -> None:
            super().__init__()
            self.options = options

        def forward(self, x):
            o, n = self.options, x.shape[0]
            dev = x.device
            scale = torch.empty(n, device=dev).uniform_(o["crop_scale"], 1.0).sqrt()
            aspect = torch.exp(torch.empty(n, device=dev).uniform_(math.log(3 / 4), math.log(4 / 3))).sqrt()
            sx, sy = scale * aspect, scale / aspect
            sx, sy = sx.clamp(max=1.0), sy.clamp(max=1.0)
            angle = torch.empty(n, device=dev).uniform_(-1, 1) * math.radians(o["rotate_degrees"])
            tx = (1 - sx) * torch.empty(n, device=dev).uniform_(-1, 1)
            ty = (1 - sy) * torch.empty(n, device=dev).uniform_(-1, 1)
            flip = torch.where(torch.rand(n, device=dev) < 0.5, -1.0, 1.0) if o["flip"] else torch.ones(n, device=dev)
            cos, sin = torch.cos(angle), torch.sin(angle)
            theta = torch.stack([
                torch.stack([cos * sx * flip, -sin * sy, tx], dim=1),
                torch.stack([sin * sx * flip, cos * sy, ty], dim=1),
            ], dim=1)  # (n, 2, 3)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
            if o["jitter"] > 0:
                j = o["jitter"]
                bright = torch.empty(n, 1, 1, 1, device=dev).uniform_(1 - j, 1 + j)
                contrast = torch.empty(n, 1, 1, 1, device=dev).uniform_(1 - j, 1 + j)
                mean = x.mean(dim=(1, 2, 3), keepdim=True)
                x = ((x - mean) * contrast + mean) * bright
            return x.clamp(0.0, 255.0)

    return Augment(options)


def mix_batch(mixup: float, cutmix: float, n_classes: int | None):
    """A training-batch transform for :class:`~takeoff.training.loop.Trainer`: Mixup or CutMix
    (one of the two per batch, at random, when both are on) on the first input (the images)
    and the targets, which become soft: class indices turn into one-hot rows (``n_classes``)
    before mixing; multilabel 0/1 rows mix as they are (``n_classes`` None). The table's other
    columns and the row weights stay those of the first image of each pair."""
    import torch

    from takeoff.training.loop import TensorSet

    def transform(batch: TensorSet) -> TensorSet:
        pixels, *rest = batch.inputs  # pixels: (n, c, h, w)
        n, dev = pixels.shape[0], pixels.device
        cut = cutmix > 0 and (mixup == 0 or bool(torch.rand((), device=dev) < 0.5))
        alpha = cutmix if cut else mixup
        share = float(torch.distributions.Beta(alpha, alpha).sample())  # of the first image
        partner = torch.randperm(n, device=dev)
        x = pixels.float()
        if cut:  # a box covering about 1 - share of the picture, from each row's partner
            h, w = x.shape[2:]
            bh, bw = int(round(h * math.sqrt(1 - share))), int(round(w * math.sqrt(1 - share)))
            cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
            y0, y1 = max(cy - bh // 2, 0), min(cy - bh // 2 + bh, h)
            x0, x1 = max(cx - bw // 2, 0), min(cx - bw // 2 + bw, w)
            x = x.clone()
            x[:, :, y0:y1, x0:x1] = x[partner, :, y0:y1, x0:x1]
            share = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)  # the share actually kept after clipping
        else:
            x = share * x + (1 - share) * x[partner]
        target = batch.target
        soft = torch.nn.functional.one_hot(target, n_classes).float() if n_classes is not None else target.float()
        return TensorSet((x, *rest), share * soft + (1 - share) * soft[partner], batch.weight)

    return transform


def _network(spec: dict[str, Any]):
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.skip = None
            if stride != 1 or cin != cout:
                self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + (x if self.skip is None else self.skip(x)))

    class ImageCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c, w = spec["channels"], spec["width"]
            self.register_buffer("mean", torch.tensor(spec["mean"], dtype=torch.float32).view(1, c, 1, 1))
            self.register_buffer("std", torch.tensor(spec["std"], dtype=torch.float32).view(1, c, 1, 1))
            self.augment = augment_module(spec["augment"])
            self.stem = nn.Sequential(nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
            stages, cin = [], w
            for i, cout in enumerate((w, 2 * w, 4 * w)):
                stages += [Block(cin, cout, 1 if i == 0 else 2), Block(cout, cout, 1)]
                cin = cout
            self.stages = nn.Sequential(*stages)
            self.embeddings = nn.ModuleList(nn.Embedding(k, d) for k, d in zip(spec["cardinalities"], spec["embedding_dims"]))
            width = cin + spec["n_numeric"] + sum(spec["embedding_dims"])
            self.head = nn.Sequential(nn.Dropout(spec["dropout"]), nn.Linear(width, spec["n_outputs"]))

        def forward(self, pixels, numeric, categorical):
            x = pixels.float()
            if self.training:
                x = self.augment(x)
            x = (x - self.mean) / self.std
            if x.is_cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            x = self.stages(self.stem(x)).mean(dim=(2, 3))  # (n, 4·width)
            parts = [x, numeric] + [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
            return self.head(torch.cat(parts, dim=1))

    return ImageCNN()


class ImageCNNFamily(Family):
    """A residual CNN trained from scratch on the table's image column (plus its other columns).

    Example:
        >>> from takeoff.data.schema import Task
        >>> model = ImageCNNFamily(Task("multiclass", "label", [0, 1, 2]), {"max_epochs": 5})
    """

    name: ClassVar[str] = "image-cnn"
    auto_order: ClassVar[int | None] = 10
    fast_params: ClassVar[dict[str, Any]] = {"max_epochs": 2, "width": 8}
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "multilabel", "regression")
    Params: ClassVar[type[Params]] = ImageCNNParams
    needs_images: ClassVar[bool] = True
    # the files save() writes and their format tag (a subclass with another network sets its own)
    weights_file: ClassVar[str] = WEIGHTS_FILE
    spec_file: ClassVar[str] = SPEC_FILE
    format: ClassVar[str] = FORMAT
    format_version: ClassVar[int] = FORMAT_VERSION

    def __init__(self, task: Task, params: ImageCNNParams | dict[str, Any] | None = None):
        super().__init__(task, params)
        self.callbacks: list[Any] = []
        self.spec: dict[str, Any] | None = None
        self.best_epoch: int | None = None
        self._net: Any = None
        self._device: Any = None

    # ------------------------------------------------------------------ fit
    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        import torch

        from takeoff.models.mlp import _classification_loss, _fingerprint, _regression_loss, embedding_dim, multilabel_loss
        from takeoff.training.callbacks import (
            ChanceWarning,
            Checkpoint,
            EarlyStopping,
            ProgressBar,
            TerminateOnNaN,
            TimeBudget,
        )
        from takeoff.training.device import resolve_device, seed_everything
        from takeoff.training.loop import Trainer, chance_score, steps_per_epoch

        start = time.monotonic()
        p: ImageTrainParams = self.params  # type: ignore[assignment]
        column = _image_column(train.X, self.name)
        if (p.mixup or p.cutmix) and not (self.task.is_classification or self.task.is_multilabel):
            raise ConfigError(f"mixup and cutmix mix labels, and a {self.task.kind} target has none to mix; "
                              f"received mixup={p.mixup}, cutmix={p.cutmix}. Fix: set both to 0 for this task.",
                              path=f"models.{self.name}.{'mixup' if p.mixup else 'cutmix'}")
        if len(train) < 2:
            raise DataError(f"model family '{self.name}' needs at least 2 training images; received {len(train)}")
        device = resolve_device(ctx.device)
        if valid is not None and len(valid) == 0:
            valid = None
        early_stop = valid is not None and p.epochs is None
        epochs = p.epochs or p.max_epochs
        batch_size = min(p.batch_size, max(16, math.ceil(len(train) / 8)))
        pixels = train.X.images[column]
        classification, multilabel = self.task.is_classification, self.task.is_multilabel
        n_outputs = self.task.n_outputs
        target_mean, target_std = 0.0, 1.0
        if not (classification or multilabel):
            y = train.y.astype(np.float64)
            target_mean, target_std = float(y.mean()), float(y.std()) or 1.0
        self.spec = {
            "column": column,
            "channels": int(pixels.shape[1]),
            "size": int(pixels.shape[2]),
            **self._architecture(pixels),
            "n_numeric": int(train.X.numeric.shape[1]),
            "cardinalities": [int(c) for c in train.X.cardinalities],
            "embedding_dims": [embedding_dim(int(c), 16) for c in train.X.cardinalities],
            "n_outputs": n_outputs,
            "dropout": p.dropout,
            "augment": {"crop_scale": p.crop_scale, "rotate_degrees": p.rotate_degrees, "flip": p.flip, "jitter": p.jitter},
            "target_mean": target_mean,
            "target_std": target_std,
        }
        train_set = self._tensors(train)
        valid_set = None if valid is None else self._tensors(valid)
        if classification:
            base_loss = _classification_loss(torch.ones(n_outputs, device=device))
            smoothing = p.label_smoothing

            def loss_fn(outputs, target, weight):
                import torch.nn.functional as F

                # soft targets (mixup, cutmix) are class probabilities: cross_entropy takes those too
                if not target.is_floating_point() and (not outputs.requires_grad or smoothing == 0):
                    return base_loss(outputs, target, weight)
                per_row = F.cross_entropy(outputs.float(), target, reduction="none",
                                          label_smoothing=smoothing if outputs.requires_grad else 0.0)
                return per_row.mean() if weight is None else (per_row * weight).sum() / weight.sum().clamp_min(1e-12)
        elif multilabel:
            loss_fn = multilabel_loss  # a sigmoid per label
        else:
            loss_fn = _regression_loss

        seed_everything(ctx.seed, deterministic=False)
        net = self._build(self.spec).to(device)
        if device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        model = torch.compile(net) if p.compile and device.type == "cuda" else net
        meta, saved = None, None
        if ctx.checkpoint_dir is not None:
            # a checkpoint of this same fit (data, params, seed) is continued, with its schedule
            meta = {"family": self.name, "params": p.model_dump(mode="json"), "seed": ctx.seed,
                    "data": _fingerprint(train, valid)}
            saved = _saved_state(ctx, self.name)
            if saved is not None and {k: v for k, v in saved["meta"].items() if k != "epochs"} == meta:
                epochs = int(saved["meta"]["epochs"])
            elif saved is not None:
                ctx.warn(f"the checkpoint in {ctx.checkpoint_dir} is from another fit (other data, params or "
                         f"seed); {self.name} starts from scratch and replaces it")
                saved = None
        if p.epochs is None and saved is None:
            # fit the one-cycle schedule to the budget: a schedule cut short never anneals
            epochs = _epochs_in_budget(net, train_set, batch_size, device, ctx.remaining(), epochs, valid_set)
        if meta is not None:
            meta["epochs"] = epochs
        groups = self._param_groups(net)
        optimizer = torch.optim.AdamW(groups, lr=p.learning_rate, weight_decay=p.weight_decay,
                                      fused=True if device.type == "cuda" else None)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in groups],
            total_steps=epochs * steps_per_epoch(len(train_set), batch_size), pct_start=0.2,
        )
        stopper = EarlyStopping("valid_loss", "min", patience=p.patience) if early_stop else None
        callbacks: list[Any] = [TerminateOnNaN(), TimeBudget(), ProgressBar()]
        if stopper is not None:
            callbacks.insert(0, stopper)
        if valid_set is not None:
            callbacks.append(ChanceWarning())
        callbacks += self._schedule_callbacks(net, epochs)
        if ctx.checkpoint_dir is not None:
            callbacks.append(Checkpoint(ctx.checkpoint_dir))
        trainer = Trainer(
            model, loss_fn, optimizer, scheduler, train=train_set, valid=valid_set, batch_size=batch_size,
            max_epochs=epochs, callbacks=callbacks + list(self.callbacks), ctx=ctx, device=device,
            score_fn=chance_score(self.task.kind) if valid_set is not None else None,
            eval_batch_size=PREDICT_BATCH, meta=meta,
            batch_transform=mix_batch(p.mixup, p.cutmix, n_outputs if classification else None)
            if p.mixup or p.cutmix else None,
        )
        if saved is not None:
            trainer.load_state_dict(saved)
            logging.getLogger("takeoff").info("%s: continuing the interrupted fit from epoch %d of %d",
                                              self.name, trainer.epoch, epochs)
        result = trainer.fit()
        if trainer.global_step == 0:
            raise BudgetError(
                f"model family '{self.name}': the time budget ran out before the first batch was trained. "
                "Fix: give a larger time budget."
            )
        self._after_fit(net, train_set, device, batch_size)
        self._net, self._device = net.eval(), device
        self.best_epoch = stopper.best_epoch if stopper is not None and stopper.best_epoch > 0 else max(trainer.epoch, 1)
        self.report = FitReport(
            best_iteration=self.best_epoch,
            history={k: list(result.history.get(k, [])) for k in ("train_loss", "valid_loss") if k in result.history},
            stopped_by=result.stop_reason,
            seconds=time.monotonic() - start,
        )
        return self.report

    # ---------------------------------------------------------------- hooks
    # A family with another network (image-finetune) overrides these and keeps the rest.
    def _architecture(self, pixels: np.ndarray) -> dict[str, Any]:
        """The spec entries of this network: fitted normalisation and widths."""
        mean, std = _pixel_stats(pixels)
        return {"width": self.params.width, "mean": mean, "std": std}

    @classmethod
    def _network(cls, spec: dict[str, Any]):
        """The network for ``spec``, as load() rebuilds it before reading the saved weights."""
        return _network(spec)

    def _build(self, spec: dict[str, Any]):
        """The network fit() starts from (image-finetune loads pretrained weights into it)."""
        return self._network(spec)

    def _param_groups(self, net) -> list[dict[str, Any]]:
        """Optimizer parameter groups, each with its peak learning rate ``lr``."""
        return [{"params": list(net.parameters()), "lr": self.params.learning_rate}]

    def _schedule_callbacks(self, net, epochs: int) -> list[Any]:
        """Extra trainer callbacks (image-finetune unfreezes its backbone with one)."""
        return []

    def _after_fit(self, net, data, device, batch_size: int) -> None:
        """Runs on the trained network before it is kept (image-finetune recalibrates its
        batch-norm statistics here)."""

    def _tensors(self, data: Dataset):
        import torch

        from takeoff.training.loop import TensorSet

        spec = self.spec
        pixels = torch.from_numpy(np.ascontiguousarray(data.X.images[spec["column"]]))
        numeric = torch.from_numpy(np.ascontiguousarray(data.X.numeric, dtype=np.float32))
        categorical = torch.from_numpy(np.ascontiguousarray(data.X.categorical, dtype=np.int64))
        if self.task.is_classification:
            target = torch.from_numpy(data.y.astype(np.int64))
        elif self.task.is_multilabel:
            target = torch.from_numpy(data.y.astype(np.float32))
        else:
            target = torch.from_numpy(((data.y.astype(np.float64) - spec["target_mean"]) / spec["target_std"]).astype(np.float32))
        weight = None if data.weight is None else torch.from_numpy(np.asarray(data.weight, dtype=np.float32))
        return TensorSet((pixels, numeric, categorical), target, weight)

    # -------------------------------------------------------------- predict
    def predict(self, X: Features) -> np.ndarray:
        """Probabilities (n, n_classes) or values (n,), float32."""
        import torch

        from takeoff.models.mlp import _threads

        if self._net is None or self.spec is None:
            raise DataError(f"model family '{self.name}' has not been fitted or loaded; call fit() or load() first")
        spec = self.spec
        column = spec["column"]
        if column not in X.images:
            raise DataError(f"model family '{self.name}' reads the image column '{column}'; the features have "
                            f"{sorted(X.images) or 'no image column'}. Fix: transform the rows with the model's pipeline.")
        pixels = X.images[column]
        if pixels.shape[1:] != (spec["channels"], spec["size"], spec["size"]):
            raise DataError(f"image column '{column}': the model takes {spec['channels']}x{spec['size']}x{spec['size']} "
                            f"pixels; received {tuple(pixels.shape[1:])}. Fix: transform the rows with the model's pipeline.")
        net, device = self._net, self._device
        net.eval()
        parts = []
        with torch.no_grad(), _threads(1 if len(X) < 8 and device.type == "cpu" else None):
            for a in range(0, len(X), PREDICT_BATCH):
                b = a + PREDICT_BATCH
                out = net(
                    torch.from_numpy(np.ascontiguousarray(pixels[a:b])).to(device),
                    torch.from_numpy(np.ascontiguousarray(X.numeric[a:b], dtype=np.float32)).to(device),
                    torch.from_numpy(np.ascontiguousarray(X.categorical[a:b], dtype=np.int64)).to(device),
                ).float()
                if self.task.is_classification:
                    out = torch.softmax(out, dim=1)
                elif self.task.is_multilabel:
                    out = torch.sigmoid(out)
                parts.append(out.cpu().numpy())
        if self.task.is_classification or self.task.is_multilabel:
            out = np.concatenate(parts) if parts else np.zeros((0, spec["n_outputs"]), np.float32)
            return out.astype(np.float32, copy=False)
        values = np.concatenate(parts)[:, 0] if parts else np.zeros(0, np.float32)
        return (values.astype(np.float64) * spec["target_std"] + spec["target_mean"]).astype(np.float32)

    # ------------------------------------------------------------ save/load
    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        if self._net is None or self.spec is None:
            raise DataError(f"model family '{self.name}' has not been fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in self._net.state_dict().items()}
        write_atomic(directory / self.weights_file, lambda tmp: save_file(weights, str(tmp), metadata={"format": "pt"}))
        write_json(directory / self.spec_file, {
            "format": self.format, "version": self.format_version, "task": self.task.kind, "architecture": self.spec,
            "best_epoch": self.best_epoch, "params": self.params.model_dump(mode="json"),
        })

    @classmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> ImageCNNFamily:
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        document = read_spec(directory, cls.spec_file, (cls.weights_file,), cls.format, (cls.format_version,), cls.name)
        spec = document["architecture"]
        expected = task.n_outputs
        if spec["n_outputs"] != expected:
            raise BundleError(str(directory / cls.spec_file),
                              f"the network has {spec['n_outputs']} output(s), the task '{task.kind}' needs {expected}")
        net = cls._network(spec)
        try:
            net.load_state_dict(load_file(str(directory / cls.weights_file), device="cpu"), strict=True)
        except (OSError, SafetensorError, RuntimeError) as error:
            raise BundleError(str(directory / cls.weights_file), f"weights do not match the architecture ({error})")
        model = cls(task, params)
        model.spec, model.best_epoch = spec, document.get("best_epoch")
        model._net, model._device = net.eval(), torch.device("cpu")
        return model

    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        if self.best_epoch is None:
            return None
        return {"epochs": max(1, int(round(self.best_epoch * math.sqrt(max(n_rows_ratio, 1.0)))))}


def _epochs_in_budget(net, data, batch_size: int, device, remaining: float, most: int, valid=None) -> int:
    """How many epochs fit in ``remaining`` seconds, from the time of two forward + backward
    passes on one batch (the gradients are thrown away; the weights do not change)."""
    import torch

    from takeoff.training.device import autocast_context
    from takeoff.training.loop import steps_per_epoch

    if not math.isfinite(remaining):
        return most
    batch = data.slice(0, min(batch_size, len(data))).to(device)
    state = {k: v.clone() for k, v in net.state_dict().items()}  # BatchNorm statistics move in train mode
    net.train()
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        with autocast_context(device):
            net(*batch.inputs).float().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - started)
    net.zero_grad(set_to_none=True)
    net.load_state_dict(state)
    step = min(seconds[1:])
    n_valid = 0 if valid is None else len(valid)
    epoch = step * (steps_per_epoch(len(data), batch_size) * 1.1 + n_valid / max(batch_size, 1) / 3) + 0.05
    return int(max(1, min(most, (0.85 * remaining) // epoch)))


def _saved_state(ctx: FitContext, family: str) -> dict[str, Any] | None:
    """The checkpoint in ``ctx.checkpoint_dir`` when it holds an image fit's state, or None (none,
    or unreadable: warned); read once, then compared and loaded."""
    from takeoff.errors import DataSourceError
    from takeoff.training.checkpoint import load_state

    try:
        state = load_state(ctx.checkpoint_dir)
    except DataSourceError as error:
        ctx.warn(f"{error}; {family} starts from scratch")
        return None
    meta = None if state is None else state.get("meta")
    return state if isinstance(meta, dict) and "epochs" in meta else None


def _image_column(X: Features, family: str) -> str:
    if not X.images:
        raise DataError(
            f"model family '{family}' needs an image column (paths, bytes or arrays of images); the "
            "table has none. Fix: pass an image folder or a table with an image-path column, or choose "
            "another family."
        )
    if len(X.images) > 1:
        raise DataError(
            f"model family '{family}' reads one image column; the table has {len(X.images)}: "
            f"{sorted(X.images)}. Fix: drop all but one (drop: [...] in the config)."
        )
    return next(iter(X.images))


def _pixel_stats(pixels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..255) of a sample of the training images."""
    sample = pixels[: 2000].astype(np.float64)
    return sample.mean(axis=(0, 2, 3)).tolist(), np.maximum(sample.std(axis=(0, 2, 3)), 1.0).tolist()
