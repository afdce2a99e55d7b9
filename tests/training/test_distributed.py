"""Distributed training: real processes (gloo on 127.0.0.1, a free port) training the MLP.

The slow path is one command line run twice: ``takeoff train --devices 2`` whose rank 1 is
killed mid-training (the launcher must fail fast with a clear message), then ``--resume`` of the
same run directory, which continues from rank 0's checkpoint on two processes again and writes a
bundle in the same format as a one-process run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import takeoff
from takeoff.errors import ConfigError
from takeoff.training.distributed import check_devices, shard_bounds
from takeoff.training.tensors import epoch_order

psutil = pytest.importorskip("psutil")

TAKEOFF = [sys.executable, "-m", "takeoff"]
# a short MLP schedule: long enough to kill rank 1 mid-training, short enough to finish fast
MLP = {"models": {"mlp": {"max_epochs": 12, "patience": 12, "hidden_sizes": [64, 32]}}, "refit": False, "folds": 1}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    import yaml

    path = tmp_path_factory.mktemp("config") / "mlp.yaml"
    path.write_text(yaml.safe_dump(MLP))
    return path


def _rank_process(parent: psutil.Process, rank: int) -> psutil.Process | None:
    """The launcher's worker of local rank ``rank``: its spawned children, started in rank order
    (the error message checks it: it names the pid of the rank that died)."""
    workers = []
    for child in parent.children(recursive=False):
        try:
            line = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "spawn_main" in line and "resource_tracker" not in line:
            workers.append(child)
    workers.sort(key=lambda p: (p.create_time(), p.pid))
    return workers[rank] if len(workers) > rank else None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the ranks through /proc")
def test_killed_rank_fails_fast_then_the_run_resumes_on_two_processes(credit_csv, config_file, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "TAKEOFF_DIST_TIMEOUT": "60"}
    args = [*TAKEOFF, "train", str(credit_csv), "--target", "Status", "--family", "mlp", "--config", str(config_file),
            "--devices", "2", "--time-budget", "60", "--out", str(out)]
    launcher = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    parent = psutil.Process(launcher.pid)
    checkpoint = out / "checkpoints" / "mlp" / "state.json"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists(), launcher.communicate()
    victim = _rank_process(parent, 1)
    assert victim is not None, "rank 1 not found among the launcher's processes"
    killed_at = time.monotonic()
    victim.send_signal(signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=60)
    failed_in = time.monotonic() - killed_at
    assert launcher.returncode == 1, stderr  # a runtime failure (docs/cli.md#exit-codes)
    assert "the run goes on" not in stderr  # a rank's failure is not one candidate's
    assert f"rank 1 of 2 (pid {victim.pid}) was killed by SIGKILL" in stderr
    assert failed_in < 30, f"the launcher took {failed_in:.0f}s to notice"
    assert not (out / "takeoff.json").exists()  # no bundle from a failed run
    saved = json.loads(checkpoint.read_text())
    assert saved["state"]["world_size"] == 2 and saved["state"]["epoch"] >= 1

    resumed = subprocess.run([*TAKEOFF, "train", "--resume", str(out)], capture_output=True, text=True, env=env,
                             timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert f"bundle: {out}" in resumed.stdout
    assert f"continuing the interrupted fit from epoch {saved['state']['epoch']} of 12" in resumed.stderr
    model = takeoff.load(out)
    assert model.manifest["config"]["devices"] == 2
    assert model.manifest["members"][0]["family"] == "mlp"
    frame = _frame(credit_csv)
    proba = model.predict_proba(frame)
    assert proba.shape == (len(frame), 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert model.evaluate(frame)["roc_auc"] > 0.7

    # the same format as a one-process bundle: the same files, manifest keys and member spec
    single = takeoff.train(str(credit_csv), target="Status", family="mlp", config=str(config_file), time_budget=30,
                           out=tmp_path / "one")
    assert _files(out) == _files(tmp_path / "one")
    assert set(model.manifest) == set(single.manifest)
    spec = [json.loads(p.read_text()) for p in (out / "members" / "mlp").glob("*.json")]
    spec_one = [json.loads(p.read_text()) for p in (tmp_path / "one" / "members" / "mlp").glob("*.json")]
    assert [(s["format"], s["version"], sorted(s)) for s in spec] == [(s["format"], s["version"], sorted(s)) for s in spec_one]


def _frame(path: Path):
    import pandas as pd

    return pd.read_csv(path)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_the_sampler_draws_the_one_process_permutation():
    """Rank r of the DistributedSampler takes every world-th row of the permutation one process
    draws: together the ranks see each row once, as many rows each."""
    from torch.utils.data import DistributedSampler

    one, _ = epoch_order(103, 16, seed=7, epoch=3)
    shares = []
    for rank in range(2):
        sampler = DistributedSampler(range(103), num_replicas=2, rank=rank, shuffle=True, seed=7, drop_last=True)
        sampler.set_epoch(3)
        shares.append(list(sampler))
    assert shares[0] == one[:102:2].tolist() and shares[1] == one[1:102:2].tolist()
    assert [shard_bounds(10, r, 4) for r in range(4)] == [(0, 2), (2, 5), (5, 7), (7, 10)]


def test_more_devices_than_the_machine_has_names_how_many(credit_csv, tmp_path):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with pytest.raises(ConfigError, match=rf"--devices {cores + 1} asks for {cores + 1} devices, but this machine has {cores} CPU core"):
        check_devices(cores + 1, "cpu")
    with pytest.raises(ConfigError, match=rf"this machine has {cores} CPU core"):
        takeoff.train(str(credit_csv), target="Status", family="mlp", devices=cores + 1, config={"device": "cpu"},
                      out=tmp_path / "x")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="this machine has 0 GPU"):
            check_devices(2, "cuda")


@pytest.mark.parametrize("family, message", [
    ("auto", "'auto' also fits families that do not train on a process group"),
    ("lightgbm", "'lightgbm' is not one"),
])
def test_only_torch_families_train_on_several_processes(credit_csv, tmp_path, family, message):
    with pytest.raises(ConfigError, match=message) as error:
        takeoff.train(str(credit_csv), target="Status", family=family, devices=2, out=tmp_path / "x")
    assert "mlp" in str(error.value)  # the fix lists the torch families
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="give an output directory"):
        takeoff.train(str(credit_csv), target="Status", family="mlp", devices=2)


def _linear_fit(world_expected: int) -> dict:
    """One rank (or the one process): a linear model fitted by SGD on fixed rows; its weights,
    history, optimizer steps and rows per rank batch, for shuffled and for custom batches."""
    from torch import nn

    from takeoff.training.distributed import process_group, rank_and_world
    from takeoff.training.loop import Trainer
    from takeoff.training.tensors import TensorSet

    with process_group("cpu"):
        assert rank_and_world()[1] == world_expected
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 3, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(64, generator=g)
        mse = lambda out, target, weight: ((out[:, 0] - target) ** 2).mean()  # noqa: E731
        fits = {}
        # shuffled batches (the DistributedSampler), and custom ones (length buckets' path)
        for name, order in (("shuffled", None), ("custom", lambda epoch: [list(range(a, a + 16)) for a in (48, 0, 32, 16)])):
            torch.manual_seed(0)
            net = nn.Linear(3, 1)
            trainer = Trainer(net, mse, torch.optim.SGD(net.parameters(), lr=0.05), train=TensorSet((x,), y),
                              valid=TensorSet((x[:21],), y[:21]), batch_size=16, max_epochs=3, batch_order=order)
            result = trainer.fit()
            fits[name] = {"weight": net.weight.detach().flatten().tolist(), "bias": float(net.bias.detach()),
                          "history": result.history, "steps": trainer.global_step, "rank_batch": trainer.rank_batch_size}
        return fits


def test_two_ranks_train_the_model_one_process_trains():
    """With the global batch split across the ranks (rank r takes every other row of the batch one
    process would take) and DDP averaging the gradients, SGD on a linear model gives the one-process
    weights, step for step; the validation loss, gathered from both ranks' blocks, is the same."""
    from takeoff.training.distributed import launch

    one = _linear_fit(1)
    ranks = launch(_linear_fit, (2,), 2)
    for name in ("shuffled", "custom"):
        a, b, single = ranks[0][name], ranks[1][name], one[name]
        assert a["weight"] == b["weight"] and a["history"] == b["history"]
        assert a["steps"] == single["steps"] == 12 and a["rank_batch"] == 8
        assert np.allclose(a["weight"], single["weight"], atol=1e-6) and abs(a["bias"] - single["bias"]) < 1e-6
        for key in ("train_loss", "valid_loss"):
            assert np.allclose(a["history"][key], single["history"][key], rtol=1e-5)
