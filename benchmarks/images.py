"""Images: takeoff on the handwritten digits: `auto`, and image-cnn with and without test-time
augmentation, from one seed and from two, against scikit-learn on raw pixels.

    nice python benchmarks/images.py [--budget 600] [--variant-budget 150] [--json out.json]

Data: ``../shared/datasets/digits/<class>/*.png`` (1,797 images, 32x32 grayscale, 10 classes)
with a fixed stratified 75/25 split (scikit-learn ``train_test_split``, random_state 0: 1,347
train / 450 test images; the test file names are hashed and printed so runs compare).

Measured, each scored on the test images:

* baselines: an RBF SVC and a logistic regression on the raw 32x32 pixels scaled to 0..1;
* takeoff ``auto`` with ``--budget`` seconds from the image folder of the training split,
  defaults otherwise (the families and the configurations ``auto`` tries are its own);
* image-cnn variants: two models trained with ``--family image-cnn`` and ``--variant-budget``
  seconds each (default: a quarter of ``--budget``, what ``auto`` gives each of its four image
  configurations), from seed offsets 0 and 1. Each is scored with test-time augmentation off
  (``tta: 1``) and on (``--tta`` views); "2 seeds" averages the two models' probabilities.

Also measured: predict throughput of the seed-0 bundle, images/s at batch 64 from PNG paths
(decoding included), with TTA off and on: what the views cost. Goal (issue 20): ≥ 0.99 test
accuracy. Timings are wall-clock on whatever else runs on the machine: say so when reporting.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def split(test_size: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    from takeoff.data.sources import read_table

    df = read_table(DATA / "digits")
    train, test = train_test_split(df, test_size=test_size, stratify=df["label"], random_state=0)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def pixels(paths: pd.Series) -> np.ndarray:
    from takeoff.data.images import decode_many

    return decode_many(list(paths), 32, 1).pixels.reshape(len(paths), -1).astype(np.float64) / 255.0


def baselines(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    Xtr, Xte = pixels(train["image"]), pixels(test["image"])
    out = {}
    for name, model in (("SVC (rbf) on raw pixels", SVC()),
                        ("logistic regression on raw pixels", LogisticRegression(max_iter=2000))):
        started = time.perf_counter()
        model.fit(Xtr, train["label"])
        seconds = time.perf_counter() - started
        out[name] = {"accuracy": float((model.predict(Xte) == test["label"]).mean()), "train_seconds": seconds}
        print(json.dumps({name: out[name]}), flush=True)
    return out


def throughput(model, paths: list[str], batch: int, seconds: float = 5.0) -> float:
    """Images per second of ``model.predict`` on PNG paths, ``batch`` at a time."""
    frames = [pd.DataFrame({"image": paths[a:a + batch]}) for a in range(0, len(paths) - batch + 1, batch)]
    model.predict(frames[0])  # warm-up
    done, started, i = 0, time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        model.predict(frames[i % len(frames)])
        done += batch
        i += 1
    return done / (time.perf_counter() - started)


def folder_of(train: pd.DataFrame, work: Path) -> Path:
    folder = work / "train"
    for label, path in zip(train["label"], train["image"]):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / str(label) / Path(path).name)
    return folder


def accuracy(proba: pd.DataFrame, test: pd.DataFrame) -> float:
    predicted = proba.columns.to_numpy()[proba.to_numpy().argmax(axis=1)]
    return float((predicted.astype(str) == test["label"].astype(str).to_numpy()).mean())


def set_tta(model, views: int) -> None:
    """Predict with ``views`` test-time views from now on (the members' own parameter)."""
    for member in model.blend.members:
        if hasattr(member.params, "tta"):
            member.params.tta = views


def auto_run(folder: Path, test: pd.DataFrame, budget: float, work: Path) -> dict:
    import takeoff

    started = time.perf_counter()
    model = takeoff.train(folder, target="label", time_budget=budget, seed=0, out=work / "auto")
    seconds = time.perf_counter() - started
    out = {"accuracy": accuracy(model.predict_proba(test[["image"]]), test), "train_seconds": seconds,
           "members": [m["family"] for m in model.manifest["members"]],
           "member_scores": model.manifest.get("member_scores"),
           "tta": [getattr(m.params, "tta", None) for m in model.blend.members]}
    print(json.dumps({"takeoff auto": out}), flush=True)
    return out


def variants(folder: Path, test: pd.DataFrame, budget: float, views: int, work: Path) -> dict[str, dict]:
    """image-cnn from seed offsets 0 and 1, each scored with TTA off and on, and averaged."""
    import takeoff

    models, seconds, probas = [], [], {}
    for offset in (0, 1):
        started = time.perf_counter()
        models.append(takeoff.train(folder, target="label", family="image-cnn", time_budget=budget, seed=0,
                                    out=work / f"cnn-{offset}",
                                    config={"models": {"image-cnn": {"seed_offset": offset, "tta": 1}}}))
        seconds.append(time.perf_counter() - started)
        for tta in (1, views):
            set_tta(models[-1], tta)
            probas[offset, tta] = models[-1].predict_proba(test[["image"]])
    out = {}
    for tta in (1, views):
        label = "TTA off" if tta == 1 else f"TTA {tta} views"
        out[f"image-cnn, 1 seed, {label}"] = {"accuracy": accuracy(probas[0, tta], test), "train_seconds": seconds[0]}
        out[f"image-cnn, seed offset 1 alone, {label}"] = {"accuracy": accuracy(probas[1, tta], test),
                                                           "train_seconds": seconds[1]}
        mean = (probas[0, tta] + probas[1, tta]) / 2
        out[f"image-cnn, 2 seeds averaged, {label}"] = {"accuracy": accuracy(mean, test), "train_seconds": sum(seconds)}
    paths = test["image"].tolist()
    for tta in (1, views):
        set_tta(models[0], tta)
        key = f"image-cnn, 1 seed, {'TTA off' if tta == 1 else f'TTA {tta} views'}"
        out[key]["predict_images_per_s_batch64"] = throughput(models[0], paths, 64)
    for name, result in out.items():
        print(json.dumps({name: result}), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training for takeoff auto")
    parser.add_argument("--variant-budget", type=float, help="seconds per image-cnn variant (default: budget / 4)")
    parser.add_argument("--tta", type=int, default=5, help="test-time views of the 'TTA on' variants")
    parser.add_argument("--test-size", type=float, default=0.25, help="share of the images held out for testing")
    parser.add_argument("--skip-auto", action="store_true", help="measure the variants only")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("takeoff").setLevel(logging.INFO)
    train, test = split(args.test_size)
    digest = hashlib.sha256("\n".join(sorted(Path(p).name + str(lbl) for p, lbl in zip(test["image"], test["label"]))).encode())
    print(f"split: {len(train)} train / {len(test)} test images; test-set sha256 {digest.hexdigest()[:16]}", flush=True)
    results = baselines(train, test)
    with tempfile.TemporaryDirectory(prefix="takeoff-bench-images-") as work:
        folder = folder_of(train, Path(work))
        if not args.skip_auto:
            results["takeoff auto"] = auto_run(folder, test, args.budget, Path(work))
        results |= variants(folder, test, args.variant_budget or args.budget / 4, args.tta, Path(work))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    auto = "" if args.skip_auto else f"auto budget {args.budget:g}s, "
    print(f"\n{os.cpu_count()} cores; digits test split ({len(test)} images); {auto}"
          f"variants {args.variant_budget or args.budget / 4:g}s each\n")
    print("| model | test accuracy | train s | predict img/s, batch 64 |")
    print("|---|---|---|---|")
    for name, r in results.items():
        b64 = f"{r['predict_images_per_s_batch64']:.0f}" if "predict_images_per_s_batch64" in r else "—"
        print(f"| {name} | {r['accuracy']:.4f} | {r['train_seconds']:.1f} | {b64} |")


if __name__ == "__main__":
    main()
