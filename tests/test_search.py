"""Semantic search (`takeoff index`, `takeoff search`, ``takeoff.pipelines.search``): a small customer
service FAQ, asked in other words than its questions, with the real MiniLM encoder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import takeoff
from takeoff.cli import app
from takeoff.errors import ColumnNotFoundError, DataError
from takeoff.models.encoder import EncoderNotFoundError
from takeoff.pipelines.search import SearchIndex, build_index, top_k

FAQ = [
    ("How do I reset my password?", "Click 'Forgot password' on the sign-in page and follow the link we email you."),
    ("How can I get a refund for my order?", "Refunds are issued to the original payment method within 5 business days of approval."),
    ("How long does shipping take?", "Standard delivery takes 3 to 5 working days; express delivery arrives the next day."),
    ("How do I cancel my subscription?", "Go to Account > Subscription and choose 'Cancel plan'; you keep access until the period ends."),
    ("How can I change the email address on my account?", "Open Account settings, edit the email field and confirm the change from your new inbox."),
    ("Where can I download my invoices?", "Every invoice is a PDF under Account > Billing > Invoices."),
    ("Which payment methods do you accept?", "We accept Visa, Mastercard, American Express, PayPal and bank transfer."),
    ("How do I track my package?", "Use the tracking number in your shipping confirmation email on the carrier's site."),
    ("Can I return an item I bought?", "Unused items can be sent back within 30 days; print the return label from your orders page."),
    ("How do I delete my account?", "Write to privacy@example.com from your account email and we erase your data within 30 days."),
    ("Do you ship internationally?", "We deliver to 40 countries; customs duties are paid by the recipient."),
    ("How do I update my credit card details?", "Under Account > Billing, choose 'Payment method' and enter the new card."),
    ("How can I contact customer support?", "Chat with us from the help page, 8am to 8pm, or call 0800 123 456."),
    ("Is my personal data secure?", "Your data is encrypted in transit and at rest, and never sold to third parties."),
    ("How do I turn on two-factor authentication?", "In Security settings, choose 'Two-step verification' and scan the QR code with an authenticator app."),
]

# (paraphrase, index of the FAQ entry it asks about): different words, same meaning
PARAPHRASES = [
    ("I forgot my login secret", 0),
    ("I can't remember the code to sign in", 0),
    ("I want my money back", 1),
    ("When will my parcel arrive?", 2),
    ("stop my monthly plan", 3),
    ("I need to use a different e-mail for my profile", 4),
    ("where do I find my bills?", 5),
    ("can I pay with PayPal?", 6),
    ("where is my delivery right now?", 7),
    ("I'd like to send back a product", 8),
    ("please remove my profile and all my information", 9),
    ("do you deliver abroad?", 10),
    ("my card expired, how do I add a new one", 11),
    ("how can I speak to a human?", 12),
    ("is my information kept safe?", 13),
    ("enable 2FA", 14),
]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def faq() -> pd.DataFrame:
    return pd.DataFrame({"question": [q for q, _ in FAQ], "answer": [a for _, a in FAQ],
                         "topic_id": list(range(100, 100 + len(FAQ)))})


@pytest.fixture(scope="module")
def index(faq, tmp_path_factory) -> SearchIndex:
    return build_index(faq, text="question", answer="answer", out=tmp_path_factory.mktemp("faq") / "faq")


# ----------------------------------------------------------------------------- quality
def test_paraphrased_questions_find_their_answers(index):
    results = index.search_batch([p for p, _ in PARAPHRASES], k=3)
    ranks = []
    for (query, want), hits in zip(PARAPHRASES, results):
        answers = [h["answer"] for h in hits]
        ranks.append(answers.index(FAQ[want][1]) if FAQ[want][1] in answers else None)
        assert ranks[-1] is not None, f"{query!r} did not find {FAQ[want][0]!r} in the top 3: {[h['text'] for h in hits]}"
    first = sum(r == 0 for r in ranks) / len(ranks)
    assert first >= 0.8, f"only {first:.0%} of paraphrases rank their answer first: {ranks}"


def test_a_hit_carries_score_text_answer_row_and_metadata(index):
    hits = index.search("I forgot my login secret", k=4)
    assert len(hits) == 4
    top = hits[0]
    assert set(top) == {"score", "text", "answer", "row", "topic_id"}
    assert top["text"] == FAQ[0][0] and top["answer"] == FAQ[0][1] and top["row"] == 0 and top["topic_id"] == 100
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0
    assert index.search("refund", k=100)[-1]["row"] in range(len(FAQ))  # k above the rows: every row once
    assert len(index.search("refund", k=100)) == len(FAQ)


def test_vectors_are_normalised_float32(index):
    assert index.vectors.dtype == np.float32 and index.vectors.shape == (len(FAQ), 384)
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)


# ----------------------------------------------------------------------------- bundle
def test_bundle_round_trip_gives_identical_results(index):
    loaded = takeoff.load(index.path)
    assert isinstance(loaded, SearchIndex) and loaded.version == index.version
    assert loaded.manifest["task"]["kind"] == "search"
    assert (index.path / "encoder" / "config.json").is_file()  # the encoder travels with the bundle
    queries = [p for p, _ in PARAPHRASES]
    assert loaded.search_batch(queries, k=5) == index.search_batch(queries, k=5)
    np.testing.assert_array_equal(loaded.vectors, index.vectors)


def test_cli_index_and_search(faq, tmp_path):
    data = tmp_path / "faq.csv"
    faq.assign(question=faq["question"].where(faq.index != 3, "")).to_csv(data, index=False)
    out = tmp_path / "bundle"
    result = run("index", data, "--text", "question", "--answer", "answer", "--out", out, "--reference-encoder")
    assert result.exit_code == 0, result.output
    assert "1 row(s) with an empty 'question' were skipped" in result.output
    assert not (out / "encoder").exists()  # referenced by name and sha256
    result = run("search", out, "I want my money back", "-k", "2", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["query"] == "I want my money back" and len(answer["hits"]) == 2
    assert answer["hits"][0]["answer"] == FAQ[1][1]
    assert answer["hits"] == takeoff.load(out).search("I want my money back", k=2)
    table = run("search", out, "I want my money back")
    assert table.exit_code == 0 and "Refunds are issued" in table.stdout


def test_cli_search_refuses_a_table_model(fixtures):
    result = run("search", fixtures / "bundle-v1", "anything")
    assert result.exit_code == 2 and "not a search index" in result.output


# ----------------------------------------------------------------------------- bad input
def test_empty_texts_are_skipped_with_a_note_and_duplicates_kept(faq):
    df = pd.concat([faq, pd.DataFrame({"question": [None, "   ", FAQ[0][0]], "answer": ["a", "b", "dup"],
                                       "topic_id": [1, 2, 3]})], ignore_index=True)
    index = build_index(df, text="question", answer="answer")
    assert len(index) == len(FAQ) + 1
    assert any("2 row(s) with an empty 'question' were skipped" in n and str(len(FAQ)) in n for n in index.notes)
    assert index.manifest["training"]["skipped_empty"] == 2
    rows = {h["row"] for h in index.search(FAQ[0][0], k=2)}
    assert rows == {0, len(FAQ) + 2}  # both copies, by their rows in the table


def test_missing_columns_are_named(faq):
    with pytest.raises(ColumnNotFoundError, match="text column 'questoin' not found.*Did you mean 'question'"):
        build_index(faq, text="questoin")
    with pytest.raises(ColumnNotFoundError, match="answer column 'reply'"):
        build_index(faq, text="question", answer="reply")


def test_all_empty_texts_are_an_error():
    with pytest.raises(DataError, match="nothing to index"):
        build_index(pd.DataFrame({"q": ["", None]}), text="q")


def test_unknown_encoder_is_refused(faq, tmp_path):
    with pytest.raises(EncoderNotFoundError, match="no-such-org/no-such-encoder"):
        build_index(faq, text="question", encoder="no-such-org/no-such-encoder")
    faq.to_csv(tmp_path / "faq.csv", index=False)
    result = run("index", tmp_path / "faq.csv", "--text", "question", "--encoder", "nope", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "text encoder 'nope' was not found" in result.output  # not on this machine
    assert not (tmp_path / "out").exists()


def test_bad_queries_and_k(index):
    with pytest.raises(DataError, match="k must be"):
        index.search("refund", k=0)
    with pytest.raises(DataError, match="list of strings"):
        index.search_batch([1, 2])
    assert index.search_batch([], k=3) == []


# ----------------------------------------------------------------------------- exact top-k
def test_chunked_top_k_is_exact():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5000, 16)).astype(np.float32)
    queries = rng.standard_normal((3, 16)).astype(np.float32)
    rows, scores = top_k(vectors, queries, 7, chunk_scores=3000)  # many chunks
    full = queries @ vectors.T
    np.testing.assert_array_equal(rows, np.argsort(-full, axis=1, kind="stable")[:, :7])
    np.testing.assert_allclose(scores, np.take_along_axis(full, rows, axis=1), rtol=1e-6)
    small_rows, _ = top_k(vectors[:4], queries, 10)
    assert small_rows.shape == (3, 4)


# ----------------------------------------------------------------------------- serving and CLI guards
def test_a_search_index_object_can_be_served_from_a_dict(index, fixtures):
    from fastapi.testclient import TestClient

    from takeoff.errors import ConfigError
    from takeoff.serving import create_app
    from takeoff.serving.store import load_store

    store = load_store({"faq": index, "cancer": takeoff.load(fixtures / "bundle-v1")})
    assert store.get("faq") is index and store.names() == ["faq", "cancer"]
    with pytest.raises(ConfigError, match="SearchIndex"):
        load_store({"faq": "not a model"})
    with TestClient(create_app({"faq": index})) as client:
        response = client.post("/v1/search", json={"query": "I want my money back", "k": 2})
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["hits"] == index.search("I want my money back", k=2)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_cli_evaluate_and_predict_refuse_a_search_index(index, tmp_path, command):
    data = tmp_path / "rows.csv"
    pd.DataFrame({"question": ["refund"]}).to_csv(data, index=False)
    extra = ["-o", tmp_path / "out.csv"] if command == "predict" else []
    result = run(command, index.path, data, *extra)
    assert result.exit_code == 2, result.output
    assert "is a search index" in result.output and "takeoff search" in result.output
    assert not (tmp_path / "out.csv").exists()
