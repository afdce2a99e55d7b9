"""Checkpoints: exact round trips without pickle, and atomicity when a save is cut short."""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest
import torch

from takeoff.errors import DataSourceError
from takeoff.training import checkpoint
from takeoff.training.checkpoint import defer_interrupts, load_state, save_state


def _trained_optimizer(steps: int = 3):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=20)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler, (x, y)


def _step(model, optimizer, scheduler, batch):
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
    optimizer.step()
    scheduler.step()


def test_adamw_onecycle_round_trip_continues_identically(tmp_path):
    model, optimizer, scheduler, batch = _trained_optimizer()
    state = {
        "epoch": 3,
        "best": 0.25,
        "history": {"train_loss": [0.9, 0.5, 0.4]},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "best_weights": {k: v.clone() for k, v in model.state_dict().items()},
    }
    save_state(tmp_path, state)
    loaded = load_state(tmp_path)

    assert loaded["epoch"] == 3 and isinstance(loaded["epoch"], int)
    assert loaded["history"] == state["history"]
    assert set(loaded["optimizer"]["state"]) == {0, 1, 2, 3}  # int keys stay ints
    betas = loaded["optimizer"]["param_groups"][0]["betas"]
    assert isinstance(betas, tuple) and betas == state["optimizer"]["param_groups"][0]["betas"]
    assert loaded["scheduler"] == scheduler.state_dict()
    for key, value in state["best_weights"].items():
        assert torch.equal(loaded["best_weights"][key], value)

    # a fresh model/optimizer/scheduler restored from disk continues exactly like the original
    model2, optimizer2, scheduler2, _ = _trained_optimizer(steps=0)
    model2.load_state_dict(loaded["model"])
    optimizer2.load_state_dict(loaded["optimizer"])
    scheduler2.load_state_dict(loaded["scheduler"])
    for _ in range(3):
        _step(model, optimizer, scheduler, batch)
        _step(model2, optimizer2, scheduler2, batch)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    assert scheduler.get_last_lr() == scheduler2.get_last_lr()


def test_values_keep_their_types(tmp_path):
    state = {
        "ints": [1, -2, 3],
        "floats": [0.1, math.inf, -math.inf],
        "nan": math.nan,
        "flags": (True, False, None),
        "text": "ok",
        "mixed_keys": {0: "zero", "1": "one", (2, 3): "pair"},
        "marker_key": {"__tensor__": "not a tensor"},
        "array": np.arange(6, dtype=np.int32).reshape(2, 3),
        "scalar": np.float64(2.5),
        "t0": torch.tensor(7.0),
        "bf16": torch.ones(3, dtype=torch.bfloat16),
        "empty": torch.zeros(0, 4),
        "strided": torch.arange(12.0).reshape(3, 4).t(),
        "a.b": torch.ones(1),
        "a": {"b": torch.zeros(1)},
    }
    save_state(tmp_path, state)
    loaded = load_state(tmp_path)
    assert loaded["ints"] == [1, -2, 3]
    assert loaded["floats"] == [0.1, math.inf, -math.inf]
    assert math.isnan(loaded["nan"])
    assert loaded["flags"] == (True, False, None)
    assert loaded["mixed_keys"] == {0: "zero", "1": "one", (2, 3): "pair"}
    assert loaded["marker_key"] == {"__tensor__": "not a tensor"}
    assert isinstance(loaded["array"], np.ndarray) and loaded["array"].dtype == np.int32
    np.testing.assert_array_equal(loaded["array"], state["array"])
    assert loaded["scalar"] == 2.5
    assert loaded["t0"].shape == () and loaded["t0"].item() == 7.0
    assert loaded["bf16"].dtype == torch.bfloat16
    assert loaded["empty"].shape == (0, 4)
    assert torch.equal(loaded["strided"], state["strided"])
    assert torch.equal(loaded["a.b"], torch.ones(1)) and torch.equal(loaded["a"]["b"], torch.zeros(1))
    # the JSON is plain JSON (no NaN tokens) and nothing is pickled
    json.loads((tmp_path / "state.json").read_text(), parse_constant=pytest.fail)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".safetensors"]


def test_no_checkpoint_and_unreadable_checkpoint(tmp_path):
    assert load_state(tmp_path) is None
    assert load_state(tmp_path / "missing") is None
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(DataSourceError, match="delete the folder"):
        load_state(tmp_path)


def test_unsupported_value_names_its_path(tmp_path):
    with pytest.raises(TypeError, match="'scheduler.fn'"):
        save_state(tmp_path, {"scheduler": {"fn": print}})
    assert load_state(tmp_path) is None


def test_only_the_latest_tensor_file_is_kept(tmp_path):
    for epoch in range(4):
        save_state(tmp_path, {"epoch": epoch, "w": torch.full((3,), float(epoch))})
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    assert not list(tmp_path.glob(".*"))
    loaded = load_state(tmp_path)
    assert loaded["epoch"] == 3 and torch.equal(loaded["w"], torch.full((3,), 3.0))


def test_crash_before_the_json_commit_keeps_the_previous_epoch(tmp_path, monkeypatch):
    save_state(tmp_path, {"epoch": 1, "w": torch.ones(3)})
    real_replace = os.replace

    def crash_on_json(src, dst):
        if str(dst).endswith("state.json"):
            raise KeyboardInterrupt  # the process dies between the two renames
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash_on_json)
    with pytest.raises(KeyboardInterrupt):
        save_state(tmp_path, {"epoch": 2, "w": torch.full((3,), 2.0)})
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)

    loaded = load_state(tmp_path)
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.ones(3))
    assert len(list(tmp_path.glob("*.safetensors"))) == 1 and not list(tmp_path.glob(".*"))


def test_crash_leftovers_from_a_killed_process_are_ignored_then_cleaned(tmp_path):
    save_state(tmp_path, {"epoch": 1, "w": torch.ones(2)})
    (tmp_path / "state-deadbeef0000.safetensors").write_bytes(b"half written")
    (tmp_path / ".state.json.deadbeef0000.tmp").write_text("{")
    assert load_state(tmp_path)["epoch"] == 1
    save_state(tmp_path, {"epoch": 2, "w": torch.ones(2)})
    assert len(list(tmp_path.glob("*.safetensors"))) == 1 and not list(tmp_path.glob(".*"))


def test_truncated_tensor_file_is_reported(tmp_path):
    save_state(tmp_path, {"w": torch.ones(100)})
    tensor_file = next(tmp_path.glob("*.safetensors"))
    tensor_file.write_bytes(tensor_file.read_bytes()[:-10])
    with pytest.raises(DataSourceError, match="truncated"):
        load_state(tmp_path)


def test_defer_interrupts_finishes_the_block_first():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with defer_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
