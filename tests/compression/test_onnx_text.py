"""Text members in an exported bundle: token-id inputs fed from ``encode_texts`` with the
tokenizer written beside the graph, the hashed bag of words left out when no member reads it
(so the lite runtime needs ``tokenizers`` but not scikit-learn), and datetime parts.

The fast tests use a stand-in text family whose graph is built by hand (a fine-tuned encoder
takes ~15 s to export); the real text-finetune family runs under ``-m slow``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.api import Model
from takeoff.compression.onnx import write_onnx_bundle
from takeoff.data.conform import conform
from takeoff.data.schema import infer_schema, infer_task
from takeoff.features.pipeline import FeaturePipeline
from takeoff.features.tokens import encode_texts
from takeoff.models.base import Family
from takeoff.models.blend import Blend

pytest.importorskip("tokenizers", reason="text models need the tokenizers package: pip install 'takeoff[text]'")

TOLERANCE = 1e-4
MAX_LENGTH = 16
REFUSED = ("torch", "lightgbm", "sklearn", "scipy", "matplotlib", "captum", "transformers", "onnx", "onnxmltools",
           "onnxscript", "implicit", "peft")


class TokenFamily(Family):
    """p(second class) = sigmoid(mean token id / 10,000 + the last numeric feature), from the
    token ids of column ``text``: small enough to write its graph by hand."""

    name = "text-finetune"  # what the manifest calls it: a family that exports
    exports_onnx = True

    def __init__(self, task, tokenizer: Path):
        super().__init__(task)
        self.tokenizer = tokenizer

    def fit(self, train, valid, ctx):
        return self.report

    def predict(self, X):
        ids, mask = encode_texts(self.tokenizer, X.text["text"], MAX_LENGTH)
        mean = (ids * mask).sum(1).astype(np.float32) / np.maximum(mask.sum(1), 1).astype(np.float32)
        p = 1 / (1 + np.exp(-(mean / np.float32(1e4) + X.numeric[:, -1])))
        return np.column_stack([1 - p, p]).astype(np.float32)

    def save(self, directory):
        raise NotImplementedError

    @classmethod
    def load(cls, directory, task, params):
        raise NotImplementedError

    def to_onnx(self, sample):
        from onnx import TensorProto, helper

        F, I = TensorProto.FLOAT, TensorProto.INT64
        nodes = [
            helper.make_node("Cast", ["text.text.input_ids"], ["ids"], to=F),
            helper.make_node("Cast", ["text.text.attention_mask"], ["mask"], to=F),
            helper.make_node("Mul", ["ids", "mask"], ["kept"]),
            helper.make_node("ReduceSum", ["kept", "axis1"], ["total"], keepdims=0),
            helper.make_node("ReduceSum", ["mask", "axis1"], ["count"], keepdims=0),
            helper.make_node("Max", ["count", "one"], ["count1"]),
            helper.make_node("Div", ["total", "count1"], ["mean"]),
            helper.make_node("Div", ["mean", "scale"], ["scaled"]),
            helper.make_node("Gather", ["numeric", "last"], ["x0"], axis=1),  # reads one column
            helper.make_node("Add", ["scaled", "x0"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p"]),
            helper.make_node("Sub", ["one", "p"], ["q"]),
            helper.make_node("Unsqueeze", ["q", "axis1"], ["q1"]),
            helper.make_node("Unsqueeze", ["p", "axis1"], ["p1"]),
            helper.make_node("Concat", ["q1", "p1"], ["outputs"], axis=1),
        ]
        inits = [helper.make_tensor("axis1", I, [1], [1]), helper.make_tensor("one", F, [], [1.0]),
                 helper.make_tensor("scale", F, [], [1e4]), helper.make_tensor("last", I, [], [-1])]
        inputs = [helper.make_tensor_value_info("numeric", F, ["N", sample.numeric.shape[1]]),
                  helper.make_tensor_value_info("text.text.input_ids", I, ["N", "L"]),
                  helper.make_tensor_value_info("text.text.attention_mask", I, ["N", "L"])]
        graph = helper.make_graph(nodes, "tokens", inputs, [helper.make_tensor_value_info("outputs", F, ["N", 2])], inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    def onnx_assets(self, directory):
        shutil.copyfile(self.tokenizer, Path(directory) / "tokenizer.json")
        return {"text": {"tokenizer": "tokenizer.json", "max_length": MAX_LENGTH}}


@pytest.fixture(scope="module")
def tweets(datasets) -> pd.DataFrame:
    df = pd.read_csv(datasets / "tweets_source.csv").sample(400, random_state=2).reset_index(drop=True)
    df["day"] = pd.to_datetime(df["created_at"]).dt.day_name()  # a categorical column too
    return df


def _model(df, family_for) -> Model:
    target = "source"
    schema = infer_schema(df, target)
    task = infer_task(df[target], target, None)
    pipeline = FeaturePipeline(schema).fit(conform(df, schema)[0])
    family = family_for(task, pipeline, schema)
    manifest = {"members": [{"family": "text-finetune", "weight": 1.0, "params": {}}], "task": task.to_json(),
                "schema": schema.to_json(), "threshold": None, "metrics": {}}
    return Model(manifest, schema, task, pipeline, Blend([family], [1.0]))


@pytest.fixture(scope="module")
def tokenizer_file() -> Path:
    from takeoff.models.encoder import resolve_encoder

    return Path(resolve_encoder()) / "tokenizer.json"


def test_text_inputs_assets_and_the_lite_runtime(tweets, tokenizer_file, run_lite, tmp_path):
    model = _model(tweets.iloc[:300], lambda task, *_: TokenFamily(task, tokenizer_file))
    rows = tweets.iloc[300:].drop(columns=["source"]).reset_index(drop=True)
    rows.loc[0, "text"] = None
    exported = write_onnx_bundle(model, tmp_path / "models" / "tweets", frame=rows)
    spec = exported.manifest["onnx"]
    # the member reads the last numeric column, not the hashed text: not an input
    assert spec["inputs"] == ["numbers", "m0.text.text.input_ids", "m0.text.text.attention_mask"]
    assert spec["text"] == [{"input": "m0.text.text", "column": "text", "tokenizer": "assets/m0/tokenizer.json",
                             "max_length": MAX_LENGTH}]
    assert spec["max_abs_diff"] <= TOLERANCE
    assert (tmp_path / "models" / "tweets" / "assets" / "m0" / "tokenizer.json").is_file()
    expected, _ = model.predict_outputs(rows)
    np.testing.assert_allclose(takeoff.load(exported.path).predict_outputs(rows)[0], expected, atol=TOLERANCE)

    rows_csv = tmp_path / "rows.csv"
    rows.to_csv(rows_csv, index=False)
    result = run_lite(REFUSED, tmp_path / "models", rows_csv, tmp_path)
    assert result["loaded"] == [] and result["attempts"] == [], result["attempts"]  # scikit-learn included
    saved, _ = model.predict_outputs(pd.read_csv(rows_csv))
    np.testing.assert_allclose(result["api"]["tweets"]["outputs"], saved, atol=TOLERANCE)
    http = [p["probabilities"][str(model.task.classes[1])] for p in result["http"]["tweets"]["predictions"]]
    np.testing.assert_allclose(http, saved[:8, 1], atol=TOLERANCE)


@pytest.mark.slow
def test_a_fine_tuned_encoder_exports_with_the_pipeline(tweets, tmp_path):
    """The real text-finetune family (a 1-layer encoder, one epoch): ~30 s, mostly the export."""
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer, BertConfig, BertModel

    from takeoff.models.base import Dataset
    from takeoff.models.encoder import resolve_encoder
    from takeoff.models.text_finetune import TextFinetuneFamily
    from takeoff.training.context import FitContext

    tokenizer = AutoTokenizer.from_pretrained(str(resolve_encoder()), local_files_only=True)
    encoder = tmp_path / "encoder"
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    train = tweets.iloc[:100]

    def fitted(task, pipeline, schema):
        family = TextFinetuneFamily(task, {"max_length": 32, "batch_size": 16, "fusion_dim": 16, "epochs": 1,
                                           "encoder": str(encoder)})
        X = pipeline.transform(conform(train, schema)[0])
        family.fit(Dataset(X, task.encode(train["source"])), None, FitContext(seed=0, progress=False, device="cpu"))
        return family

    model = _model(train, fitted)
    rows = tweets.iloc[300:360]
    exported = write_onnx_bundle(model, tmp_path / "onnx", frame=rows)
    assert "hashed_text" not in exported.manifest["onnx"]["inputs"]
    assert exported.manifest["onnx"]["max_abs_diff"] <= TOLERANCE
    np.testing.assert_allclose(exported.predict_outputs(rows)[0], model.predict_outputs(rows)[0], atol=TOLERANCE)
