"""OpenAI's chat and text completions protocol over generative models: the request bodies, the
answers and their streamed chunks (server-sent events), and the bridge that carries text pieces
from the generation threads to the event loop.

Generation runs in the model's own worker thread (the batching engine); each stream is read by
a small thread of its own (:class:`Pump`) that hands its pieces to an :class:`asyncio.Queue`
through ``loop.call_soon_threadsafe``. So the event loop never blocks on a model, and a
waiting stream holds no thread of the shared pool that the other routes use. When the client
goes away, the streams are cancelled (``stream.cancel()``): the engine stops computing them at
its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from takeoff.serving.generation import GenerateEntry, citations_of, invalid, sources_footer

log = logging.getLogger("takeoff.serving")

MAX_PROMPTS = 32  # prompts in one /v1/completions request
MAX_STOPS = 16
SEED_LIMIT = 2**63
PIECE, DONE, FAILED = "piece", "done", "failed"


# ------------------------------------------------------------------ requests
class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = Field(False, description="Send a last chunk with the token counts (`usage`).")


class Sampling(BaseModel):
    """What chat and text completions share."""

    model_config = ConfigDict(extra="allow")  # OpenAI's other fields (user, presence_penalty, ...) are ignored

    model: str | None = Field(None, description="A generative model's name, as `GET /v1/models` lists it "
                              "(default: the server's only generative model, or its --default one).")
    max_tokens: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Most tokens to generate (default: as many as the context and the server's "
                          "max_tokens_limit allow; above the limit: 400).")
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = Field(None, description="OpenAI's newer name for max_tokens.")
    temperature: Annotated[float, Field(ge=0, le=2)] | None = Field(
        None, description="0 (the default here) always picks the likeliest token; above 0 samples.")
    top_p: Annotated[float, Field(gt=0, le=1)] | None = Field(None, description="Nucleus sampling's probability mass.")
    stop: str | list[str] | None = Field(None, description=f"Text, or up to {MAX_STOPS} texts, that end the answer (not included).")
    seed: Annotated[int, Field(ge=0, lt=SEED_LIMIT)] | None = Field(None, description="Makes sampling repeatable.")
    n: int | None = Field(1, description="Choices per prompt: 1 only.")
    stream: bool = Field(False, description="Answer as server-sent events (`data: {chunk}` ... `data: [DONE]`).")
    stream_options: StreamOptions | None = None


class ChatCompletionRequest(Sampling):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "assistant", "messages": [{"role": "user", "content": "How do I reset my password?"}], "max_tokens": 64}]})

    messages: list[dict[str, Any]] = Field(min_length=1, description='The conversation: [{"role": "system"|"user"|"assistant", '
                                           '"content": "..."}], the last one usually the user\'s.')


class CompletionRequest(Sampling):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "assistant", "prompt": "The three most useful things to know about computers are", "max_tokens": 32}]})

    prompt: str | list[str] = Field(description=f"Text to continue (no chat template), or up to {MAX_PROMPTS} texts.")


# fields whose use changes what OpenAI answers: refused when set, rather than silently ignored
UNSUPPORTED = {
    "logprobs": "log-probabilities are not returned", "top_logprobs": "log-probabilities are not returned",
    "tools": "tool calls are not supported", "functions": "function calls are not supported",
    "echo": "the prompt is not echoed", "suffix": "suffixes (insertion) are not supported",
    "best_of": "best_of is not supported",
}


def parse_request(cls: type[Sampling], data: Any) -> Sampling:
    """The body as ``cls``; a 400 naming the field otherwise (OpenAI answers 400 to bad bodies)."""
    if not isinstance(data, dict):
        raise invalid(f"the body must be a JSON object, e.g. {json.dumps(cls.model_config['json_schema_extra']['examples'][0])}")
    try:
        request = cls.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = [p for p in error["loc"] if not (isinstance(p, str) and p in ("str", "list[str]", "int", "float"))]
            path = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))
            problems.append({"field": path or "body", "problem": "required field is missing" if error["type"] == "missing" else error["msg"]})
        first = problems[0]
        error = invalid(f"{first['field']}: {first['problem']}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                        first["field"])
        error.fields = problems
        raise error from None
    if request.n not in (None, 1):
        raise invalid(f"n is {request.n}; this server gives one choice per request (n=1). Fix: send n separate requests "
                      "(with temperature above 0 for different answers)", "n")
    for name, problem in UNSUPPORTED.items():
        value = data.get(name)
        if value not in (None, False, 0, "", [], {}) and not (name == "best_of" and value == 1):
            raise invalid(f"{name} is set; {problem} by this server. Fix: leave {name} out", name)
    response_format = data.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
        raise invalid(f"response_format type {response_format.get('type')!r} is not supported; only 'text'. "
                      "Fix: leave response_format out", "response_format")
    stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if len(stops) > MAX_STOPS:
        raise invalid(f"stop holds {len(stops)} texts; at most {MAX_STOPS}", "stop")
    if isinstance(request, CompletionRequest) and isinstance(request.prompt, list):
        if not 1 <= len(request.prompt) <= MAX_PROMPTS:
            raise invalid(f"prompt holds {len(request.prompt)} texts; send 1 to {MAX_PROMPTS}", "prompt")
    return request


def components() -> dict[str, Any]:
    """The request bodies as OpenAPI component schemas."""
    out: dict[str, Any] = {}
    for model in (ChatCompletionRequest, CompletionRequest):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def max_tokens_of(request: Sampling) -> int | None:
    return request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens


def options_of(request: Sampling) -> dict[str, Any]:
    """The model's keyword arguments the request gives (the others keep the model's defaults)."""
    options: dict[str, Any] = {}
    for name in ("temperature", "top_p", "seed"):
        value = getattr(request, name)
        if value is not None:
            options[name] = value
    if request.stop:
        options["stop"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    return options


# ------------------------------------------------------------------ from threads to the event loop
class Pump:
    """Reads each stream on a thread of its own and hands ``(index, kind, value)`` events to the
    event loop: ``PIECE`` with a text piece, then ``DONE`` (or ``FAILED`` with the exception).
    Finished generations are counted in the entry's metrics (on those threads)."""

    def __init__(self, entry: GenerateEntry, streams: Sequence[Any]):
        self.entry, self.streams = entry, list(streams)
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.remaining = len(self.streams)
        for index, stream in enumerate(self.streams):
            threading.Thread(target=self._read, args=(index, stream), name="takeoff-stream", daemon=True).start()

    def _read(self, index: int, stream) -> None:
        try:
            for piece in stream:
                self._put((index, PIECE, piece))
            self._put((index, DONE, None))
        except BaseException as exc:  # noqa: BLE001 (handed to the route, which answers it)
            self._put((index, FAILED, exc))
        finally:
            try:
                self.entry.observe(getattr(stream, "completion", None))
            except Exception:  # noqa: BLE001 (metrics must never break a generation)
                log.warning("could not count a generation of model '%s' in the metrics", self.entry.name, exc_info=True)

    def _put(self, event: tuple) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except RuntimeError:  # the event loop closed (the server stopped): nobody is reading
            pass

    async def events(self) -> AsyncIterator[tuple[int, str, Any]]:
        while self.remaining:
            event = await self.queue.get()
            if event[1] != PIECE:
                self.remaining -= 1
            yield event

    def cancel(self) -> None:
        """Stop every stream still running (a no-op for the finished ones)."""
        for stream in self.streams:
            with contextlib.suppress(Exception):
                stream.cancel()


async def until_disconnect(receive: Receive) -> None:
    """Returns when the client disconnects (the body already read, nothing else arrives)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStream(StreamingResponse):
    """Server-sent events that stop (cancelling the body's iterator, whose ``finally`` cancels
    the generations) as soon as the client disconnects, whichever ASGI version the server
    speaks; a client gone while a chunk is sent is no error."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str]):
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:
            async def respond() -> None:
                with contextlib.suppress(OSError, ClientDisconnect):
                    await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(respond)
            await until_disconnect(receive)
            group.cancel_scope.cancel()


def sse(data: Any) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, allow_nan=False)}\n\n"


# ------------------------------------------------------------------ answers
def usage(completions: Sequence[Any]) -> dict[str, int]:
    prompt = sum(int(c.prompt_tokens) for c in completions)
    generated = sum(int(c.completion_tokens) for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


def finish_reason(completion) -> str:
    reason = getattr(completion, "finish_reason", None)
    return reason if reason in ("stop", "length") else "stop"


class Answer:
    """What every chunk and answer of one request shares: its id, time, model and kind."""

    def __init__(self, entry: GenerateEntry, chat: bool):
        self.entry, self.chat = entry, chat
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())

    def head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.entry.name,
                "system_fingerprint": f"takeoff-{self.entry.model.version}"}

    def chat_message(self, stream, completion) -> dict[str, Any]:
        """The assistant's message: the text, and for an answer model its sources (a footer in
        the text and a ``citations`` list) and whether it declined to answer (``refused``)."""
        message: dict[str, Any] = {"role": "assistant", "content": completion.text}
        if self.entry.kind == "answer":
            citations = citations_of(stream)
            message["content"] += sources_footer(citations)
            message["citations"] = citations
            message["refused"] = bool(getattr(stream, "refused", False))
        return message

    def chat_completion(self, stream, completion) -> dict[str, Any]:
        return {**self.head("chat.completion"),
                "choices": [{"index": 0, "message": self.chat_message(stream, completion), "logprobs": None,
                             "finish_reason": finish_reason(completion)}],
                "usage": usage([completion])}

    def text_completion(self, completions: Sequence[Any]) -> dict[str, Any]:
        return {**self.head("text_completion"),
                "choices": [{"index": i, "text": c.text, "logprobs": None, "finish_reason": finish_reason(c)}
                            for i, c in enumerate(completions)],
                "usage": usage(completions)}

    # ------------------------------------------------------------------ streamed
    def chat_chunk(self, delta: dict[str, Any], finish: str | None = None, with_usage: bool = False) -> dict[str, Any]:
        chunk = {**self.head("chat.completion.chunk"),
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if with_usage:
            chunk["usage"] = None
        return chunk

    def text_chunk(self, index: int, text: str, finish: str | None = None, with_usage: bool = False) -> dict[str, Any]:
        chunk = {**self.head("text_completion"),
                 "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish}]}
        if with_usage:
            chunk["usage"] = None
        return chunk

    def usage_chunk(self, completions: Sequence[Any]) -> dict[str, Any]:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        return {**self.head(obj), "choices": [], "usage": usage(completions)}



def failure(entry: GenerateEntry, exc: BaseException) -> dict[str, Any]:
    """The error event of a generation that failed (the engine logged its traceback already)."""
    log.warning("a generation of model '%s' failed: %s", entry.name, exc)
    return {"error": {"message": "the generation failed; the server logged the details", "type": "server_error",
                      "code": "generation_failed", "param": None}}


async def stream_chat(answer: Answer, pump: Pump, stream, include_usage: bool) -> AsyncIterator[str]:
    """The chunks of a streamed chat completion: the role, the text pieces, for an answer model
    its sources footer, the last chunk (finish_reason; an answer model's ``citations`` and
    ``refused`` in its delta), the usage when asked, then ``[DONE]``."""
    try:
        yield sse(answer.chat_chunk({"role": "assistant", "content": ""}, with_usage=include_usage))
        async for _, kind, value in pump.events():
            if kind == PIECE:
                yield sse(answer.chat_chunk({"content": value}, with_usage=include_usage))
            elif kind == FAILED:
                yield sse(failure(answer.entry, value))
                yield sse("[DONE]")
                return
        completion = stream.completion
        delta: dict[str, Any] = {}
        if answer.entry.kind == "answer":
            citations = citations_of(stream)
            footer = sources_footer(citations)
            if footer:
                yield sse(answer.chat_chunk({"content": footer}, with_usage=include_usage))
            delta = {"citations": citations, "refused": bool(getattr(stream, "refused", False))}
        yield sse(answer.chat_chunk(delta, finish_reason(completion), with_usage=include_usage))
        if include_usage:
            yield sse(answer.usage_chunk([completion]))
        yield sse("[DONE]")
    finally:
        pump.cancel()  # the client went away (this generator was cancelled), or a no-op


async def stream_text(answer: Answer, pump: Pump, streams: Sequence[Any], include_usage: bool) -> AsyncIterator[str]:
    """The chunks of streamed text completions (one choice per prompt, by ``index``)."""
    try:
        async for index, kind, value in pump.events():
            if kind == PIECE:
                yield sse(answer.text_chunk(index, value, with_usage=include_usage))
            elif kind == FAILED:
                yield sse(failure(answer.entry, value))
                yield sse("[DONE]")
                return
            else:
                yield sse(answer.text_chunk(index, "", finish_reason(streams[index].completion), with_usage=include_usage))
        if include_usage:
            yield sse(answer.usage_chunk([s.completion for s in streams]))
        yield sse("[DONE]")
    finally:
        pump.cancel()


async def wait_all(pump: Pump) -> BaseException | None:
    """Read every stream to its end; the first failure, or None."""
    failure = None
    async for _, kind, value in pump.events():
        if kind == FAILED and failure is None:
            failure = value
    return failure
