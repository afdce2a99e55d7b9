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

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from takeoff.errors import ConfigError, DataError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Params
from takeoff.models.torch_family import TorchFamily, embedding_dim
from takeoff.training.context import FitContext

WEIGHTS_FILE = "image_cnn.safetensors"
SPEC_FILE = "image_cnn.json"
FORMAT = "takeoff-image-cnn"
FORMAT_VERSION = 1
PREDICT_BATCH = 256
# Test-time views, in the order ``tta`` takes them: (zoom, x shift, y shift), shifts as a share
# of the side (1/16: 2 px of a 32 px image), zoom < 1 magnifies the centre. Label-preserving
# for any image the training augmentation suits (no flips, no rotations: digits and text keep
# their meaning). Zoomed views come first: training sees random crops, which magnify, so the
# whole image is the edge of what the network learned from and a 0.9 zoom the middle (on the
# digits it lowered the log loss of validation and test by a tenth; shifts without zoom raised it).
VIEWS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.0, 0.0),
    (0.9, 0.0, 0.0),
    (0.9, 1 / 16, 0.0), (0.9, -1 / 16, 0.0), (0.9, 0.0, 1 / 16), (0.9, 0.0, -1 / 16),
    (0.8, 0.0, 0.0),
    (1.0, 1 / 16, 0.0), (1.0, -1 / 16, 0.0), (1.0, 0.0, 1 / 16), (1.0, 0.0, -1 / 16),
)
TTA_DEFAULT = 2


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
    tta: int = Field(
        TTA_DEFAULT, ge=1, le=len(VIEWS),
        description="Test-time augmentation: predictions average this many views of each image (the image, a 10% "
        "zoom, then zoomed copies shifted by a sixteenth of the side...; no flips); 1 = off. Predicting costs that "
        "many forward passes.",
    )
    seed_offset: int = Field(
        0, ge=0, le=1000,
        description="Added to the run's seed (initialisation, batch order, augmentation draws): auto's second seed.",
    )
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


def view_thetas(views: Sequence[tuple[float, float, float]]):
    """Affine matrices (v, 2, 3) for ``F.affine_grid`` of views ``(zoom, x shift, y shift)``
    (shifts as a share of the side; the content moves by that share)."""
    import torch

    return torch.tensor([[[z, 0.0, -2 * dx], [0.0, z, -2 * dy]] for z, dx, dy in views], dtype=torch.float32)


def test_time_views(net, views: Sequence[tuple[float, float, float]], kind: str):
    """``net`` predicting the average over ``views`` of each image (see :data:`VIEWS`; the
    first is the image itself): one batched forward pass of v·n images, the other columns
    repeated. Its output is in ``net``'s space, so the family's post-processing is unchanged:
    log of the mean probability (classification), logit of the mean per-label probability
    (multilabel), the mean value (regression)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class TestTimeViews(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("thetas", view_thetas(views)[1:], persistent=False)

        def forward(self, pixels, numeric, categorical):
            x = pixels.float()
            n, v = x.shape[0], len(self.thetas) + 1
            theta = self.thetas.to(x.device).repeat_interleave(n, dim=0)  # (n·(v-1), 2, 3), view-major
            moved = x.repeat(v - 1, 1, 1, 1)
            grid = F.affine_grid(theta, list(moved.shape), align_corners=False)
            moved = F.grid_sample(moved, grid, mode="bilinear", padding_mode="border", align_corners=False)
            out = self.net(torch.cat([x, moved]), numeric.repeat(v, 1), categorical.repeat(v, 1)).float()
            out = out.view(v, n, -1)  # (views, rows, outputs)
            if kind in ("binary", "multiclass"):
                return torch.softmax(out, dim=2).mean(0).clamp_min(1e-12).log()
            if kind == "multilabel":
                return torch.logit(torch.sigmoid(out).mean(0), eps=1e-6)
            return out.mean(0)

    return TestTimeViews().eval()


def mix_batch(mixup: float, cutmix: float, n_classes: int | None):
    """A training-batch transform for :class:`~takeoff.training.loop.Trainer`: Mixup or CutMix
    (one of the two per batch, at random, when both are on) on the first input (the images)
    and the targets, which become soft: class indices turn into one-hot rows (``n_classes``)
    before mixing; multilabel 0/1 rows mix as they are (``n_classes`` None). The table's other
    columns and the row weights stay those of the first image of each pair."""
    import torch

    from takeoff.training.tensors import TensorSet

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


class ImageCNNFamily(TorchFamily):
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
    predict_batch: ClassVar[int] = PREDICT_BATCH
    single_thread_rows: ClassVar[int] = 8
    warmup_share: ClassVar[float] = 0.2
    row_noun: ClassVar[str] = "images"
    # auto's second choice is another seed without flips: the two average well, and where a
    # flip changes the label (digits, text, anything with a handedness) validation favours it
    portfolio: ClassVar[tuple[dict[str, Any], ...]] = ({}, {"seed_offset": 1, "flip": False})

    # ------------------------------------------------------------------ fit
    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext):
        """As :meth:`TorchFamily.fit`, from the run's seed plus ``seed_offset``."""
        offset = self.params.seed_offset  # type: ignore[attr-defined]
        return super().fit(train, valid, replace(ctx, seed=ctx.seed + offset) if offset else ctx)

    def _check_training(self, train: Dataset, ctx: FitContext) -> None:
        p: ImageTrainParams = self.params  # type: ignore[assignment]
        _image_column(train.X, self.name)
        if (p.mixup or p.cutmix) and not (self.task.is_classification or self.task.is_multilabel):
            raise ConfigError(f"mixup and cutmix mix labels, and a {self.task.kind} target has none to mix; "
                              f"received mixup={p.mixup}, cutmix={p.cutmix}. Fix: set both to 0 for this task.",
                              path=f"models.{self.name}.{'mixup' if p.mixup else 'cutmix'}")

    def _make_spec(self, train: Dataset) -> dict[str, Any]:
        p: ImageTrainParams = self.params  # type: ignore[assignment]
        column = _image_column(train.X, self.name)
        pixels = train.X.images[column]
        target_mean, target_std = 0.0, 1.0
        if not (self.task.is_classification or self.task.is_multilabel):
            y = train.y.astype(np.float64)
            target_mean, target_std = float(y.mean()), float(y.std()) or 1.0
        return {
            "column": column,
            "channels": int(pixels.shape[1]),
            "size": int(pixels.shape[2]),
            **self._architecture(pixels),
            "n_numeric": int(train.X.numeric.shape[1]),
            "cardinalities": [int(c) for c in train.X.cardinalities],
            "embedding_dims": [embedding_dim(int(c), 16) for c in train.X.cardinalities],
            "n_outputs": self.task.n_outputs,
            "dropout": p.dropout,
            "augment": {"crop_scale": p.crop_scale, "rotate_degrees": p.rotate_degrees, "flip": p.flip, "jitter": p.jitter},
            "target_mean": target_mean,
            "target_std": target_std,
        }

    def _loss(self, device):
        from takeoff.models.losses import task_loss

        # soft targets (mixup, cutmix) are class probabilities: the cross-entropy takes those too
        return task_loss(self.task.kind, label_smoothing=self.params.label_smoothing)

    def _prepare(self, net, device):
        import torch

        if device.type == "cuda":
            net.to(memory_format=torch.channels_last)
        return torch.compile(net) if self.params.compile and device.type == "cuda" else net

    def _plan_epochs(self, net, train, valid, batch_size: int, device, remaining: float, most: int) -> int:
        return _epochs_in_budget(net, train, batch_size, device, remaining, most, valid)

    def _batch_transform(self):
        p: ImageTrainParams = self.params  # type: ignore[assignment]
        if not (p.mixup or p.cutmix):
            return None
        return mix_batch(p.mixup, p.cutmix, self.task.n_outputs if self.task.is_classification else None)

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

    # -------------------------------------------------------------- predict
    def _predict_module(self):
        views = self.params.tta  # type: ignore[attr-defined]
        return self._net if views <= 1 else test_time_views(self._net, VIEWS[:views], self.task.kind)

    def _arrays(self, X: Features) -> tuple[np.ndarray, ...]:
        spec = self.spec
        column = spec["column"]
        if column not in X.images:
            raise DataError(f"model family '{self.name}' reads the image column '{column}'; the features have "
                            f"{sorted(X.images) or 'no image column'}. Fix: transform the rows with the model's pipeline.")
        pixels = X.images[column]
        if pixels.shape[1:] != (spec["channels"], spec["size"], spec["size"]):
            raise DataError(f"image column '{column}': the model takes {spec['channels']}x{spec['size']}x{spec['size']} "
                            f"pixels; received {tuple(pixels.shape[1:])}. Fix: transform the rows with the model's pipeline.")
        return pixels, np.asarray(X.numeric, dtype=np.float32), np.asarray(X.categorical, dtype=np.int64)


def _epochs_in_budget(net, data, batch_size: int, device, remaining: float, most: int, valid=None) -> int:
    """How many epochs fit in ``remaining`` seconds, from the time of two forward + backward
    passes on one batch (the gradients are thrown away; the weights do not change)."""
    import torch

    from takeoff.training.device import autocast_context
    from takeoff.training.tensors import steps_per_epoch

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
