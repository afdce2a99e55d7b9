"""Tiny real-ish tasks for the family contract: the credit-risk table shipped with takeoff, a
text column written from its rows for the families that read text, and drawn pictures for
those that read images. Each task is ``(task, train, valid)``: features of 320 + 80 rows."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from takeoff.data.conform import conform
from takeoff.data.schema import Task, infer_schema, infer_task
from takeoff.errors import MissingDependencyError
from takeoff.features.pipeline import FeaturePipeline
from takeoff.models.base import Dataset

Split = tuple[Task, Dataset, Dataset]
ROWS = 400
TRAIN_SHARE = 0.8


def split(df: pd.DataFrame, target: str, kind: str | None = None) -> Split:
    """``df`` as a task on ``target``: its features fitted on all rows, the first 80% to train,
    the rest to validate."""
    schema = infer_schema(df, target)
    task = infer_task(df[target], target, kind)
    frame, _ = conform(df, schema)
    features = FeaturePipeline(schema).fit(frame).transform(frame)
    y = task.encode(df[target])
    cut = int(len(df) * TRAIN_SHARE)
    train = Dataset(features.take(np.arange(cut)), y[:cut])
    return task, train, Dataset(features.take(np.arange(cut, len(df))), y[cut:])


def credit(rows: int = ROWS, seed: int = 1) -> pd.DataFrame:
    """A seeded sample of the credit-risk table (target ``Status``, good/bad)."""
    table = pd.read_csv(Path(str(files("takeoff") / "resources" / "credit_risk.csv")))
    return table.sample(rows, random_state=seed).reset_index(drop=True)


def table_tasks() -> dict[str, Split]:
    """Binary ``Status``, multiclass ``Home``, multilabel flags read off three columns (which
    then leave the inputs), regression ``Amount``."""
    sample = credit()
    multi = sample.copy()
    multi["Home"] = multi["Home"].fillna("other")
    labels = sample.copy()
    labels["flags"] = ["|".join(x for x in ("bad" if s == "bad" else "", "records" if r == "yes" else "",
                                            "owner" if h == "owner" else "") if x)
                       for s, r, h in zip(labels["Status"], labels["Records"], labels["Home"])]
    return {
        "binary": split(sample, "Status"),
        "multiclass": split(multi, "Home", "multiclass"),
        "multilabel": split(labels.drop(columns=["Status", "Records", "Home"]), "flags", "multilabel"),
        "regression": split(sample, "Amount", "regression"),
    }


def text_tasks() -> dict[str, Split]:
    """The credit rows told as a sentence (column ``note``) beside two numbers."""
    sample = credit()
    sample["note"] = [f"{job} job, {'no ' if records == 'no' else ''}past records, {home} home, "
                      f"{marital}, asks {amount} over {time} months"
                      for job, records, home, marital, amount, time in zip(
                          sample["Job"].fillna("unknown"), sample["Records"], sample["Home"].fillna("other"),
                          sample["Marital"].fillna("unknown"), sample["Amount"], sample["Time"])]
    base = sample[["note", "Age", "Income"]]
    labels = ["|".join(x for x in ("bad" if s == "bad" else "", "records" if r == "yes" else "") if x)
              for s, r in zip(sample["Status"], sample["Records"])]
    return {
        "binary": split(base.assign(Status=sample["Status"]), "Status"),
        "multiclass": split(base.assign(Home=sample["Home"].fillna("other")), "Home", "multiclass"),
        "multilabel": split(base.assign(flags=labels), "flags", "multilabel"),
        "regression": split(base.assign(Amount=sample["Amount"]), "Amount", "regression"),
    }


def image_tasks(directory: Path, rows: int = 120, seed: int = 0) -> dict[str, Split]:
    """Drawn 16×16 pictures (a horizontal bar, a vertical bar or a diagonal, with noise) in
    ``directory``, with a number beside them; the target is the shape.

    Raises:
        MissingDependencyError: Pillow is not installed (``takeoff[image]``).
    """
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError("pillow", "the drawn pictures of the image families' contract", extra="image") from None
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shapes = rng.integers(0, 3, size=rows)
    paths = []
    for i, shape in enumerate(shapes):
        pixels = rng.integers(0, 60, size=(16, 16)).astype(np.uint8)
        at = rng.integers(3, 13)
        if shape == 0:
            pixels[at - 1:at + 2, :] = 230
        elif shape == 1:
            pixels[:, at - 1:at + 2] = 230
        else:
            pixels[np.arange(16), np.arange(16)] = 230
        path = directory / f"picture-{i:03d}.png"
        Image.fromarray(pixels, mode="L").convert("RGB").save(path)
        paths.append(str(path))
    df = pd.DataFrame({"image": paths, "shape": np.array(["flat", "upright", "slanted"])[shapes]})
    df["x"] = rng.normal(size=rows)
    df["value"] = shapes + df["x"]
    df["corners"] = np.where(shapes == 2, "slanted|corner", np.where(shapes == 0, "flat", "upright"))
    return {
        "binary": split(df[shapes != 2][["image", "x", "shape"]].reset_index(drop=True), "shape"),
        "multiclass": split(df[["image", "x", "shape"]], "shape", "multiclass"),
        "multilabel": split(df[["image", "x", "corners"]], "corners", "multilabel"),
        "regression": split(df[["image", "x", "value"]], "value", "regression"),
    }


def tasks_for(cls, directory: Path) -> dict[str, Split]:
    """The tiny tasks that suit family ``cls``: images, text or a plain table."""
    if cls.needs_images:
        return image_tasks(directory / "pictures")
    if cls.needs_text:
        return text_tasks()
    return table_tasks()
