"""The OpenAI-compatible routes over generative bundles, through the real ``openai`` client
against real servers on 127.0.0.1: chat and text completions, streamed or not, the models
list, usage, stop strings, the limits and errors, the bearer key, the metrics, a client that
disconnects mid-stream, and an answer model's citations (a test double of the contract).

The model is the tiny random test LM (``generate_bundle`` in conftest.py): its text is
gibberish, so answers are compared with what the same bundle generates in-process.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import takeoff
from answer_double import CITATIONS, REFUSAL, FakeAnswerModel
from api_client import TIMEOUT, assert_error, get, post

openai = pytest.importorskip("openai", reason="the OpenAI protocol tests need the openai client (pip install 'takeoff[test]')")

HELLO = [{"role": "user", "content": "How do I reset my password?"}]
KEY = "s3cret-key"


def metric(text: str, name: str, **labels) -> float:
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture(scope="module")
def local(generate_bundle):
    """The bundle loaded in this process: what the server's answers are compared with."""
    return takeoff.load(generate_bundle)


@pytest.fixture(scope="module")
def gen_url(start_server, generate_bundle) -> str:
    """A server over the bundle directory alone: served as "tiny-chat", the default model."""
    return start_server(generate_bundle)


@pytest.fixture(scope="module")
def client(gen_url):
    return openai.OpenAI(base_url=f"{gen_url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def mixed(start_server, generate_bundle, fixtures):
    """A keyed server over a generative model (whose streams are recorded), an answer model (a
    test double) and a table model; returns (url, recorded streams, the answer double)."""
    model = takeoff.load(generate_bundle)
    streams = []
    original = model.stream_chat

    def recorded(messages, **options):
        stream = original(messages, **options)
        streams.append(stream)
        return stream

    model.stream_chat = recorded
    answer = FakeAnswerModel(model)
    url = start_server({"tiny": model, "faq": answer, "cancer": takeoff.load(fixtures / "bundle-v1")},
                       api_key=KEY, max_tokens_limit=4000)
    return url, streams, answer


@pytest.fixture(scope="module")
def keyed(mixed):
    return openai.OpenAI(base_url=f"{mixed[0]}/v1", api_key=KEY, max_retries=0, timeout=60)


# ----------------------------------------------------------------------------- models
def test_models_list_speaks_both_shapes(client, gen_url):
    assert [m.id for m in client.models.list()] == ["tiny-chat"]
    body = get(f"{gen_url}/v1/models").json()
    assert body["object"] == "list" and body["data"][0]["owned_by"] == "takeoff" and body["data"][0]["object"] == "model"
    assert body["default"] == "tiny-chat"  # takeoff's own keys are still there
    summary = body["models"][0]
    assert summary["task"] == "generate" and summary["context_length"] == 4096 and summary["base_model"] == "tiny"
    assert summary["default"] is True  # it answers the completions that name no model
    detail = get(f"{gen_url}/v1/models/tiny-chat").json()
    assert detail["routes"] == {"chat_completions": "/v1/chat/completions", "completions": "/v1/completions"}
    assert detail["max_tokens_limit"] == 2048


# ----------------------------------------------------------------------------- chat
def test_chat_completion_is_what_the_bundle_generates(client, local):
    reply = client.chat.completions.create(model="tiny-chat", messages=HELLO, max_tokens=12)
    expected = local.chat(HELLO, max_new_tokens=12)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == "tiny-chat" and reply.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and choice.message.content == expected.text
    assert choice.finish_reason == "length"  # the random model never says its end token this early
    assert reply.usage.prompt_tokens == expected.prompt_tokens > 5
    assert reply.usage.completion_tokens == 12 and reply.usage.total_tokens == expected.prompt_tokens + 12


def test_streamed_chat_gives_the_same_text_in_pieces(client, local):
    chunks = list(client.chat.completions.create(model="tiny-chat", messages=HELLO, max_tokens=10, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 2
    assert "".join(pieces) == local.chat(HELLO, max_new_tokens=10).text
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert {c.id for c in chunks} == {chunks[0].id} and all(c.object == "chat.completion.chunk" for c in chunks)


def test_stream_is_server_sent_events_ending_in_done(gen_url):
    with httpx.stream("POST", f"{gen_url}/v1/chat/completions", timeout=TIMEOUT,
                      json={"messages": HELLO, "max_tokens": 3, "stream": True}) as response:  # no "model": the default
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "length"


def test_stop_ends_the_answer_before_the_stop_text(client, local):
    full = local.chat(HELLO, max_new_tokens=40).text
    stop = full.strip()[:2] or full[5:7]  # a text the answer really contains, after at least one other character
    cut = full.find(stop)
    reply = client.chat.completions.create(model="tiny-chat", messages=HELLO, max_tokens=40, stop=[stop])
    assert reply.choices[0].message.content == full[:cut]
    assert reply.choices[0].finish_reason == "stop"


def test_sampling_with_a_seed_repeats(client):
    ask = dict(model="tiny-chat", messages=HELLO, max_tokens=8, temperature=1.0, top_p=0.9, seed=7)
    first = client.chat.completions.create(**ask).choices[0].message.content
    assert client.chat.completions.create(**ask).choices[0].message.content == first


# ----------------------------------------------------------------------------- text completions
def test_text_completions_one_choice_per_prompt(client, local):
    reply = client.completions.create(model="tiny-chat", prompt=["The quick brown", "Refunds are"], max_tokens=5)
    expected = [r.result() for r in local.complete(["The quick brown", "Refunds are"], max_new_tokens=5)]
    assert reply.object == "text_completion"
    assert [c.index for c in reply.choices] == [0, 1]
    assert [c.text for c in reply.choices] == [e.text for e in expected]
    assert reply.usage.prompt_tokens == sum(e.prompt_tokens for e in expected)
    assert reply.usage.completion_tokens == 10
    streamed = list(client.completions.create(model="tiny-chat", prompt="The quick brown", max_tokens=5, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == expected[0].text
    assert streamed[-1].choices[0].finish_reason == "length"


# ----------------------------------------------------------------------------- errors
def test_bad_requests_are_400_naming_the_problem(client, gen_url, local):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tiny-chat", messages=HELLO, max_tokens=5000)
    error = caught.value.body
    assert error["code"] == "max_tokens_above_limit" and error["param"] == "max_tokens"
    assert "2048" in error["message"] and "max_tokens_limit" in error["message"]

    with pytest.raises(openai.BadRequestError, match="n=1"):
        client.chat.completions.create(model="tiny-chat", messages=HELLO, n=2)
    with pytest.raises(openai.BadRequestError, match="robot"):
        client.chat.completions.create(model="tiny-chat", messages=[{"role": "robot", "content": "hi"}])
    with pytest.raises(openai.NotFoundError, match="tiny-chat"):  # the message lists the models there are
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    with pytest.raises(openai.BadRequestError, match="context"):  # 4,096 tokens of context
        client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "reset " * 5000}])
    long = [{"role": "user", "content": "reset " * 4000}]  # about 4,000 tokens
    room = 4096 - len(local.engine.encode(local.template.prompt(long)))
    assert 0 < room < 200
    with pytest.raises(openai.BadRequestError, match=f"ask for at most {room} tokens"):  # prompt + max_tokens > context
        client.chat.completions.create(model="tiny-chat", messages=long, max_tokens=room + 1)
    reply = client.chat.completions.create(model="tiny-chat", messages=long)  # no max_tokens: what fits in the context
    assert 0 < reply.usage.completion_tokens <= room
    assert reply.usage.completion_tokens == room or reply.choices[0].finish_reason == "stop"

    for body, field in (({"messages": []}, "messages"), ({"messages": HELLO, "temperature": 3}, "temperature"),
                        ({"messages": HELLO, "logprobs": True}, "logprobs"), ({"prompt": [1, 2, 3]}, "prompt")):
        route = "completions" if "prompt" in body else "chat/completions"
        error = assert_error(post(f"{gen_url}/v1/{route}", json=body), 400)
        assert error["param"] == field or error["param"].startswith(field), error
    assert_error(post(f"{gen_url}/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}),
                 400, "invalid_json")
    assert_error(post(f"{gen_url}/v1/predict", json={"a": 1}), 409, "wrong_task")  # and it says where to go
    assert "/v1/chat/completions" in post(f"{gen_url}/v1/predict", json={"a": 1}).json()["error"]["message"]


# ----------------------------------------------------------------------------- auth, other kinds
def test_the_client_key_is_the_server_key(mixed, keyed):
    url = mixed[0]
    assert keyed.chat.completions.create(model="tiny", messages=HELLO, max_tokens=2).usage.completion_tokens == 2
    wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="tiny", messages=HELLO, max_tokens=2)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    assert {m.id for m in keyed.models.list()} == {"tiny", "faq", "cancer"}


def test_a_model_that_does_not_generate_says_what_it_does(mixed, keyed):
    with pytest.raises(openai.BadRequestError) as caught:
        keyed.chat.completions.create(model="cancer", messages=HELLO)
    assert caught.value.body["code"] == "wrong_task"
    assert "/v1/models/cancer/predict" in caught.value.body["message"] and "tiny, faq" in caught.value.body["message"]
    url = mixed[0]
    error = assert_error(post(f"{url}/v1/chat/completions", json={"messages": HELLO}, headers={"Authorization": f"Bearer {KEY}"}),
                         404, "model_not_found")  # two generative models and no "model": which one?
    assert "tiny, faq" in error["message"]
    with pytest.raises(openai.BadRequestError, match="chat/completions only"):
        keyed.completions.create(model="faq", prompt="hello")  # an answer model answers chat only


def test_an_answer_model_cites_its_sources(mixed, keyed, local):
    reply = keyed.chat.completions.create(model="faq", messages=HELLO, max_tokens=6)
    message = reply.choices[0].message
    generated = local.chat(HELLO, max_new_tokens=6).text
    assert message.content == generated + "\n\nSources:\n[1] docs/serving.md — Limits\n[2] docs/generate.md"
    assert [c["source"] for c in message.citations] == [c.source for c in CITATIONS]
    assert message.citations[0] == {"index": 1, "source": "docs/serving.md", "section": "Limits",
                                    "text": CITATIONS[0].text, "score": CITATIONS[0].score}
    assert message.refused is False

    chunks = list(keyed.chat.completions.create(model="faq", messages=HELLO, max_tokens=6, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == message.content
    final = chunks[-1].choices[0]
    assert final.finish_reason == "length" and [c["index"] for c in final.delta.citations] == [1, 2]
    assert final.delta.refused is False

    refused = keyed.chat.completions.create(model="faq", messages=[{"role": "user", "content": "please refuse"}])
    assert refused.choices[0].message.content == REFUSAL and refused.choices[0].message.refused is True
    assert refused.choices[0].message.citations == [] and refused.choices[0].finish_reason == "stop"


# ----------------------------------------------------------------------------- cancellation, metrics
def test_a_client_that_leaves_mid_stream_cancels_the_generation(mixed, caplog):
    url, streams, _ = mixed
    before = len(streams)
    caplog.set_level(logging.INFO)
    uvicorn_log = logging.getLogger("uvicorn.error")  # does not propagate to the root logger caplog listens on
    uvicorn_log.addHandler(caplog.handler)
    body = {"model": "tiny", "messages": HELLO, "max_tokens": 4000, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=TIMEOUT,
                      headers={"Authorization": f"Bearer {KEY}"}) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        got = [line for line in (next(lines) for _ in range(4)) if line]  # two events, each followed by a blank line
        assert len(got) == 2 and all(line.startswith("data: ") for line in got)
    # the response is closed: the server must see the client gone and stop the generation
    assert len(streams) == before + 1
    stream = streams[-1]
    deadline = time.monotonic() + 10
    while stream.completion is None and time.monotonic() < deadline:
        time.sleep(0.02)
    completion = stream.completion
    assert completion is not None and completion.finish_reason == "cancelled"
    assert completion.completion_tokens < 4000
    scrape = get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    assert metric(scrape, "takeoff_generations_total", model="tiny", finish_reason="cancelled") >= 1
    time.sleep(0.2)  # anything the server logs about the closed connection
    uvicorn_log.removeHandler(caplog.handler)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not noisy, [r.getMessage() for r in noisy]


def test_a_client_that_gives_up_on_a_whole_answer_cancels_it_too(mixed):
    url, streams, _ = mixed
    before = len(streams)
    body = {"model": "tiny", "messages": HELLO, "max_tokens": 4000}  # not streamed: one answer at the end
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                   timeout=httpx.Timeout(60.0, read=0.5))
    assert len(streams) == before + 1
    stream = streams[-1]
    deadline = time.monotonic() + 10
    while stream.completion is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stream.completion is not None and stream.completion.finish_reason == "cancelled"
    assert stream.completion.completion_tokens < 4000


def test_metrics_count_tokens_and_time_the_first_one(client, gen_url):
    before = get(f"{gen_url}/metrics").text
    reply = client.chat.completions.create(model="tiny-chat", messages=HELLO, max_tokens=7)
    list(client.chat.completions.create(model="tiny-chat", messages=HELLO, max_tokens=5, stream=True))
    after = get(f"{gen_url}/metrics").text
    labels = {"model": "tiny-chat"}

    def grew(name, **more):
        return metric(after, name, **labels, **more) - metric(before, name, **labels, **more)

    assert grew("takeoff_generated_tokens_total") == 12
    assert grew("takeoff_prompt_tokens_total") == 2 * reply.usage.prompt_tokens
    assert grew("takeoff_generations_total", finish_reason="length") == 2
    assert grew("takeoff_time_to_first_token_seconds_count") == 2
    assert grew("takeoff_generation_seconds_count") == 2 and grew("takeoff_generation_tokens_per_second_count") == 2
    assert metric(after, "takeoff_generation_tokens_per_second_sum", **labels) > 0
    served = metric(after, "takeoff_http_requests_total", method="POST", route="/v1/chat/completions", status="200")
    assert served - metric(before, "takeoff_http_requests_total", method="POST", route="/v1/chat/completions", status="200") == 2
