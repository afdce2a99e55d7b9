"""The trainer, its callbacks, and the device helpers."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from takeoff.errors import ConfigError
from takeoff.training.callbacks import (
    Callback,
    ChanceWarning,
    Checkpoint,
    EarlyStopping,
    ProgressBar,
    TimeBudget,
)
from takeoff.training.checkpoint import load_state
from takeoff.training.context import FitContext
from takeoff.training.device import autocast_context, resolve_device, seed_everything
from takeoff.training.loop import Trainer
from takeoff.training.scores import chance_score
from takeoff.training.tensors import TensorSet, steps_per_epoch


class Net(nn.Module):
    """Two inputs (like the MLP), with dropout so the RNG state matters on resume."""

    def __init__(self, width: int = 16, dropout: float = 0.2, d: int = 6):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, width), nn.BatchNorm1d(width), nn.SiLU(), nn.Dropout(dropout))
        self.emb = nn.Embedding(5, 2)
        self.head = nn.Linear(width + 2, 2)

    def forward(self, x, c):
        return self.head(torch.cat([self.body(x), self.emb(c[:, 0])], dim=1))


def _ce(outputs, target, weight):
    return nn.functional.cross_entropy(outputs.float(), target)


def _data(n=300, seed=0, shuffle_labels=False, d=6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    c = torch.randint(0, 5, (n, 1), generator=g)
    y = ((x[:, 0] + 0.5 * x[:, 1] + (c[:, 0] == 2).float()) > 0.3).long()
    if shuffle_labels:
        y = y[torch.randperm(n, generator=g)]
    return TensorSet((x, c), y)


def _trainer(callbacks=(), max_epochs=6, train=None, valid=None, ctx=None, width=16, lr=1e-2, **kwargs):
    seed_everything(0)
    train = train or _data()
    net = Net(width, dropout=0.2 if width <= 16 else 0.0, d=train.inputs[0].shape[1])
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr)
    train = train or _data()
    total = max_epochs * steps_per_epoch(len(train), 64)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total)
    return Trainer(
        net,
        _ce,
        optimizer,
        scheduler,
        train=train,
        valid=valid if valid is not None else _data(120, seed=1),
        batch_size=64,
        max_epochs=max_epochs,
        callbacks=list(callbacks),
        ctx=ctx or FitContext(seed=3, progress=False),
        score_fn=chance_score("binary"),
        **kwargs,
    )


class Interrupt(Callback):
    """Raises KeyboardInterrupt in epoch ``at`` (mid-epoch, or at its end)."""

    def __init__(self, at: int, where: str = "batch"):
        self.at, self.where = at, where

    def on_batch_end(self, trainer, step, loss):
        if self.where == "batch" and trainer.epoch == self.at and step == 2:
            raise KeyboardInterrupt

    def on_epoch_end(self, trainer, epoch, logs):
        if self.where == "epoch_end" and epoch == self.at:
            raise KeyboardInterrupt


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("where, saved_epochs", [("batch", 3), ("epoch_end", 4)])
def test_resume_after_interrupt_gives_the_uninterrupted_weights(tmp_path, where, saved_epochs):
    full = _trainer([EarlyStopping(patience=50), Checkpoint(tmp_path / "full")])
    result = full.fit()
    assert result.epochs == 6 and result.stop_reason == "max"

    interrupted = _trainer([EarlyStopping(patience=50), Checkpoint(tmp_path / "cut"), Interrupt(3, where)])
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert interrupted.stop_reason == "interrupted"
    # the last completed epoch is on disk, never the partial one
    assert load_state(tmp_path / "cut")["epoch"] == saved_epochs

    resumed = _trainer([EarlyStopping(patience=50), Checkpoint(tmp_path / "cut")])
    assert resumed.resume(tmp_path / "cut")
    assert resumed.epoch == saved_epochs
    result2 = resumed.fit()
    assert result2.epochs == 6
    assert result2.history == result.history
    for key, value in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_resume_refuses_a_checkpoint_with_other_meta(tmp_path):
    _trainer([Checkpoint(tmp_path)], max_epochs=1, meta={"data": "a"}).fit()
    assert not _trainer(meta={"data": "b"}).resume(tmp_path)
    assert _trainer(meta={"data": "a"}).resume(tmp_path)


def test_resuming_a_finished_run_does_no_more_epochs(tmp_path):
    first = _trainer([EarlyStopping(patience=1, min_delta=10.0), Checkpoint(tmp_path)], max_epochs=6)
    result = first.fit()
    assert result.stop_reason == "early_stopping" and result.epochs == 2
    again = _trainer([EarlyStopping(patience=1, min_delta=10.0), Checkpoint(tmp_path)], max_epochs=6)
    assert again.resume(tmp_path)
    result2 = again.fit()
    assert result2.stop_reason == "early_stopping" and result2.epochs == 2
    for key, value in first.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[key], value)


class Recorder(Callback):
    def __init__(self):
        self.weights, self.losses = [], []

    def on_epoch_end(self, trainer, epoch, logs):
        self.weights.append(_weights(trainer.model))
        self.losses.append(logs["valid_loss"])


def test_early_stopping_restores_the_best_weights():
    # validation labels are the opposite of training's: the valid loss soon rises
    train = _data()
    valid = _data(120, seed=1)
    valid = TensorSet(valid.inputs, 1 - valid.target)
    recorder = Recorder()
    trainer = _trainer([EarlyStopping(patience=2), recorder], max_epochs=30, train=train, valid=valid)
    result = trainer.fit()
    assert result.stop_reason == "early_stopping"
    best = int(np.argmin(recorder.losses))
    assert best < len(recorder.losses) - 1
    assert trainer.callbacks[0].best_epoch == best + 1
    for key, value in recorder.weights[best].items():
        assert torch.equal(trainer.model.state_dict()[key], value), key


def test_early_stopping_names_missing_logs():
    trainer = _trainer([EarlyStopping(monitor="valid_auc")], max_epochs=1)
    with pytest.raises(ConfigError, match="valid_roc_auc"):
        trainer.fit()


def test_time_budget_is_checked_every_batch():
    big = TensorSet((torch.randn(400_000, 6), torch.zeros(400_000, 1, dtype=torch.long)), torch.zeros(400_000, dtype=torch.long))
    ctx = FitContext(deadline=time.monotonic() + 0.5, seed=0, progress=False)
    start = time.monotonic()
    trainer = _trainer([TimeBudget()], max_epochs=3, train=big, ctx=ctx)
    result = trainer.fit()
    assert time.monotonic() - start < 1.2  # one epoch alone takes several seconds
    assert result.stop_reason == "time_budget"
    assert result.epochs == 0 and trainer.global_step > 0


def test_an_expired_budget_trains_nothing():
    ctx = FitContext(deadline=time.monotonic() - 1, progress=False)
    trainer = _trainer([TimeBudget()], ctx=ctx)
    result = trainer.fit()
    assert result.stop_reason == "time_budget" and trainer.global_step == 0


def _fake_trainer(train_losses, warnings):
    return SimpleNamespace(history={"train_loss": train_losses}, ctx=SimpleNamespace(warn=warnings.append))


def test_chance_warning_rules():
    warnings: list[str] = []
    callback = ChanceWarning()
    logs = {"train_loss": 0.5, "valid_score": 0.51, "valid_chance": 0.5, "valid_chance_band": 0.01, "valid_roc_auc": 0.51}
    callback.on_epoch_end(_fake_trainer([0.7, 0.6], warnings), 1, logs)  # too early
    assert warnings == []
    callback.on_epoch_end(_fake_trainer([0.7, 0.6, 0.5], warnings), 2, {**logs, "valid_score": 0.6})  # signal
    assert warnings == []
    callback.on_epoch_end(_fake_trainer([0.7, 0.69, 0.65], warnings), 2, {**logs, "train_loss": 0.65})  # loss flat
    assert warnings == []
    callback.on_epoch_end(_fake_trainer([0.7, 0.6, 0.5], warnings), 2, logs)
    callback.on_epoch_end(_fake_trainer([0.7, 0.6, 0.5, 0.4], warnings), 3, {**logs, "train_loss": 0.4})
    assert len(warnings) == 1  # once
    assert "ROC-AUC is 0.510" in warnings[0] and "shuffled" in warnings[0]


def test_chance_warning_fires_on_shuffled_labels_only():
    def run(shuffle):
        warnings: list[str] = []
        ctx = FitContext(seed=0, progress=False, warn=warnings.append)
        train = _data(400, seed=0, shuffle_labels=shuffle, d=40)
        valid = _data(400, seed=1, shuffle_labels=shuffle, d=40)
        # a wide net without dropout memorises 400 rows of 40 features quickly
        _trainer([ChanceWarning()], max_epochs=12, train=train, valid=valid, ctx=ctx, width=256).fit()
        return warnings

    assert run(shuffle=False) == []
    warnings = run(shuffle=True)
    assert len(warnings) == 1 and "chance level" in warnings[0]


def test_score_functions_and_auc():
    from sklearn.metrics import r2_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    scores = np.round(rng.normal(size=500) + y, 1)  # with ties

    logits = torch.tensor(np.stack([np.zeros(500), scores], axis=1), dtype=torch.float32)
    logs = chance_score("binary")(logits, torch.tensor(y))
    assert logs["valid_roc_auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-6)
    assert logs["valid_chance"] == 0.5

    classes = torch.tensor([0, 0, 0, 1, 2, 2])
    outputs = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1, 2, 0]), 3).float()
    logs = chance_score("multiclass")(outputs, classes)
    assert logs["valid_accuracy"] == pytest.approx(4 / 6)
    assert logs["valid_balanced_accuracy"] == logs["valid_score"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert logs["valid_chance"] == pytest.approx(1 / 3)
    assert logs["valid_accuracy_chance"] == pytest.approx((3 / 6) ** 2 + (1 / 6) ** 2 + (2 / 6) ** 2)

    target = torch.tensor(rng.normal(size=200))
    pred = target + 0.3 * torch.tensor(rng.normal(size=200))
    logs = chance_score("regression")(pred[:, None].float(), target.float())
    assert logs["valid_r2"] == pytest.approx(r2_score(target.numpy(), pred.numpy()), abs=1e-5)


def test_batches_never_hold_a_single_row():
    assert steps_per_epoch(129, 64) == 2
    assert steps_per_epoch(130, 64) == 3
    trainer = _trainer(max_epochs=1, train=_data(129))
    trainer.fit()  # BatchNorm would fail on a batch of one row
    assert trainer.global_step == 2


def test_progress_bar_is_silent_without_a_terminal(capsys):
    _trainer([ProgressBar()], max_epochs=1, ctx=FitContext(progress=True)).fit()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_bar_draws_on_a_terminal():
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    _trainer([ProgressBar(console=console)], max_epochs=2, ctx=FitContext(progress=True)).fit()
    assert "epoch" in buffer.getvalue()
    buffer2 = io.StringIO()
    quiet = Console(file=buffer2, force_terminal=True)
    _trainer([ProgressBar(console=quiet)], max_epochs=1, ctx=FitContext(progress=False)).fit()
    assert buffer2.getvalue() == ""


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ConfigError, match="valid: auto, cpu, cuda"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match="not valid"):
        resolve_device("cuda:x")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")
    with autocast_context(torch.device("cpu")):
        assert not torch.is_autocast_enabled()


def test_seed_everything_repeats_random_draws():
    seed_everything(5)
    first = (np.random.rand(), torch.rand(3))
    seed_everything(5)
    second = (np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and torch.equal(first[1], second[1])


def test_each_rank_takes_its_own_slice_of_the_epoch():
    """Under torch.distributed every rank draws the same (seed, epoch) permutation and takes
    its own equal slice: no row is seen twice in an epoch; one process sees every row."""
    from takeoff.training.tensors import epoch_order

    whole, bounds = epoch_order(103, 16, seed=7, epoch=2)
    assert sorted(whole.tolist()) == list(range(103)) and bounds[-1][1] == 103
    slices = [epoch_order(103, 16, seed=7, epoch=2, rank=r, world_size=4)[0] for r in range(4)]
    assert [len(s) for s in slices] == [25] * 4  # 103 // 4; the 3 left wait for another epoch
    seen = torch.cat(slices).tolist()
    assert len(set(seen)) == 100 and seen == whole[:100].tolist()
    assert not torch.equal(epoch_order(103, 16, seed=7, epoch=3)[0], whole)  # a new epoch reshuffles


def test_only_rank_zero_writes_checkpoints(tmp_path):
    trainer = _trainer(callbacks=[Checkpoint(tmp_path / "r1")], max_epochs=1)
    trainer.rank = 1  # as under torchrun: the other ranks hold the same state and write nothing
    trainer.fit()
    assert not (tmp_path / "r1").exists() or not any((tmp_path / "r1").iterdir())
    trainer = _trainer(callbacks=[Checkpoint(tmp_path / "r0")], max_epochs=1)
    trainer.fit()
    assert load_state(tmp_path / "r0") is not None


def test_chance_levels_are_those_of_a_guess_that_ignores_the_features():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

    from takeoff.errors import UnknownNameError
    from takeoff.training.scores import chance_level

    priors = np.array([0.64, 0.25, 0.11])
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=200_000, p=priors)
    guess = rng.choice(3, size=len(y), p=priors)  # drawn with the priors, independent of y
    assert chance_level("accuracy", priors) == pytest.approx(accuracy_score(y, guess), abs=3e-3)
    assert chance_level("accuracy", priors) == pytest.approx(0.64**2 + 0.25**2 + 0.11**2)
    for metric, measured in (("balanced_accuracy", balanced_accuracy_score(y, guess)),
                             ("macro_f1", f1_score(y, guess, average="macro"))):
        assert chance_level(metric, priors) == pytest.approx(1 / 3) == pytest.approx(measured, abs=5e-3)
    assert chance_level("log_loss", priors) == pytest.approx(log_loss(y, np.tile(priors, (len(y), 1))), abs=3e-3)
    assert chance_level("roc_auc", priors) == 0.5 and chance_level("r2", None) == 0.0
    assert chance_level("balanced_accuracy", [0.5, 0.5, 0.0]) == 0.5  # a class that never occurs is no class
    with pytest.raises(UnknownNameError, match="macro_f1"):
        chance_level("macro_f2", priors)


def _imbalanced(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels 64% / 25% / 11% and the one-hot predictions of a model that finds most rare rows
    but pays for it with mistakes on the common class: accuracy under the majority's share."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.64, 0.25, 0.11])
    hit = rng.random(n) < np.where(y == 0, 0.5, 0.7)  # recall 0.5 on the common class, 0.7 on the rare
    pred = np.where(hit, y, (y + rng.integers(1, 3, n)) % 3)
    return torch.nn.functional.one_hot(torch.tensor(pred), 3).float(), torch.tensor(y)


def test_multiclass_chance_is_not_the_majority_share():
    outputs, y = _imbalanced(400, seed=0)
    logs = chance_score("multiclass")(outputs, y)
    majority = float(np.bincount(y.numpy()).max() / len(y))
    assert logs["valid_accuracy"] < majority  # what the old rule called chance
    assert logs["valid_score"] > logs["valid_chance"] + logs["valid_chance_band"] + 0.1
    majority_only = torch.nn.functional.one_hot(torch.zeros(len(y), dtype=torch.long), 3).float()
    logs_majority = chance_score("multiclass")(majority_only, y)
    assert logs_majority["valid_accuracy"] == pytest.approx(majority)
    assert logs_majority["valid_score"] == pytest.approx(logs_majority["valid_chance"]) == pytest.approx(1 / 3)


def test_chance_warning_on_an_imbalanced_multiclass_target():
    """A net that learned the rare classes is left alone; one that predicts the majority is warned about."""
    outputs, y = _imbalanced(400, seed=1)
    majority_only = torch.nn.functional.one_hot(torch.zeros(len(y), dtype=torch.long), 3).float()
    falling = [0.9, 0.7, 0.5]
    for out, expected in ((outputs, 0), (majority_only, 1)):
        warnings: list[str] = []
        logs = {"train_loss": falling[-1], **chance_score("multiclass")(out, y)}
        ChanceWarning().on_epoch_end(_fake_trainer(falling, warnings), 2, logs)
        assert len(warnings) == expected, warnings
    assert "balanced accuracy is 0.333, the chance level being 0.333" in warnings[0]
