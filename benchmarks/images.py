"""Images: takeoff's image families on the handwritten digits against scikit-learn on raw pixels.

    python benchmarks/images.py [--budget 300] [--json out.json]

Data: ``../shared/datasets/digits/<class>/*.png`` (1,797 images, 32x32 grayscale, 10 classes)
with a fixed stratified 80/20 split (scikit-learn ``train_test_split``, random_state 0; the
split's file lists are hashed and printed so runs compare). Baselines in the same run, on the
same split: an RBF SVC and a logistic regression on the raw 32x32 pixels scaled to 0..1.
takeoff trains ``image-cnn`` (from scratch) and ``image-finetune`` (ImageNet EfficientNet-Lite0,
when its packages are installed), each with the same time budget, from the image folder of the
training split (``flip`` off: digits have a handedness), and each is scored on the test images:
does fine-tuning a pretrained backbone beat training from scratch at equal time?

Also measured: predict throughput of the trained bundle on this machine's CPU, images/s at
batch 1 and batch 64 (decoding from PNG files included, as a served request would).
Goal (from the issue): at least 99% test accuracy.
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


def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    from takeoff.data.sources import read_table

    df = read_table(DATA / "digits")
    train, test = train_test_split(df, test_size=0.2, stratify=df["label"], random_state=0)
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


def takeoff_run(train: pd.DataFrame, test: pd.DataFrame, family: str, budget: float, work: Path) -> dict:
    import takeoff

    folder = work / "train"
    for label, path in zip(train["label"], train["image"]):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / str(label) / Path(path).name)
    started = time.perf_counter()
    model = takeoff.train(folder, target="label", family=family, time_budget=budget, seed=0, out=work / family,
                          config={"models": {family: {"flip": False}}})
    seconds = time.perf_counter() - started
    predicted = model.predict(test[["image"]])
    accuracy = float((np.asarray(predicted).astype(str) == test["label"].astype(str).to_numpy()).mean())
    paths = test["image"].tolist()
    out = {"accuracy": accuracy, "train_seconds": seconds,
           "predict_images_per_s_batch1": throughput(model, paths, 1),
           "predict_images_per_s_batch64": throughput(model, paths, 64)}
    print(json.dumps({f"takeoff {family}": out}), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of training per takeoff family")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("takeoff").setLevel(logging.INFO)
    train, test = split()
    digest = hashlib.sha256("\n".join(sorted(Path(p).name + str(lbl) for p, lbl in zip(test["image"], test["label"]))).encode())
    print(f"split: {len(train)} train / {len(test)} test images; test-set sha256 {digest.hexdigest()[:16]}", flush=True)
    results = baselines(train, test)
    with tempfile.TemporaryDirectory(prefix="takeoff-bench-images-") as work:
        results["takeoff image-cnn"] = takeoff_run(train, test, "image-cnn", args.budget, Path(work))
        from takeoff.models.image_finetune import backbone_problem

        problem = backbone_problem()
        if problem is None:
            results["takeoff image-finetune"] = takeoff_run(train, test, "image-finetune", args.budget, Path(work))
        else:
            print(f"image-finetune not measured: {problem}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"\n{os.cpu_count()} cores; digits test split ({len(test)} images)\n")
    print("| model | test accuracy | train s | predict img/s batch 1 | batch 64 |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        b1 = f"{r['predict_images_per_s_batch1']:.0f}" if "predict_images_per_s_batch1" in r else "—"
        b64 = f"{r['predict_images_per_s_batch64']:.0f}" if "predict_images_per_s_batch64" in r else "—"
        print(f"| {name} | {r['accuracy']:.4f} | {r['train_seconds']:.1f} | {b1} | {b64} |")


if __name__ == "__main__":
    main()
