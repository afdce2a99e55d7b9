"""The answerer through the public API: cited answers, refusals, the bundle, the streaming
contract the server builds on, evaluation; with the real MiniLM encoder and a tiny generator."""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

import takeoff
from takeoff.errors import BundleError, DataError
from takeoff.pipelines.answers import AnswerModel, AnswerStream, Citation, GroundedCompletion, evaluate_answers
from takeoff.pipelines.answers.evaluate import choose_min_score, cites
from takeoff.pipelines.generation.engine import Completion

REFUND = "How can I get my money back for an unused item?"


def test_answer_cites_the_passage_that_answers(answerer):
    reply = answerer.answer(REFUND)
    assert not reply.refused and isinstance(reply.text, str)
    first = reply.citations[0]
    assert (first.source, first.section) == ("help/billing.html", "Billing > Refunds")
    assert "thirty days" in first.text
    assert all(c.score >= answerer.spec["min_score"] for c in reply.citations[1:])
    assert reply.to_dict()["citations"][0]["source"] == "help/billing.html"
    wheres = {(c.source, c.section) for q in ("How do I install a .deb package file?", "my parcel never arrived",
                                               "is a repair free under warranty?")
              for c in answerer.answer(q).citations[:1]}
    assert wheres == {("install.md", "Installing > From a .deb file"), ("shipping.txt", "Shipping > Lost parcels"),
                      ("warranty.pdf", "Repairs (page 2)")}


def test_refuses_below_min_score_without_generating(answerer, monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("a refusal must not generate")

    monkeypatch.setattr(type(answerer.generator), "stream_chat", no_generation)
    reply = answerer.answer("What is the boiling point of mercury in Kelvin?")
    assert reply.refused and reply.citations == []
    assert reply.text == "I could not find this in the documents."
    best = answerer.search(REFUND, k=1)[0].score
    assert answerer.answer(REFUND, min_score=min(1.0, best + 0.01)).refused  # the threshold decides
    citations, refused = answerer.retrieve(REFUND, min_score=best + 0.01)
    assert refused and citations == []


def test_prompt_numbers_the_passages_and_fits_the_context(answerer):
    citations = answerer.search(REFUND)
    prompt = answerer.grounded_prompt(REFUND, citations)
    assert prompt.startswith("Answer the question using only the numbered passages")
    assert "[1] (help/billing.html — Refunds)" in prompt and "[2] (" in prompt
    assert prompt.rstrip().endswith(f"Question: {REFUND}")
    long = [Citation("big.md", "Big", "word " * 3000, 0.9), Citation("big2.md", "Big 2", "other " * 3000, 0.8)]
    conversation = answerer.prompt_messages([{"role": "user", "content": REFUND}], REFUND, long, 64)
    generator = answerer.generator
    size = len(generator.engine.encode(generator.template.prompt(conversation)))
    assert size <= generator.context_length - 64  # tiny model: 512 tokens of context
    assert conversation[-1]["content"].endswith(f"Question: {REFUND}")


def test_bundle_round_trip(answerer, tmp_path):
    manifest = json.loads((answerer.path / "takeoff.json").read_text())
    assert manifest["task"]["kind"] == "answer"
    assert {"index/vectors.safetensors", "index/rows.json", "generator/model/model.safetensors",
            "report.html"} <= set(manifest["files"])
    assert manifest["answer"]["documents"]["files"] == 4
    assert manifest["answer"]["documents"]["skipped"] == []
    assert not any(name.endswith((".pkl", ".pt", ".bin")) for name in manifest["files"])
    copy = takeoff.load(answerer.save(tmp_path / "copy"))
    assert isinstance(copy, AnswerModel) and len(copy) == len(answerer)
    a, b = answerer.answer(REFUND), copy.answer(REFUND)
    assert a.to_dict() == b.to_dict()  # same passages, same scores, same (greedy) text
    (tmp_path / "copy" / "index" / "rows.json").write_text("{}")
    with pytest.raises(BundleError, match="rows.json"):
        takeoff.load(tmp_path / "copy")


def test_stream_chat_contract(answerer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "Hi! How can I help?"}, {"role": "user", "content": REFUND}]
    stream = answerer.stream_chat(messages, max_new_tokens=6, temperature=0.0, top_p=1.0, stop=None, seed=1)
    assert isinstance(stream, AnswerStream)
    assert stream.refused is False and stream.citations[0].section == "Billing > Refunds"  # before any token
    pieces = list(stream)
    completion = stream.completion
    assert isinstance(completion, GroundedCompletion) and isinstance(completion, Completion)
    assert completion.text == "".join(pieces) and completion.completion_tokens <= 6
    assert completion.finish_reason in ("stop", "length") and completion.prompt_tokens > 50
    assert completion.citations == stream.citations and completion.refused is False
    assert stream.result() is completion
    done = answerer.chat(messages, max_new_tokens=6, seed=1)
    assert isinstance(done, GroundedCompletion) and done.text == completion.text
    assert done.to_dict()["citations"][0]["section"] == "Billing > Refunds" and done.to_dict()["refused"] is False


def test_stream_chat_refusal_and_cancel(answerer):
    refusal = answerer.stream_chat([{"role": "user", "content": "Who won the 1966 football world cup?"}])
    assert refusal.refused and refusal.citations == [] and refusal.done
    assert list(refusal) == ["I could not find this in the documents."]
    assert refusal.completion.finish_reason == "stop" and refusal.completion.completion_tokens == 0
    refusal.cancel()  # nothing to stop: harmless
    stream = answerer.stream_chat([{"role": "user", "content": REFUND}], max_new_tokens=300)
    stream.cancel()
    result = []
    reader = threading.Thread(target=lambda: result.append(stream.result()))
    reader.start()
    reader.join(timeout=60)
    assert result and result[0].finish_reason == "cancelled" and result[0].completion_tokens < 300
    assert result[0].citations == stream.citations


def test_bad_input_is_refused_clearly(answerer):
    with pytest.raises(DataError, match="no user message"):
        answerer.stream_chat([{"role": "system", "content": "x"}])
    with pytest.raises(DataError, match="messages"):
        answerer.stream_chat("not a list")
    with pytest.raises(DataError, match="max_new_tokens"):
        answerer.answer(REFUND, max_new_tokens=0)
    with pytest.raises(DataError, match="max_new_tokens"):  # checked even when the answer is a refusal
        answerer.answer("Who won the 1966 football world cup?", max_new_tokens=10**6)
    with pytest.raises(DataError, match="question"):
        answerer.answer("  ")
    with pytest.raises(DataError, match="k must be"):
        answerer.answer(REFUND, k=0)


def test_answer_batch(answerer):
    replies = answerer.answer_batch([REFUND, "Who won the 1966 football world cup?"], max_new_tokens=4)
    assert [r.refused for r in replies] == [False, True]
    assert replies[0].citations[0].section == "Billing > Refunds"


def test_evaluate_answers(answerer):
    result = evaluate_answers(
        answerer, [REFUND, "How long until a lost parcel is replaced?", "can I pay by cheque?"],
        expected_sources=["billing.html", "shipping.txt", None],
        expected_sections=["Refunds", "Lost parcels", "Invoices"],
        unanswerable=["Who won the 1966 football world cup?", "What is the boiling point of mercury?"])
    m = result["metrics"]
    assert m["answerable"] == 3 and m["unanswerable"] == 2 and m["k"] == 4
    ranks = [r["rank"] for r in result["answerable"]]
    assert ranks[:2] == [1, 1]
    assert m["hit@1"] == sum(r == 1 for r in ranks) / 3 and m["hit@4"] == sum(r is not None for r in ranks) / 3
    assert m["citation_accuracy"] <= m["hit@1"]
    assert m["refusal_rate"] == 1.0 and 0 <= m["false_refusal_rate"] <= 1
    with pytest.raises(DataError, match="neither"):
        evaluate_answers(answerer, ["q?"], expected_sources=[None], expected_sections=[None])


def test_citation_matching_and_threshold_choice():
    cited = Citation("faq/pkgtools.en.html", "Chapter 8. Tools > 8.4. How do I list files?", "", 0.7)
    assert cites(cited, "pkgtools.en.html", "How do I list files?")
    assert cites(cited, None, "8.4. How do I list files?") and cites(cited, None, "Chapter 8. Tools > 8.4. How do I list files?")
    assert not cites(cited, "kernel.en.html", "How do I list files?") and not cites(cited, None, "Tools")
    assert choose_min_score([0.6, 0.7, 0.8], [0.1, 0.2, 0.3]) == pytest.approx(0.45)
    assert choose_min_score([0.5, 0.6], [0.55, 0.1]) in (0.3, 0.575)  # two best thresholds, each the middle of its gap


def test_build_with_evaluation_questions_reports_them(docs, tiny_lm, tmp_path):
    questions = tmp_path / "questions.csv"
    pd.DataFrame({"question": [REFUND, "My parcel never came, what now?", "Who won the 1966 football world cup?"],
                  "source": ["billing.html", "shipping.txt", None],
                  "section": ["Refunds", "Lost parcels", None]}).to_csv(questions, index=False)
    import shutil

    folder = shutil.copytree(docs, tmp_path / "docs")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4\n%%EOF truncated")  # unreadable: skipped, listed
    out = tmp_path / "evaluated"
    model = takeoff.train(folder, task="answer", generator=str(tiny_lm), out=out,
                          config={"answer": {"questions": str(questions)}})
    assert model.spec["documents"]["skipped"][0]["file"] == "scan.pdf"
    m = model.metrics
    assert (m["answerable"], m["unanswerable"]) == (2, 1)
    assert m["hit@1"] == 1.0 and m["citation_accuracy"] == 1.0 and m["refusal_rate"] == 1.0
    report = (out / "report.html").read_text()
    assert "Citation accuracy" in report and "My parcel never came" in report and "warranty.pdf" in report
    assert "Files skipped" in report and "scan.pdf" in report
    assert takeoff.load(out).metrics == m


def test_a_generate_bundle_as_generator_and_a_referenced_one(docs, tiny_lm, tmp_path):
    import shutil

    from takeoff.pipelines.generation import GenerativeModel

    assistant = GenerativeModel.from_folder(tiny_lm, name="tiny", system="You answer support questions.")
    assistant.save(tmp_path / "assistant")
    built = takeoff.train(docs, task="answer", generator=str(tmp_path / "assistant"), out=tmp_path / "a")
    generator = takeoff.load(tmp_path / "a").generator
    assert generator.manifest["generate"]["system"] == "You answer support questions."
    assert built.spec["generator"]["base_model"] == "tiny"

    own = shutil.copytree(tiny_lm, tmp_path / "own-model")
    takeoff.train(docs, task="answer", generator=str(own), out=tmp_path / "ref",
                  config={"answer": {"embed_generator": False}})
    manifest = json.loads((tmp_path / "ref" / "takeoff.json").read_text())
    assert not any(name.startswith("generator/") for name in manifest["files"])
    referenced = takeoff.load(tmp_path / "ref")
    assert not referenced.answer(REFUND, max_new_tokens=2).refused
    (own / "config.json").write_text((own / "config.json").read_text().replace("{", '{"edited": 1, ', 1))
    with pytest.raises(BundleError, match="differs"):
        takeoff.load(tmp_path / "ref").answer(REFUND, max_new_tokens=2)


def test_keywords_reorder_but_refusal_follows_meaning():
    import numpy as np

    from takeoff.pipelines.answers.retrieval import KeywordIndex, hybrid_search, words

    assert words("How do I install the packages with dpkg-deb?") == ["install", "package", "dpkg", "deb"]
    texts = ["upgrading the whole system safely", "dpkg-deb unpacks a package archive", "the weather today"]
    keywords = KeywordIndex(texts)
    assert keywords.scores("what does dpkg-deb do?").argmax() == 1
    vectors = np.eye(3, dtype=np.float32)
    query = np.array([[0.8, 0.6, 0.0]], dtype=np.float32)  # closest in meaning to row 0
    by_meaning = hybrid_search(vectors, keywords, query, ["what does dpkg-deb do?"], 2, 0.0)[0]
    with_keywords = hybrid_search(vectors, keywords, query, ["what does dpkg-deb do?"], 2, 0.5)[0]
    assert by_meaning[0] == [0, 1] and with_keywords[0] == [1, 0]
    assert with_keywords[1] == pytest.approx([0.6, 0.8]) and with_keywords[2] == pytest.approx(0.8)
