"""Saliency maps of image members: Integrated Gradients (Captum) on the pixels.

For a row, the attribution of each pixel is its Integrated Gradients attribution to the
explained output (the probability of the explained class, or the predicted value), from a
baseline image of uniform grey at the training images' mean brightness to the row's image;
the row's other columns stay as they are. The map shown is the absolute attribution summed
over the colour channels, scaled so that the row's largest is 1: where the model looked, not
in which direction. The column-level attribution of an image column (in the table of
attributions) comes from occlusion, as for every family without a dedicated method.

Captum and torch are imported only here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from takeoff.errors import MissingDependencyError
from takeoff.features.block import Features

JSON_SIDE = 32  # the map in the JSON is pooled to at most this many cells a side
OVERLAY_SIDE = 160  # pixels a side of the overlay image in the HTML


def is_image_member(member) -> bool:
    """Whether ``member`` reads an image column with a network saliency can be taken on."""
    return bool(getattr(member, "needs_images", False)) and getattr(member, "network", None) is not None


@dataclass
class SaliencyMaps:
    """Per row, where the member looked in its image column.

    Attributes:
        column: the image column.
        maps: (n, h, w) in 0..1 (1: the row's most important pixel).
        pixels: the decoded images, uint8 (n, channels, h, w).
        delta: per row, sum of the attributions minus (output - output at the baseline).
    """

    column: str
    maps: np.ndarray
    pixels: np.ndarray
    delta: np.ndarray


def image_saliency(member, X: Features, classes: np.ndarray | None, steps: int = 32) -> SaliencyMaps:
    """Integrated Gradients saliency of every row of ``X`` for its explained class.

    Raises:
        MissingDependencyError: captum is not installed.
    """
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        raise MissingDependencyError("captum", "image saliency maps (Integrated Gradients)", "train") from None
    import torch
    from torch import nn

    spec, net = member.spec, member.network.eval()  # on its own device: the member keeps predicting there
    device = next(net.parameters()).device
    column = spec["column"]
    classification, multilabel = member.task.is_classification, member.task.is_multilabel

    class Output(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixels, numeric, categorical):
            out = self.net(pixels, numeric, categorical).float()
            if classification:
                return torch.softmax(out, dim=1)
            if multilabel:
                return torch.sigmoid(out)
            return out * spec["target_std"] + spec["target_mean"]

    pixels = np.ascontiguousarray(X.images[column])
    inputs = torch.from_numpy(pixels).float().to(device)
    grey = float(np.mean(spec["mean"]))
    baseline = torch.full_like(inputs[:1], grey)
    numeric = torch.from_numpy(np.ascontiguousarray(X.numeric, dtype=np.float32)).to(device)
    categorical = torch.from_numpy(np.ascontiguousarray(X.categorical, dtype=np.int64)).to(device)
    target = torch.from_numpy(np.asarray(classes, dtype=np.int64)).to(device) if classes is not None else 0
    attributions, delta = IntegratedGradients(Output()).attribute(
        inputs, baselines=baseline, target=target, additional_forward_args=(numeric, categorical),
        n_steps=steps, internal_batch_size=max(steps, 64), return_convergence_delta=True)
    maps = attributions.detach().abs().sum(dim=1).cpu().numpy().astype(np.float64)  # (n, h, w)
    maps /= np.maximum(maps.reshape(len(maps), -1).max(axis=1), 1e-12)[:, None, None]
    return SaliencyMaps(column, maps, pixels, delta.detach().cpu().numpy().astype(np.float64))


def pooled(saliency: np.ndarray, side: int = JSON_SIDE) -> list[list[float]]:
    """A (h, w) map average-pooled to at most ``side`` cells a side, rounded, for the JSON."""
    h, w = saliency.shape
    fh, fw = max(1, -(-h // side)), max(1, -(-w // side))
    padded = np.pad(saliency, ((0, (-h) % fh), (0, (-w) % fw)), mode="edge")
    grid = padded.reshape(padded.shape[0] // fh, fh, padded.shape[1] // fw, fw).mean(axis=(1, 3))
    return np.round(grid, 3).tolist()


def overlay_png(pixels: np.ndarray, saliency: np.ndarray, side: int = OVERLAY_SIDE) -> str:
    """The image with its saliency in red on top, as a ``data:image/png;base64,...`` URI."""
    from PIL import Image

    from takeoff.data.images import picture, png_data_uri

    image = picture(pixels, side).convert("RGBA")
    size = image.size
    heat = np.zeros((saliency.shape[0], saliency.shape[1], 4), dtype=np.uint8)
    heat[..., 0], heat[..., 1], heat[..., 2] = 239, 68, 68
    heat[..., 3] = np.clip(saliency * 200, 0, 255).astype(np.uint8)
    heat_image = Image.fromarray(heat, mode="RGBA").resize(size, Image.Resampling.BILINEAR)
    return png_data_uri(Image.alpha_composite(image, heat_image).convert("RGB"))
