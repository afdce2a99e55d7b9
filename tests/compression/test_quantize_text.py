"""int8 quantization of a fine-tuned encoder's ONNX bundle, and the length-sorted runs the ONNX
runtime cuts text batches into. Kept fast: the first of all-MiniLM-L6-v2's six layers (its
full 30,522-token word table), fine-tuned one epoch on 96 tweets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers", reason="the text extra is not installed: pip install 'takeoff[text]'")
pytest.importorskip("onnxscript", reason="the ONNX exporter needs onnxscript: pip install 'takeoff[train]'")
onnx = pytest.importorskip("onnx")

import takeoff  # noqa: E402
from takeoff.compression.onnx import write_onnx_bundle  # noqa: E402
from takeoff.compression.quantize import EMBEDDING_MIN_VALUES, quantize_bundle, small_tables  # noqa: E402
from takeoff.runtime import onnx as runtime  # noqa: E402


@pytest.fixture(scope="module")
def tweets(datasets) -> pd.DataFrame:
    df = pd.read_csv(datasets / "splits" / "tweets_source.train.csv")
    return df[["text", "source"]].sample(400, random_state=3).reset_index(drop=True)


@pytest.fixture(scope="module")
def exported(tweets, tmp_path_factory):
    """(fp32 ONNX bundle, its int8 version, held-out rows)."""
    from transformers import AutoModel, AutoTokenizer

    from takeoff.models.encoder import resolve_encoder

    work = tmp_path_factory.mktemp("quantize-text")
    source = str(resolve_encoder())
    AutoModel.from_pretrained(source, local_files_only=True, num_hidden_layers=1).save_pretrained(work / "encoder")
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(work / "encoder")
    params = {"encoder": str(work / "encoder"), "max_length": 48, "batch_size": 16, "fusion_dim": 32, "epochs": 1}
    model = takeoff.train(tweets.iloc[:96], target="source", family="text-finetune", time_budget=120, seed=0,
                          config={"models": {"text-finetune": params}, "refit": False})
    rows = tweets.iloc[96:].reset_index(drop=True)
    fp32 = write_onnx_bundle(model, work / "onnx", frame=rows.head(64))
    int8, info = quantize_bundle(fp32, work / "int8")
    return fp32, int8, info, rows


def _initializers(path) -> dict:
    return {t.name: t for t in onnx.load(str(path / "model.onnx")).graph.initializer}


def test_the_word_table_is_stored_in_8_bits_and_the_small_tables_stay_float(exported):
    fp32, int8, info, _ = exported
    before, after = _initializers(fp32.path), _initializers(int8.path)
    words = next(name for name, t in before.items() if list(t.dims) == [30522, 384])
    assert before[words].data_type == onnx.TensorProto.FLOAT
    assert words not in after and after[words + "_quantized"].data_type in (onnx.TensorProto.UINT8, onnx.TensorProto.INT8)
    small = [name for name, t in before.items() if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2
             and np.prod(t.dims) < EMBEDDING_MIN_VALUES and "token_type" in name]
    assert small and all(after[name].data_type == onnx.TensorProto.FLOAT for name in small)
    assert small_tables(fp32.path / "model.onnx")  # the token-type lookup is left out by name
    # the word table was most of the float graph; int8 everywhere leaves about a quarter
    assert info["graph_bytes_after"] < 0.3 * info["graph_bytes_before"]
    assert int8.manifest["quantization"]["op_types"] == ["MatMul", "Gemm", "Gather"]


def test_int8_predictions_stay_close_to_fp32(exported):
    fp32, int8, _, rows = exported
    a, _ = fp32.predict_outputs(rows)
    b, _ = int8.predict_outputs(rows)
    assert a.shape == b.shape == (len(rows), 2)
    gap = np.abs(a - b)[:, 1]
    assert gap.mean() < 0.03 and gap.max() < 0.25
    assert ((a[:, 1] >= 0.5) == (b[:, 1] >= 0.5)).mean() >= 0.95


def test_length_sorted_runs_give_the_outputs_of_one_run(exported, monkeypatch):
    fp32, _, _, rows = exported
    many, _ = fp32.predict_outputs(rows)  # 304 tweets: many runs of <= TEXT_RUN_TOKENS tokens
    monkeypatch.setattr(runtime, "TEXT_RUN_TOKENS", 10**9)
    one, _ = fp32.predict_outputs(rows)
    np.testing.assert_allclose(many, one, atol=1e-5)
    single, _ = fp32.predict_outputs(rows.iloc[[7]])
    np.testing.assert_allclose(single[0], one[7], atol=1e-5)


def test_text_runs_cover_every_row_once_within_the_budget():
    rng = np.random.default_rng(0)
    lengths = [rng.integers(2, 40, size=200), rng.integers(2, 9, size=200)]
    masks = [(np.arange(40)[None, :] < n[:, None]).astype(np.int64) for n in lengths]
    masks[1] = masks[1][:, :9]
    runs = runtime.text_runs(masks, 256)
    index = np.concatenate(runs)
    assert sorted(index.tolist()) == list(range(200))
    total = lengths[0] + lengths[1]
    assert (np.diff(total[index]) >= 0).all()  # shortest first
    for run in runs:
        cost = len(run) * (lengths[0][run].max() + lengths[1][run].max())
        assert cost <= 256 or len(run) == 1
    assert len(runtime.text_runs(masks, 10**6)) == 1
    wide = [np.ones((3, 300), dtype=np.int64)]
    assert [r.tolist() for r in runtime.text_runs(wide, 256)] == [[0], [1], [2]]  # longer than the budget: alone
