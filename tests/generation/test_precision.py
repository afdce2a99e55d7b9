"""Generation precisions on a tiny causal LM: "auto" keeps float32's greedy tokens (4-bit grid
weights packed, an exact-argmax int8 head), "int8" is opt-in, bad values are refused; and
``compress --quantize int8`` on a generate bundle reports perplexity and tokens/s."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import takeoff
from takeoff.errors import ConfigError
from takeoff.pipelines.generation.model import GenerativeModel

torch = pytest.importorskip("torch")
quantized = pytest.importorskip("takeoff.pipelines.generation.quantized")
needs_kernels = pytest.mark.skipif(not quantized.kernels_available(), reason="torch without the CPU int4/int8 kernels")

PROMPTS = ["hi", "How do I reset my password, please tell me?", "refund", "Where is my parcel?"]


def _snap_to_4bit_grid(folder, scale: float = 8.0) -> None:
    """Rewrite the linear weights of the model in ``folder`` as a Q4 GGUF conversion has them:
    each group of 32 weights of a row on its own 16-level grid (larger than the random init, so
    the tiny model's logits are far apart)."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    weights = load_file(str(path))
    for name, w in weights.items():
        if w.ndim == 2 and "embed" not in name:
            g = (w * scale).reshape(w.shape[0], -1, 32)
            low, step = g.amin(-1, keepdim=True), (g.amax(-1, keepdim=True) - g.amin(-1, keepdim=True)) / 15
            weights[name] = (torch.round((g - low) / step) * step + low).reshape(w.shape).contiguous()
    save_file(weights, str(path), metadata={"format": "pt"})


@pytest.fixture(scope="module")
def grid_lm(tmp_path_factory):
    from takeoff.testing.llm import tiny_causal_lm

    folder = tiny_causal_lm(tmp_path_factory.mktemp("grid-lm") / "chat")
    _snap_to_4bit_grid(folder)
    return folder


def _greedy(model, n=12):
    return model.generate(PROMPTS, max_new_tokens=n)


@needs_kernels
def test_auto_packs_4bit_grid_weights_when_the_probe_agrees(grid_lm, monkeypatch):
    from takeoff.pipelines.generation.engine import Engine

    fp32 = GenerativeModel.from_folder(grid_lm, precision="fp32")
    monkeypatch.setattr(Engine, "_probe", lambda self: [1, 2, 3])  # agreement, whatever the random model says
    auto = GenerativeModel.from_folder(grid_lm, precision="auto")
    assert fp32.engine.precision == "fp32" and auto.engine.precision == "int4"
    layers = list(auto.engine.model.modules())
    assert sum(isinstance(m, quantized.Int4Linear) for m in layers) == 14  # 7 per layer, 2 layers
    assert isinstance(auto.engine.model.lm_head, quantized.ExactArgmaxHead)
    ids = torch.tensor([auto.engine.encode("How do I reset my password?")[:6]])  # 6 rows: the int4 kernels
    with torch.inference_mode():
        exact, packed = fp32.engine.model(ids).logits, auto.engine.model(ids).logits
    assert (packed - exact).abs().max() < 0.02 * (exact.max() - exact.min())  # the same weights, bf16 activations
    assert all(answer for answer in _greedy(auto))
    assert auto.engine.model.lm_head.recomputed.calls > 0  # decoding went through the int8 head
    # many rows (a perplexity batch) go through the float32 weights: float32's perplexity
    answers = ["Open the settings page and choose reset password.", "Track it from the orders page."]
    assert auto.perplexity(PROMPTS[:2], answers) == pytest.approx(fp32.perplexity(PROMPTS[:2], answers), rel=1e-5)


@needs_kernels
def test_whatever_auto_picks_gives_float32s_greedy_tokens_on_the_probe(grid_lm):
    fp32 = GenerativeModel.from_folder(grid_lm, precision="fp32")
    auto = GenerativeModel.from_folder(grid_lm, precision="auto")
    assert auto.engine.precision in ("int4", "fp32")
    assert auto.engine._probe() == fp32.engine._probe()


@needs_kernels
def test_off_grid_weights_stay_float32_with_the_exact_argmax_head(tiny_lm):
    fp32 = GenerativeModel.from_folder(tiny_lm, precision="fp32")
    auto = GenerativeModel.from_folder(tiny_lm)
    assert auto.engine.precision == "fp32"
    assert not any(isinstance(m, quantized.Int4Linear) for m in auto.engine.model.modules())
    assert _greedy(auto) == _greedy(fp32)
    answers = ["Open the settings page and choose reset password.", "Track it from the orders page."]
    assert auto.perplexity(PROMPTS[:2], answers) == pytest.approx(fp32.perplexity(PROMPTS[:2], answers), rel=1e-6)


@needs_kernels
def test_auto_falls_back_to_float32_when_the_probe_disagrees(grid_lm, monkeypatch):
    from takeoff.pipelines.generation.engine import Engine

    answers = iter([[1, 2, 3], [1, 2, 4]])  # the packed model's probe differs from float32's
    monkeypatch.setattr(Engine, "_probe", lambda self: next(answers))
    engine = Engine(grid_lm, precision="auto")
    assert engine.precision == "fp32"
    assert isinstance(engine.model.lm_head, torch.nn.Linear)
    assert not any(isinstance(m, (quantized.Int4Linear, quantized.ExactArgmaxHead)) for m in engine.model.modules())
    assert engine.model.lm_head.weight is engine.model.get_input_embeddings().weight  # still tied


def test_the_exact_argmax_head_picks_float32s_token_even_on_near_ties():
    if not quantized.kernels_available():
        pytest.skip("torch without the CPU int8 kernel")
    torch.manual_seed(0)
    weight = torch.randn(4096, 64)
    weight[1] = weight[0] + 1e-4 * torch.randn(64)  # rows whose logits nearly tie
    head = quantized.ExactArgmaxHead(torch.nn.Parameter(weight, requires_grad=False))
    x = torch.randn(12, 1, 64)
    x[0, 0] = weight[0] / weight[0].norm() * 3
    class Holder(torch.nn.Module):
        def get_output_embeddings(self):
            return head

    exact = x @ weight.T
    with quantized.decoding(Holder()):
        approx = head(x)
    assert torch.equal(approx.argmax(-1), exact.argmax(-1))
    assert (approx - exact).abs().max() < 0.02 * (exact.max() - exact.min())  # the others: int8-accurate
    assert torch.allclose(head(x), exact, atol=1e-5)  # outside decoding: float32


def test_4bit_grids_are_found_only_where_the_weights_lie_on_one():
    torch.manual_seed(0)
    w = torch.randn(32, 64)
    assert quantized.grid_4bit(w) is None
    g = w.reshape(32, 2, 32)
    low, step = g.amin(-1, keepdim=True), (g.amax(-1, keepdim=True) - g.amin(-1, keepdim=True)) / 15
    on_grid = (torch.round((g - low) / step) * step + low).reshape(32, 64)
    q, scale, low = quantized.grid_4bit(on_grid)
    assert int(q.min()) == 0 and int(q.max()) == 15
    rebuilt = (q.reshape(32, 2, 32) * scale[..., None] + low[..., None]).reshape(32, 64)
    assert torch.allclose(rebuilt, on_grid, atol=1e-6)
    assert quantized.grid_4bit(torch.randn(32, 48)) is None  # rows not made of whole groups


@needs_kernels
def test_int8_is_opt_in_and_still_generates(tiny_lm):
    model = GenerativeModel.from_folder(tiny_lm, precision="int8")
    assert model.engine.precision == "int8"
    assert sum(isinstance(m, quantized.Int8Linear) for m in model.engine.model.modules()) == 14
    done = model.chat([{"role": "user", "content": "hi"}], max_new_tokens=6)
    assert done.completion_tokens >= 1 and done.finish_reason in ("stop", "length")


@pytest.mark.parametrize("bad", ["fp16", "INT8", "", None])
def test_an_unknown_precision_is_refused_with_the_choices(tiny_lm, bad):
    from takeoff.pipelines.generation.engine import Engine

    with pytest.raises(ConfigError, match="auto, fp32, bf16, int8"):
        Engine(tiny_lm, precision=bad)
    with pytest.raises(ConfigError, match="generate.precision"):
        GenerativeModel.from_folder(tiny_lm, precision=bad).generate("hi", max_new_tokens=2)


def test_the_training_config_names_bad_precisions(tiny_lm, pairs_csv, tmp_path):
    with pytest.raises(ConfigError, match="precision"):
        takeoff.train(pairs_csv, task="generate", prompt="question", target="answer", base_model=str(tiny_lm),
                      out=tmp_path / "run", config={"generate": {"method": "none", "precision": "int3"}})
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- compress
@pytest.fixture(scope="module")
def base_bundle(tiny_lm, tmp_path_factory):
    from tests.generation.conftest import PAIRS

    folder = tmp_path_factory.mktemp("compress-gen")
    data = folder / "pairs.csv"
    pd.DataFrame(PAIRS * 4, columns=["question", "answer"]).to_csv(data, index=False)
    takeoff.train(data, task="generate", prompt="question", target="answer", base_model=str(tiny_lm),
                  out=folder / "base", config={"generate": {"method": "none", "eval_samples": 0}})
    return folder / "base", data


@needs_kernels
def test_compress_quantize_int8_writes_a_generate_bundle_with_its_perplexity(base_bundle, tmp_path):
    from typer.testing import CliRunner

    from takeoff.cli import app

    bundle, data = base_bundle
    out = tmp_path / "int8"
    result = CliRunner().invoke(app, ["compress", str(bundle), "--quantize", "int8", "--eval", str(data),
                                      "--out", str(out), "--json", "--no-track"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    before, after = report["original"]["metrics"], report["compressed"]["metrics"]
    assert before["precision"] == "fp32" and after["precision"] == "int8"
    assert before["perplexity"] > 1 and after["perplexity"] > 1
    assert report["perplexity_change"] == pytest.approx(after["perplexity"] / before["perplexity"] - 1)
    assert before["tokens_per_s"] > 0 and after["tokens_per_s"] > 0
    assert report["greedy_same"].endswith("/8")
    manifest = json.loads((out / "takeoff.json").read_text())
    assert manifest["generate"]["precision"] == "int8"
    assert manifest["compression"]["perplexity_change"] == pytest.approx(report["perplexity_change"])
    assert (out / "compression.html").is_file() and (out / "compression.json").is_file()
    loaded = takeoff.load(out)
    assert loaded.engine.precision == "int8"
    assert loaded.chat([{"role": "user", "content": "hi"}], max_new_tokens=4).completion_tokens >= 1
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pkl"))


@needs_kernels
def test_compress_prints_the_comparison_table(base_bundle, tmp_path):
    from typer.testing import CliRunner

    from takeoff.cli import app

    bundle, data = base_bundle
    result = CliRunner().invoke(app, ["compress", str(bundle), "--quantize", "int8", "--eval", str(data),
                                      "--out", str(tmp_path / "int8"), "--no-track"])
    assert result.exit_code == 0, result.output
    assert "held-out perplexity" in result.output and "tokens/s, 1 stream" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--quantize", "int8"], "--eval"),
    (["--onnx", "--eval", "DATA"], "--onnx apply to table models"),
    (["--quantize", "int4", "--eval", "DATA"], "choose: int8"),
    (["--prune", "0.5", "--quantize", "int8", "--eval", "DATA"], "--prune"),
])
def test_compress_refuses_what_does_not_apply_to_a_generate_bundle(base_bundle, tmp_path, args, message):
    from typer.testing import CliRunner

    from takeoff.cli import app

    bundle, data = base_bundle
    args = [str(data) if a == "DATA" else a for a in args]
    result = CliRunner().invoke(app, ["compress", str(bundle), *args, "--out", str(tmp_path / "out"), "--no-track"])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_compress_names_the_missing_answer_column(base_bundle, tmp_path):
    from typer.testing import CliRunner

    from takeoff.cli import app

    bundle, _ = base_bundle
    other = tmp_path / "other.csv"
    pd.DataFrame({"question": ["hi"] * 3, "reply": ["hello"] * 3}).to_csv(other, index=False)
    result = CliRunner().invoke(app, ["compress", str(bundle), "--quantize", "int8", "--eval", str(other),
                                      "--out", str(tmp_path / "out"), "--no-track"])
    assert result.exit_code == 3, result.output
    assert "answer" in result.output
