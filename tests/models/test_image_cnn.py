"""image-cnn end to end on real handwritten digits: a class-folder tree with bad files in it,
trained, saved as a bundle, loaded and used on paths, bytes and arrays."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.data.schema import Task
from takeoff.errors import DataError
from takeoff.models.base import Dataset
from takeoff.training.context import FitContext

pytest.importorskip("PIL")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def digit_folder(datasets, tmp_path_factory):
    """60 real images each of the digits 0, 1 and 7, plus a corrupt JPEG, a text file with an
    image extension and a notes file."""
    root = tmp_path_factory.mktemp("digits")
    for label in ("0", "1", "7"):
        (root / label).mkdir()
        for path in sorted((datasets / "digits" / label).glob("*.png"))[:60]:
            shutil.copy(path, root / label / path.name)
    (root / "1" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    (root / "7" / "fake.png").write_text("not a picture")
    (root / "7" / "README.txt").write_text("scanned in 2024")
    return root


@pytest.fixture(scope="module")
def trained(digit_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits-model"
    model = takeoff.train(digit_folder, family="image-cnn", time_budget=30, seed=0, out=out,
                          config={"models": {"image-cnn": {"width": 12, "flip": False}}, "refit": False})
    return model, out


def test_trains_on_the_folder_and_skips_bad_files(trained):
    model, _ = trained
    assert model.metrics["accuracy"] > 0.8  # chance is 1/3
    assert model.classes == ["0", "1", "7"] or model.classes == [0, 1, 7]
    # broken.jpg and fake.png are listed by the folder but cannot be decoded: skipped, counted
    assert model.manifest["training"]["rows_dropped"] == 2
    assert model.manifest["training"]["rows_train"] + model.manifest["training"]["rows_valid"] == 180


def test_bundle_round_trip_predicts_paths_bytes_and_arrays(trained, digit_folder):
    model, out = trained
    loaded = takeoff.load(out)
    paths = [str(digit_folder / d / sorted(p.name for p in (digit_folder / d).glob("0*.png"))[-1]) for d in ("0", "1", "7")]
    by_path = loaded.predict(pd.DataFrame({"image": paths}))
    assert by_path.tolist() == model.predict(pd.DataFrame({"image": paths})).tolist()
    from PIL import Image

    raw = [open(p, "rb").read() for p in paths]
    arrays = [np.asarray(Image.open(p)) for p in paths]
    for values in (raw, arrays):
        again = loaded.predict(pd.DataFrame({"image": pd.Series(values, dtype=object)}))
        assert again.tolist() == by_path.tolist()
    proba = loaded.predict_proba(pd.DataFrame({"image": paths}))
    assert np.allclose(proba.to_numpy(dtype=float).sum(axis=1), 1.0, atol=1e-5)


def test_predict_names_the_row_of_an_unreadable_image(trained, digit_folder):
    model, _ = trained
    rows = pd.DataFrame({"image": [str(digit_folder / "0" / "missing.png"), str(digit_folder / "7" / "fake.png")]})
    with pytest.raises(DataError, match=r"image column 'image': 2 image\(s\).*row 0: file .*missing.png does not exist"):
        model.predict(rows)


def test_fuses_other_columns_and_learns_a_regression(datasets):
    """A table of image + a numeric column, regression target: both inputs reach the head."""
    from takeoff.data.conform import conform
    from takeoff.data.schema import infer_schema
    from takeoff.features.pipeline import FeaturePipeline
    from takeoff.models.image_cnn import ImageCNNFamily

    paths = sorted((datasets / "digits" / "3").glob("*.png"))[:40] + sorted((datasets / "digits" / "8").glob("*.png"))[:40]
    rng = np.random.default_rng(0)
    extra = rng.normal(size=len(paths))
    df = pd.DataFrame({"image": [str(p) for p in paths], "x": extra})
    y = np.where(np.arange(len(paths)) < 40, 0.0, 1.0) + 2.0 * extra
    schema = infer_schema(df)
    frame, _ = conform(df, schema)
    X = FeaturePipeline(schema).fit(frame).transform(frame)
    family = ImageCNNFamily(Task("regression", "y"), {"width": 8, "epochs": 25, "flip": False})
    family.fit(Dataset(X, y), None, FitContext(deadline=time.monotonic() + 60))
    pred = family.predict(X)
    r2 = 1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert r2 > 0.5, r2


def test_a_table_without_images_is_refused_with_the_fix(credit_small):
    with pytest.raises(DataError, match="needs an image column"):
        takeoff.train(credit_small.head(200), target="Status", family="image-cnn", time_budget=10)


def test_copies_across_training_and_validation_are_reported(datasets, tmp_path):
    """Every image saved twice under two names: the random split puts copies on both sides."""
    for label in ("4", "6"):
        (tmp_path / label).mkdir()
        for path in sorted((datasets / "digits" / label).glob("*.png"))[:20]:
            shutil.copy(path, tmp_path / label / path.name)
            shutil.copy(path, tmp_path / label / f"again-{path.name}")
    model = takeoff.train(tmp_path, family="image-cnn", time_budget=10, seed=0, out=tmp_path / "m",
                          config={"models": {"image-cnn": {"width": 8, "max_epochs": 2}}, "refit": False})
    found = [f for f in model.manifest["findings"] if f["check"] == "duplicate_image_across_splits"]
    assert len(found) == 1 and found[0]["column"] == "image"
    valid = model.manifest["training"]["rows_valid"]
    assert 0 < found[0]["count"] <= valid
    assert any(f["check"] == "duplicate_image" and f["count"] == 40 for f in model.manifest["findings"])


def test_reports_show_the_most_confident_mistakes_as_images(trained, digit_folder, tmp_path):
    import re

    model, out = trained
    html = (out / "report.html").read_text()
    n_valid = model.manifest["training"]["rows_valid"]
    n_wrong = round((1 - model.metrics["accuracy"]) * n_valid)
    if n_wrong:
        assert "Most confident mistakes" in html
        thumbs = re.findall(r'<figure class="thumb"><img alt="actual (\w+) · predicted (\w+) \((\d+)%\)" src="data:image/png;base64,', html)
        assert len(thumbs) == min(12, n_wrong)
        assert all(a != b for a, b, _ in thumbs)
        assert [int(c) for _, _, c in thumbs] == sorted((int(c) for _, _, c in thumbs), reverse=True)
    else:
        assert "Every evaluated image is classified correctly" in html
    # evaluate on a table whose labels are deliberately wrong: every row is a mistake to show
    paths = [str(p) for d in ("0", "1") for p in sorted((digit_folder / d).glob("*.png"))[:4]]
    table = pd.DataFrame({"image": paths, "label": ["7"] * len(paths)})
    report = tmp_path / "eval.html"
    model.evaluate(table, report=report)
    thumbs = re.findall(r'<figure class="thumb"><img alt="actual 7 · predicted (\w+)', report.read_text())
    predicted = [str(v) for v in model.predict(table[["image"]])]
    assert len(thumbs) == sum(p != "7" for p in predicted)


def _interrupt_at(epoch: int):
    """A callback that presses Ctrl-C in the second batch of ``epoch`` (after the checkpoint of the one before)."""
    from takeoff.training.callbacks import Callback

    class InterruptAt(Callback):
        def on_batch_end(self, trainer, step, loss):
            if trainer.epoch == epoch and step == 1:
                raise KeyboardInterrupt

    return InterruptAt()


def test_an_interrupted_fit_resumes_from_its_checkpoint(datasets, tmp_path, caplog):
    import logging

    from takeoff.data.conform import conform
    from takeoff.data.schema import infer_schema
    from takeoff.features.pipeline import FeaturePipeline
    from takeoff.models.image_cnn import ImageCNNFamily

    paths = sorted((datasets / "digits" / "2").glob("*.png"))[:40] + sorted((datasets / "digits" / "5").glob("*.png"))[:40]
    df = pd.DataFrame({"image": [str(p) for p in paths]})
    schema = infer_schema(df)
    frame, _ = conform(df, schema)
    X = FeaturePipeline(schema).fit(frame).transform(frame)
    y = np.repeat([0, 1], 40)
    train, valid = Dataset(X.take(np.arange(0, 80, 2)), y[::2]), Dataset(X.take(np.arange(1, 80, 2)), y[1::2])
    task, params = Task("binary", "label", [0, 1]), {"width": 8, "max_epochs": 6, "patience": 50, "flip": False, "batch_size": 16}

    def ctx(folder, seed=0, warn=None):
        return FitContext(deadline=time.monotonic() + 120, seed=seed, checkpoint_dir=tmp_path / folder,
                          **({"warn": warn} if warn else {}))

    full = ImageCNNFamily(task, params)
    full_report = full.fit(train, valid, ctx("full"))
    cut = ImageCNNFamily(task, params)
    cut.callbacks.append(_interrupt_at(3))
    with pytest.raises(KeyboardInterrupt):
        cut.fit(train, valid, ctx("cut"))
    resumed = ImageCNNFamily(task, params)
    with caplog.at_level(logging.INFO, logger="takeoff"):
        report = resumed.fit(train, valid, ctx("cut"))
    assert "continuing the interrupted fit from epoch 3" in caplog.text
    # the schedule, the augmentation's random draws and early stopping continue where they were
    assert report.history == full_report.history
    np.testing.assert_allclose(resumed.predict(valid.X), full.predict(valid.X), atol=1e-6)
    warnings: list[str] = []
    ImageCNNFamily(task, params).fit(train, valid, ctx("cut", seed=1, warn=warnings.append))
    assert any("another fit" in w for w in warnings)


def test_mixup_and_cutmix_mix_images_and_labels_by_the_same_share():
    import torch

    from takeoff.models.image_cnn import mix_batch
    from takeoff.training.tensors import TensorSet

    torch.manual_seed(0)
    # eight 16x16 images, each one flat grey level and its own class: a pixel tells whose it is
    levels = torch.arange(8, dtype=torch.float32) * 30
    pixels = levels.to(torch.uint8).view(8, 1, 1, 1).expand(8, 1, 16, 16).contiguous()
    batch = TensorSet((pixels, torch.zeros(8, 0)), torch.arange(8))
    for _ in range(5):
        # cutmix: each pixel comes whole from one image; a label's share = its image's pixel share
        x, target = (lambda out: (out.inputs[0], out.target))(mix_batch(0.0, 1.0, n_classes=8)(batch))
        share = (x.view(8, 1, -1) == levels.view(1, 8, 1)).float().mean(dim=2)  # (row, image)
        assert torch.allclose(share, target, atol=1e-6) and torch.allclose(target.sum(1), torch.ones(8))
        # mixup: each image a blend of two, evenly; the labels blended by the same share
        x, target = (lambda out: (out.inputs[0], out.target))(mix_batch(0.4, 0.0, n_classes=8)(batch))
        assert torch.allclose(x, x[:, :, :1, :1].expand_as(x))
        assert torch.allclose(x[:, 0, 0, 0], target @ levels, atol=1e-3)
        assert torch.allclose(target.sum(1), torch.ones(8)) and ((target > 0).sum(1) <= 2).all()
    multilabel = TensorSet((pixels, torch.zeros(8, 0)), torch.eye(8)[:, :3])
    soft = mix_batch(0.4, 1.0, n_classes=None)(multilabel).target
    assert soft.shape == (8, 3) and ((soft >= 0) & (soft <= 1)).all()


def test_mixup_and_cutmix_train_on_digits_and_are_refused_for_regression(digit_folder, datasets, tmp_path):
    from takeoff.errors import ConfigError

    model = takeoff.train(digit_folder, family="image-cnn", time_budget=25, seed=0, out=tmp_path / "mixed",
                          config={"models": {"image-cnn": {"width": 12, "flip": False, "mixup": 0.2, "cutmix": 1.0}},
                                  "refit": False})
    assert model.metrics["accuracy"] > 0.8  # chance is 1/3
    from takeoff.features.block import Features
    from takeoff.models.image_cnn import ImageCNNFamily

    X = Features(np.zeros((4, 0), np.float32), np.zeros((4, 0), np.int64), [], [], [], [],
                 images={"image": np.zeros((4, 1, 8, 8), np.uint8)})
    family = ImageCNNFamily(Task("regression", "y"), {"mixup": 0.2})
    with pytest.raises(ConfigError, match="mixup and cutmix mix labels.*set both to 0"):
        family.fit(Dataset(X, np.arange(4.0)), None, FitContext(seed=0, progress=False, device="cpu"))


@pytest.fixture(scope="module")
def small_digits(datasets):
    """60 real digits (0, 3, 8) as features, with class codes."""
    from takeoff.data.conform import conform
    from takeoff.data.schema import infer_schema
    from takeoff.features.pipeline import FeaturePipeline

    paths = [p for d in ("0", "3", "8") for p in sorted((datasets / "digits" / d).glob("*.png"))[:20]]
    df = pd.DataFrame({"image": [str(p) for p in paths]})
    schema = infer_schema(df)
    frame, _ = conform(df, schema)
    return FeaturePipeline(schema).fit(frame).transform(frame), np.repeat([0, 1, 2], 20)


def _with_images(X, pixels):
    import dataclasses

    return dataclasses.replace(X, images={"image": np.ascontiguousarray(pixels)})


def test_a_view_shifts_by_whole_pixels_and_zooms_on_the_centre():
    """A shift of 1/16 of a 32 px side is the image moved 2 px (edges repeated), computed here
    with numpy; a zoom below 1 magnifies about the centre."""
    import torch
    import torch.nn.functional as F

    from takeoff.models.image_cnn import view_thetas

    pixels = np.random.default_rng(0).integers(0, 256, size=(2, 1, 32, 32)).astype(np.float32)
    views = [(1.0, 0.0, 0.0), (1.0, 1 / 16, 0.0), (1.0, 0.0, -1 / 16), (0.5, 0.0, 0.0)]
    x = torch.from_numpy(pixels).repeat(len(views), 1, 1, 1)
    theta = view_thetas(views).repeat_interleave(2, dim=0)
    out = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), mode="bilinear",
                        padding_mode="border", align_corners=False).view(len(views), 2, 1, 32, 32).numpy()
    padded = np.pad(pixels, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    np.testing.assert_allclose(out[0], pixels, atol=1e-3)
    np.testing.assert_allclose(out[1], padded[:, :, 2:34, 0:32], atol=1e-3)  # content moved 2 px right
    np.testing.assert_allclose(out[2], padded[:, :, 4:36, 2:34], atol=1e-3)  # and 2 px up
    # twice magnified about the centre: on an image whose value is its column, output column j
    # samples the input at column 15.5 + (j - 15.5) / 2
    ramp = torch.arange(32.0).repeat(1, 1, 32, 1)  # (1, 1, 32, 32)
    theta = view_thetas([(0.5, 0.0, 0.0)])
    zoomed = F.grid_sample(ramp, F.affine_grid(theta, [1, 1, 32, 32], align_corners=False), mode="bilinear",
                           padding_mode="border", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(zoomed, np.tile(15.5 + (np.arange(32) - 15.5) / 2, (32, 1)), atol=1e-4)


@pytest.mark.parametrize("kind", ["multiclass", "multilabel", "regression"])
def test_test_time_augmentation_averages_the_views(small_digits, kind, tmp_path):
    """tta=4 predicts the mean over the first four views, each predicted on its own (of the
    probabilities for classes and labels, of the values for regression); the bundle keeps it."""
    import torch
    import torch.nn.functional as F

    from takeoff.models.image_cnn import VIEWS, ImageCNNFamily, view_thetas

    X, codes = small_digits
    task, y = {
        "multiclass": (Task("multiclass", "label", [0, 3, 8]), codes),
        "multilabel": (Task("multilabel", ["round", "eight"], ["round", "eight"]),
                       np.stack([codes != 1, codes == 2], axis=1).astype(np.float32)),
        "regression": (Task("regression", "y"), codes.astype(np.float64) * 2.5),
    }[kind]
    family = ImageCNNFamily(task, {"width": 8, "epochs": 2, "flip": False, "tta": 1})
    family.fit(Dataset(X, y), None, FitContext(seed=0, progress=False, device="cpu"))
    pixels = torch.from_numpy(X.images["image"]).float()
    views = []
    for k in range(4):
        theta = view_thetas(VIEWS[k:k + 1]).expand(len(pixels), 2, 3)
        moved = F.grid_sample(pixels, F.affine_grid(theta, list(pixels.shape), align_corners=False), mode="bilinear",
                              padding_mode="border", align_corners=False)
        views.append(family.predict(_with_images(X, moved.numpy())))
    assert not np.allclose(views[1], views[0], atol=1e-4)  # the views do reach the network
    family.params.tta = 4
    averaged = family.predict(X)
    np.testing.assert_allclose(averaged, np.mean(views, axis=0), atol=2e-5)
    assert averaged.shape == views[0].shape and averaged.dtype == np.float32
    if kind == "multiclass":
        np.testing.assert_allclose(averaged.sum(axis=1), 1.0, atol=1e-5)
    family.save(tmp_path)
    again = ImageCNNFamily.load(tmp_path, task, family.params.model_dump())
    np.testing.assert_allclose(again.predict(X), averaged, atol=1e-6)


def test_seed_offset_is_another_seed_and_the_portfolio_holds_it(small_digits):
    from takeoff.models.image_cnn import ImageCNNFamily

    X, y = small_digits
    task = Task("multiclass", "label", [0, 3, 8])

    def fitted(offset: int, seed: int) -> np.ndarray:
        family = ImageCNNFamily(task, {"width": 8, "epochs": 1, "seed_offset": offset, "tta": 1})
        family.fit(Dataset(X, y), None, FitContext(seed=seed, progress=False, device="cpu"))
        return family.predict(X)

    shifted = fitted(1, 0)
    np.testing.assert_allclose(shifted, fitted(0, 1), atol=1e-6)  # run seed 0 + 1 is run seed 1
    assert not np.allclose(shifted, fitted(0, 0), atol=1e-3)
    assert any(entry.get("seed_offset") == 1 for entry in ImageCNNFamily.portfolio)
    for entry in ImageCNNFamily.portfolio:
        ImageCNNFamily.Params(**entry)
