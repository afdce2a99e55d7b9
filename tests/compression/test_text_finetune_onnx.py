"""The text-finetune family as one ONNX graph: ONNX Runtime gives what ``predict`` gives on
real tweets, from token ids that ``encode_texts`` (``tokenizers`` only) computes exactly as the
family's Hugging Face tokenizer does. Kept fast: a one-epoch fine-tune on 48 rows, 32 tokens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers", reason="the text extra is not installed: pip install 'takeoff[text]'")
pytest.importorskip("onnxscript", reason="the ONNX exporter needs onnxscript: pip install 'takeoff[train]'")
ort = pytest.importorskip("onnxruntime")

from takeoff.data.conform import conform  # noqa: E402
from takeoff.data.schema import infer_schema, infer_task  # noqa: E402
from takeoff.errors import BundleError, DataError  # noqa: E402
from takeoff.features import tokens  # noqa: E402
from takeoff.features.pipeline import FeaturePipeline  # noqa: E402
from takeoff.models.base import Dataset  # noqa: E402
from takeoff.models.text_finetune import TextFinetuneFamily  # noqa: E402
from takeoff.training.context import FitContext  # noqa: E402

SMALL = {"max_length": 32, "batch_size": 16, "fusion_dim": 32, "epochs": 1}
N_TRAIN = 48


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> str:
    """The first of all-MiniLM-L6-v2's six layers: the same graph, exported in a fraction of the time."""
    from transformers import AutoModel, AutoTokenizer

    from takeoff.models.encoder import resolve_encoder

    folder, source = tmp_path_factory.mktemp("minilm-l1"), str(resolve_encoder())
    AutoModel.from_pretrained(source, local_files_only=True, num_hidden_layers=1).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tweets(datasets) -> pd.DataFrame:
    df = pd.read_csv(datasets / "splits" / "tweets_source.train.csv").sample(160, random_state=1).reset_index(drop=True)
    created = pd.to_datetime(df["created_at"])
    df["hour"], df["day"] = created.dt.hour, created.dt.day_name()
    df["likes"] = np.log1p(df["favorite_count"])
    df["shout"] = df["text"].str.upper().str[::-1]  # a second free-text column
    return df


def _fit(df: pd.DataFrame, target: str, kind: str, encoder: str):
    schema = infer_schema(df, target)
    task = infer_task(df[target], target, kind)
    frame, _ = conform(df, schema)
    X = FeaturePipeline(schema).fit(frame).transform(frame)
    y = task.encode(df[target])
    model = TextFinetuneFamily(task, {**SMALL, "encoder": encoder})
    model.fit(Dataset(X.take(np.arange(N_TRAIN)), y[:N_TRAIN]), None, FitContext(seed=0, progress=False, device="cpu"))
    return model, X.take(np.arange(N_TRAIN, len(df)))


def _session(model, sample):
    return ort.InferenceSession(model.to_onnx(sample).SerializeToString(), providers=["CPUExecutionProvider"])


def _feeds(model, X, directory, names):
    assets = model.onnx_assets(directory)
    feeds = {"numeric": X.numeric.astype(np.float32), "categorical": X.categorical.astype(np.int64)}
    for column, asset in assets.items():
        ids, mask = tokens.encode_texts(directory / asset["tokenizer"], X.text[column], asset["max_length"])
        feeds[f"text.{column}.input_ids"], feeds[f"text.{column}.attention_mask"] = ids, mask
    return {k: v for k, v in feeds.items() if k in names}


@pytest.fixture(scope="module")
def binary(tweets, encoder):
    """Two texts, a number and a category → source (Android / iPhone), exported once."""
    model, X = _fit(tweets[["text", "shout", "hour", "day", "source"]], "source", "binary", encoder)
    return model, X, _session(model, X.take(np.arange(4)))


def test_the_graph_declares_the_contract_inputs_and_output(binary):
    model, X, session = binary
    inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
    assert inputs["numeric"] == ("tensor(float)", [inputs["numeric"][1][0], X.numeric.shape[1]])
    assert inputs["categorical"] == ("tensor(int64)", [inputs["numeric"][1][0], 1])
    assert set(inputs) == {"numeric", "categorical", "text.text.input_ids", "text.text.attention_mask",
                           "text.shout.input_ids", "text.shout.attention_mask"}
    batch, length = inputs["text.text.input_ids"][1]
    assert isinstance(batch, str) and isinstance(length, str)  # dynamic rows and tokens
    assert inputs["text.text.attention_mask"] == ("tensor(int64)", [batch, length])
    assert inputs["text.shout.input_ids"][1][0] == batch and inputs["text.shout.input_ids"][1][1] != length
    (output,) = session.get_outputs()
    assert output.name == "outputs" and output.type == "tensor(float)" and output.shape == [batch, 2]


def test_onnx_runtime_gives_the_probabilities_of_predict(binary, tmp_path):
    model, X, session = binary
    names = [i.name for i in session.get_inputs()]
    X = X.take(np.arange(len(X)))  # a copy to spoil
    X.categorical[:3] = [[-1], [999], [0]]  # out-of-range codes are clamped as predict clamps them
    X.numeric[3, model._kept(X)[0]] = np.nan  # a missing number reads as the mean
    feeds = _feeds(model, X, tmp_path, names)
    expected = model.predict(X)
    (got,) = session.run(["outputs"], feeds)
    assert got.dtype == np.float32 and got.shape == expected.shape == (len(X), 2)
    assert np.abs(got - expected).max() < 1e-4
    for i in (0, 5):  # one row alone: no padding, another token length
        one = _feeds(model, X.take(np.array([i])), tmp_path, names)
        assert np.abs(session.run(["outputs"], one)[0] - expected[i]).max() < 1e-4


def test_regression_on_text_alone_reads_only_token_ids(tweets, encoder, tmp_path):
    model, X = _fit(tweets[["text", "likes"]], "likes", "regression", encoder)
    session = _session(model, X.take(np.arange(1)))  # one sample row is enough
    names = [i.name for i in session.get_inputs()]
    assert sorted(names) == ["text.text.attention_mask", "text.text.input_ids"]  # the hashed words are not read
    (got,) = session.run(["outputs"], _feeds(model, X, tmp_path, names))
    expected = model.predict(X)
    assert got.shape == expected.shape == (len(X),) and np.abs(got - expected).max() < 1e-4


def test_encode_texts_gives_the_ids_of_the_hugging_face_tokenizer(binary, tmp_path):
    model, X, _ = binary
    path = tmp_path / model.onnx_assets(tmp_path)["text"]["tokenizer"]
    texts = [*X.text["text"][:50], "", "[SEP] [PAD] naïve café 東京 🙂", "word " * 200]
    ids, mask = tokens.encode_texts(path, texts, 32)
    expected = model._tokenizer(texts, truncation=True, max_length=32)["input_ids"]
    assert ids.dtype == mask.dtype == np.int64 and ids.shape == (len(texts), max(map(len, expected))) == (len(texts), 32)
    for row, want in enumerate(expected):
        n = len(want)
        assert ids[row, :n].tolist() == want and mask[row].sum() == n
        assert (ids[row, n:] == model._tokenizer.pad_token_id).all()
    assert ids[len(texts) - 3, :3].tolist() == [101, 102, 0]  # "" is [CLS] [SEP], then [PAD]
    assert tokens.encode_texts(path, ["a b", "a"], 32)[0].shape == (2, 4)  # padded to the longest, not 32
    assert tokens._load(path, 32) is tokens._load(path, 32)  # loaded once per file and length
    assert [a.shape for a in tokens.encode_texts(path, [], 32)] == [(0, 0), (0, 0)]


def test_a_missing_tokenizer_file_and_an_unfitted_model_raise_our_errors(binary, tmp_path):
    model, X, _ = binary
    with pytest.raises(BundleError, match="tokenizer.json"):
        tokens.encode_texts(tmp_path / "tokenizer.json", ["hello"], 32)
    with pytest.raises(DataError, match="not been fitted"):
        TextFinetuneFamily(model.task, SMALL).to_onnx(X)
