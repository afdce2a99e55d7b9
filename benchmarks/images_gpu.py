"""Image training throughput: takeoff's real input pipeline against the same network on
synthetic tensors already on the device (the ceiling), in the same run.

    python benchmarks/images_gpu.py [--device auto] [--images 4096] [--compile] [--json out.json]
    python benchmarks/images_gpu.py --quick        # a CPU check that every path runs

Two models, as in the images issue:

- ``image-cnn`` on 32x32 images: the digits (``../shared/datasets/digits``, PNG, grayscale),
  repeated to ``--images`` files on disk; batch 512.
- ``image-finetune`` at 224x224: ResNet-50 from timm (``timm:resnet50``, randomly initialised
  weights written to a file: throughput does not depend on their values) or, without timm,
  EfficientNet-Lite0; colour JPEGs of 256x256 made from the digits; batch 256.

For each: decoding (takeoff's feature pipeline reading the files into its uint8 cache,
images/s), then training images/s of ``Family.fit`` with fixed epochs and no validation — the
cached pixels on the device, augmentation there, bf16 autocast and channels_last on CUDA,
``torch.compile`` with ``--compile`` — timed per epoch, the first (start-up, compilation) left
out. The ceiling: the same network (built from the
fitted spec), the same batch size, optimizer and precision, on random pixels already on the
device, timed over ``--seconds``. Goal (images issue): the real pipeline at >= 80% of the
compiled synthetic ceiling on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def make_folder(root: Path, count: int, size: int | None) -> Path:
    """``count`` labelled images from the digits: the PNGs as they are (``size`` None), or colour
    JPEGs of ``size`` x ``size`` (upscaled, tinted per file)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    sources = sorted((DATA / "digits").glob("*/*.png"))
    sources = [sources[i] for i in rng.permutation(len(sources))]  # every class among the first few
    for i in range(count):
        src = sources[i % len(sources)]
        folder = root / src.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        if size is None:
            shutil.copy(src, folder / f"{i:06d}.png")
            continue
        grey = np.asarray(Image.open(src).convert("L").resize((size, size), Image.BILINEAR), dtype=np.float32)
        tint = rng.uniform(0.4, 1.0, 3)
        rgb = np.clip(grey[..., None] * tint + rng.normal(0, 8, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(folder / f"{i:06d}.jpg", quality=90)
    return root


def decode(folder: Path, image_size: int):
    """(task, features, targets, images/s) of the folder through takeoff's feature pipeline."""
    from takeoff.data.conform import conform
    from takeoff.data.schema import infer_schema, infer_task
    from takeoff.data.sources import read_table
    from takeoff.features.pipeline import FeaturePipeline, FeatureParams

    df = read_table(folder)
    schema = infer_schema(df, "label")
    task = infer_task(df["label"], "label")
    frame, _ = conform(df, schema)
    started = time.perf_counter()
    X = FeaturePipeline(schema, FeatureParams(image_size=image_size)).fit(frame).transform(frame)
    rate = len(df) / (time.perf_counter() - started)
    return task, X, task.encode(df["label"]), rate


def fit_rate(family_cls, params: dict, task, X, y, device: str, epochs: int):
    """(training images/s over epochs 2 .. 1 + ``epochs``, the fitted model): one fit with fixed
    epochs, each epoch timed by a callback (the first, with start-up and compilation, left out)."""
    import torch

    from takeoff.models.base import Dataset
    from takeoff.training.callbacks import Callback
    from takeoff.training.context import FitContext

    class EpochTimer(Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def _now(self) -> float:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            return time.perf_counter()

        def on_epoch_begin(self, trainer, epoch: int) -> None:
            self.started = self._now()

        def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
            self.seconds.append(self._now() - self.started)

    timer = EpochTimer()
    model = family_cls(task, {**params, "epochs": 1 + epochs})
    model.callbacks.append(timer)
    model.fit(Dataset(X, y), None, FitContext(seed=0, progress=False, device=device))
    return len(y) * len(timer.seconds[1:]) / sum(timer.seconds[1:]), model


def ceiling(model, batch_size: int, device, compile_: bool, seconds: float) -> float:
    """Training images/s of ``model``'s network on random pixels already on ``device``."""
    import torch

    from takeoff.training.device import autocast_context

    spec = model.spec
    net = type(model)._network(spec).to(device).train()
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    step_net = torch.compile(net) if compile_ and device.type == "cuda" else net
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True if device.type == "cuda" else None)
    pixels = torch.randint(0, 256, (batch_size, spec["channels"], spec["size"], spec["size"]), dtype=torch.uint8, device=device)
    numeric = torch.zeros((batch_size, 0), device=device)
    categorical = torch.zeros((batch_size, 0), dtype=torch.int64, device=device)
    target = torch.randint(0, spec["n_outputs"], (batch_size,), device=device)

    def step():
        with autocast_context(device):
            loss = torch.nn.functional.cross_entropy(step_net(pixels, numeric, categorical).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        done += batch_size
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=4096, help="files per model on disk")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one untimed)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timing of each synthetic ceiling")
    parser.add_argument("--compile", action="store_true", help="torch.compile on both sides")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a check that the paths run (CPU)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from takeoff.models.image_cnn import ImageCNNFamily
    from takeoff.models.image_finetune import ImageFinetuneFamily
    from takeoff.training.device import resolve_device

    device = resolve_device(args.device)
    count = 96 if args.quick else args.images
    epochs = 1 if args.quick else args.epochs
    seconds = 2.0 if args.quick else args.seconds
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    common = {"compile": args.compile, "patience": 1000}
    rows = []
    with tempfile.TemporaryDirectory(prefix="takeoff-bench-images-") as work:
        work = Path(work)
        try:
            import timm  # noqa: F401
            from safetensors.torch import save_file

            weights = work / "resnet50.safetensors"
            save_file({k: v.contiguous() for k, v in timm.create_model("resnet50", pretrained=False).state_dict().items()},
                      str(weights))
            big = ("ResNet-50 (timm)", {"backbone": "timm:resnet50", "weights": str(weights)})
        except ImportError:
            big = ("EfficientNet-Lite0 (timm not installed)", {})
        size = 64 if args.quick else 224
        plans = [
            ("image-cnn", "32x32 PNG", ImageCNNFamily, make_folder(work / "png", count, None), 32,
             {**common, "batch_size": 64 if args.quick else 512}),
            (f"image-finetune {big[0]}", f"{size}x{size} JPEG", ImageFinetuneFamily,
             make_folder(work / "jpeg", count, size + size // 7), size,
             {**common, **big[1], "input_size": size, "freeze_epochs": 0, "batch_size": 32 if args.quick else 256}),
        ]
        for label, images, family, folder, image_size, params in plans:
            task, X, y, decode_rate = decode(folder, image_size)
            real, model = fit_rate(family, params, task, X, y, str(device), epochs)
            top = ceiling(model, params["batch_size"], device, args.compile, seconds)
            rows.append({"model": label, "images": images, "decode_per_s": decode_rate, "train_per_s": real,
                         "ceiling_per_s": top, "share": real / top})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{count:,} images per model, batch as set, {'compiled' if args.compile else 'eager'}, on {name}; "
          f"torch {torch.__version__}\n")
    print("| model | images on disk | decode img/s | train img/s (real pipeline) | synthetic ceiling img/s | real / ceiling |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['images']} | {r['decode_per_s']:,.0f} | {r['train_per_s']:,.0f} | "
              f"{r['ceiling_per_s']:,.0f} | {r['share']:.0%} |")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "compile": args.compile, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
