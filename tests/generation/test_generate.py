"""The generate pipeline end to end on a tiny random causal LM: fine-tuning lowers the held-out
perplexity, the bundle round-trips, generation is batched, streamed, stopped and cancelled."""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

import takeoff
from takeoff.errors import BundleError, ColumnNotFoundError, ConfigError, DataError
from takeoff.pipelines.generation.model import GenerativeModel

FAST = {"generate": {"epochs": 4, "learning_rate": 5e-3, "eval_samples": 2, "max_new_tokens": 8, "batch_size": 8}}


@pytest.fixture(scope="module")
def trained(tiny_lm, tmp_path_factory):
    from tests.generation.conftest import PAIRS

    folder = tmp_path_factory.mktemp("gen")
    data = folder / "pairs.csv"
    pd.DataFrame(PAIRS * 8, columns=["question", "answer"]).to_csv(data, index=False)
    model = takeoff.train(data, task="generate", prompt="question", target="answer", base_model=str(tiny_lm),
                          out=folder / "run", time_budget=120, config=FAST)
    return model, folder / "run"


def test_fine_tuning_lowers_held_out_perplexity_and_writes_a_bundle(trained):
    model, run = trained
    metrics, base = model.manifest["metrics"], model.manifest["base_metrics"]
    assert metrics["perplexity"] < base["perplexity"]
    assert {"exact_match", "token_f1", "rouge_l"} <= set(metrics)
    training = model.manifest["training"]
    assert training["method"] == "lora" and 0 < training["trainable_parameters"] < training["parameters"]
    assert (run / "model" / "model.safetensors").is_file() and (run / "model" / "tokenizer.json").is_file()
    assert not list(run.rglob("*.bin")) and not list(run.rglob("*.pkl"))  # never pickle
    report = (run / "report.html").read_text()
    assert "Base model" in report and "Sample answers" in report and "Perplexity" in report
    manifest = json.loads((run / "takeoff.json").read_text())
    assert manifest["task"]["kind"] == "generate" and manifest["generate"]["template"] == "chat"


def test_a_loaded_bundle_generates_what_the_trained_model_did(trained):
    model, run = trained
    loaded = takeoff.load(run)
    assert isinstance(loaded, GenerativeModel)
    prompt = "Where is my parcel?"
    assert loaded.generate(prompt, max_new_tokens=12) == model.generate(prompt, max_new_tokens=12)
    assert loaded.perplexity(["Where is my parcel?"], ["Track it from the orders page."]) == pytest.approx(
        model.perplexity(["Where is my parcel?"], ["Track it from the orders page."]), rel=1e-4)


def test_batched_generation_gives_the_greedy_answers_of_one_at_a_time(tiny_lm):
    model = GenerativeModel.from_folder(tiny_lm)
    prompts = ["hi", "How do I reset my password, please tell me?", "refund"]
    together = model.generate(prompts, max_new_tokens=10)
    alone = [model.generate(p, max_new_tokens=10) for p in prompts]
    assert together == alone


def test_streamed_pieces_join_into_the_completion(tiny_lm):
    model = GenerativeModel.from_folder(tiny_lm)
    request = model.stream("Where is my parcel?", max_new_tokens=16)
    pieces = list(request)
    completion = request.completion
    assert "".join(pieces) == completion.text
    assert completion.finish_reason in ("stop", "length") and completion.prompt_tokens > 0
    assert completion.completion_tokens <= 16 and completion.first_token_s is not None
    assert request.result() is completion and list(request) == []  # read to its end: nothing more, no wait


def test_stop_text_ends_the_answer_before_it(tiny_lm):
    model = GenerativeModel.from_folder(tiny_lm)
    full = model.chat([{"role": "user", "content": "Where is my parcel?"}], max_new_tokens=24).text
    if len(full) < 4:
        pytest.skip("the random model ended at once")
    stop = full[2:4]
    cut = model.chat([{"role": "user", "content": "Where is my parcel?"}], max_new_tokens=24, stop=[stop])
    assert cut.text == full[:full.find(stop)] and cut.finish_reason == "stop"


def test_sampling_with_a_seed_repeats(tiny_lm):
    model = GenerativeModel.from_folder(tiny_lm)
    a = model.generate("hello", max_new_tokens=12, temperature=1.0, seed=7)
    b = model.generate("hello", max_new_tokens=12, temperature=1.0, seed=7)
    assert a == b


def test_a_cancelled_request_stops_and_says_so(tiny_lm):
    model = GenerativeModel.from_folder(tiny_lm)
    request = model.stream("tell me everything", max_new_tokens=400)
    for _ in request:
        request.cancel()
        break
    done = threading.Event()
    threading.Thread(target=lambda: (request.result(), done.set()), daemon=True).start()
    assert done.wait(30)
    assert request.completion.finish_reason in ("cancelled", "stop")
    assert request.completion.completion_tokens < 400


def test_the_plain_template_without_a_chat_template(tiny_plain_lm, tmp_path):
    from tests.generation.conftest import PAIRS

    data = tmp_path / "pairs.jsonl"
    pd.DataFrame(PAIRS * 4, columns=["q", "a"]).to_json(data, orient="records", lines=True)
    model = takeoff.train(data, task="generate", prompt="q", target="a", base_model=str(tiny_plain_lm),
                          time_budget=60, config={"generate": {**FAST["generate"], "method": "full", "epochs": 1}})
    assert model.manifest["generate"]["template"] == "plain"
    assert model.manifest["training"]["trainable_parameters"] == model.manifest["training"]["parameters"]
    text = model.template.prompt([{"role": "user", "content": "hi"}])
    assert text.endswith("### User:\nhi\n\n### Assistant:\n")


def test_chat_json_lines_train_on_the_last_assistant_turn(tiny_lm, tmp_path):
    lines = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q},
                           {"role": "assistant", "content": a}]} for q, a in [("hi", "hello"), ("bye", "goodbye")] * 5]
    lines.append({"messages": [{"role": "user", "content": "empty"}, {"role": "assistant", "content": " "}]})
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in lines))
    model = takeoff.train(data, task="generate", base_model=str(tiny_lm), time_budget=60,
                          config={"generate": {**FAST["generate"], "epochs": 1}})
    assert model.manifest["training"]["pairs"] == 10
    assert any("empty" in note for note in model.notes)


# ---------------------------------------------------------------------------------- bad input
def test_a_missing_prompt_column_is_named(tiny_lm, pairs_csv):
    with pytest.raises(ColumnNotFoundError, match="prompt"):
        takeoff.train(pairs_csv, task="generate", prompt="nope", target="answer", base_model=str(tiny_lm))
    with pytest.raises(ConfigError, match="--prompt"):
        takeoff.train(pairs_csv, task="generate", target="answer", base_model=str(tiny_lm))


def test_empty_answers_are_skipped_and_all_empty_refused(tiny_lm, tmp_path):
    from takeoff.pipelines.generation.data import read_pairs

    df = pd.DataFrame({"q": ["a", "b", "c"], "a": ["x", "", None]})
    pairs = read_pairs(df, "t.csv", "q", "a")
    assert len(pairs) == 1 and "2 row(s) with an empty 'a' were skipped" in pairs.notes[0]
    with pytest.raises(DataError, match="nothing to learn"):
        read_pairs(pd.DataFrame({"q": ["a"], "a": [""]}), "t.csv", "q", "a")


def test_pairs_longer_than_the_context_are_truncated_or_refused(tiny_lm):
    from transformers import AutoTokenizer

    from takeoff.pipelines.generation.sft import encode_pairs
    from takeoff.pipelines.generation.template import Template

    template = Template(AutoTokenizer.from_pretrained(str(tiny_lm)))
    long = [[{"role": "user", "content": "word " * 200}]]
    examples, notes = encode_pairs(template, long, ["short answer"], 64, "truncate")
    assert len(examples[0].ids) <= 64 and "1 pair(s) longer than 64 tokens were truncated" in notes[0]
    answer_ids = examples[0].ids[examples[0].start:]
    assert template.tokenizer.decode(answer_ids).startswith("short answer")  # the answer is kept whole
    with pytest.raises(DataError, match="rows 0"):
        encode_pairs(template, long, ["short answer"], 64, "refuse")


def test_a_base_folder_without_weights_or_tokenizer_names_what_is_missing(tiny_lm, tmp_path):
    import shutil

    from takeoff.pipelines.generation.base_models import resolve_base

    broken = tmp_path / "broken"
    shutil.copytree(tiny_lm, broken)
    (broken / "model.safetensors").unlink()
    (broken / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"missing weights \(model.safetensors\), a tokenizer"):
        resolve_base(broken)


def test_an_unknown_base_model_lists_where_it_looked(tmp_path, monkeypatch):
    from takeoff.pipelines.generation.base_models import BaseModelNotFoundError, resolve_base

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(BaseModelNotFoundError, match="never") as error:
        resolve_base("someorg/no-such-model")
    assert "Hugging Face cache" in str(error.value)


def test_a_model_in_the_hugging_face_cache_is_found_offline(tiny_lm, tmp_path, monkeypatch):
    import shutil

    from takeoff.pipelines.generation.base_models import resolve_base

    snapshot = tmp_path / "hub" / "models--someorg--tiny" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_lm, snapshot)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_base("someorg/tiny") == snapshot


def test_a_gguf_file_transformers_cannot_read_is_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    from takeoff.pipelines.generation.base_models import resolve_base

    monkeypatch.setenv("TAKEOFF_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ConfigError, match="cannot be read by transformers"):
        resolve_base(bad)
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())


def test_absurd_generation_arguments_are_refused(tiny_lm):
    model = GenerativeModel.from_folder(tiny_lm)
    with pytest.raises(DataError, match="max_new_tokens must be a whole number from 1 to 8192"):
        model.generate("hi", max_new_tokens=10**9)
    with pytest.raises(DataError, match="temperature"):
        model.generate("hi", temperature=-1)
    with pytest.raises(DataError, match="role"):
        model.chat([{"role": "wizard", "content": "hi"}])
    with pytest.raises(DataError, match="context"):
        GenerativeModel(dict(model.manifest, generate={**model.manifest["generate"], "on_long": "refuse"}),
                        model.folder).generate("word " * 2000, max_new_tokens=8)
