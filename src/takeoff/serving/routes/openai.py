"""``POST /v1/chat/completions`` and ``POST /v1/completions``: OpenAI's protocol over the
generative models served (kinds ``generate`` and ``answer``), streamed or not; the protocol is
in :mod:`takeoff.serving.openai`, the models' side in :mod:`takeoff.serving.generation`.

The body's ``model`` names the model, as ``GET /v1/models`` lists it; without it, the default
generative model answers (the ``--default`` model when it is generative, else the only one).
"""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI, Request
from starlette.responses import Response

from takeoff.serving import openai
from takeoff.serving.body import read_body, require_json
from takeoff.serving.entries import kind_of
from takeoff.serving.errors import ApiError
from takeoff.serving.generation import GENERATIVE, KIND_NAMES, GenerateEntry, invalid
from takeoff.serving.jsonable import clean
from takeoff.serving.limits import load_json
from takeoff.serving.recommend import request_body
from takeoff.serving.responses import ERRORS
from takeoff.serving.routes.context import RouteContext

CLIENT_GONE = 499  # the client closed the connection before the answer (as nginx logs it)
ROUTES_OF = {"predict": "POST /v1/models/{n}/predict", "recommend": "POST /v1/models/{n}/recommend and /similar-items",
             "search": "POST /v1/models/{n}/search"}


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    generative, default = ctx.generative_names(), ctx.defaults["generate"]
    listed = ", ".join(generative) or "none"

    def entry_for(name: str | None, route: str) -> GenerateEntry:
        if not name:
            if default is None:
                raise invalid(f"the body names no model and there is no default generative model; set \"model\" to one "
                              f"of: {listed}", "model", code="model_not_found", status=404)
            return ctx.entries[default]
        entry = ctx.entries.get(name)
        if entry is None:
            raise invalid(f"no model named '{name}'; the generative models are: {listed} (GET /v1/models lists every "
                          "model)", "model", code="model_not_found", status=404)
        kind = kind_of(entry)
        if kind not in GENERATIVE:
            what = getattr(getattr(entry.model, "task", None), "kind", kind) if kind == "predict" else kind
            raise invalid(f"model '{name}' is a {what} model: it answers {ROUTES_OF[kind].replace('{n}', name)}, not "
                          f"{route}. Generative models answer {route}: {listed}", "model", code="wrong_task")
        return entry

    async def read(request: Request, cls: type[openai.Sampling]) -> openai.Sampling:
        require_json(request)
        body = await read_body(request, ctx.settings.max_body_bytes)
        return openai.parse_request(cls, load_json(body, ctx.settings.max_json_depth))

    async def chat_completions(request: Request) -> Response:
        asked = await read(request, openai.ChatCompletionRequest)
        entry = entry_for(asked.model, "chat completions")
        stream = await asyncio.to_thread(entry.start_chat, asked.messages, openai.max_tokens_of(asked), openai.options_of(asked))
        answer, pump = openai.Answer(entry, chat=True), openai.Pump(entry, [stream])
        if asked.stream:
            return openai.EventStream(openai.stream_chat(answer, pump, stream, _include_usage(asked)))
        if not await _finish(pump, request):
            return Response(status_code=CLIENT_GONE)
        return _json(answer.chat_completion(stream, stream.completion))

    async def completions(request: Request) -> Response:
        asked = await read(request, openai.CompletionRequest)
        entry = entry_for(asked.model, "text completions")
        if not entry.completes_text:
            raise invalid(f"model '{entry.name}' is an {KIND_NAMES.get(entry.kind, entry.kind)}: it answers POST "
                          "/v1/chat/completions only", "model", code="wrong_task")
        prompts = [asked.prompt] if isinstance(asked.prompt, str) else list(asked.prompt)
        streams = await asyncio.to_thread(entry.start_completions, prompts, openai.max_tokens_of(asked), openai.options_of(asked))
        answer, pump = openai.Answer(entry, chat=False), openai.Pump(entry, streams)
        if asked.stream:
            return openai.EventStream(openai.stream_text(answer, pump, streams, _include_usage(asked)))
        if not await _finish(pump, request):
            return Response(status_code=CLIENT_GONE)
        return _json(answer.text_completion([s.completion for s in streams]))

    names = f"Generative models served: {listed}."
    responses = {200: {"description": "The completion, or with `stream: true` its chunks as server-sent events.",
                       "content": {"application/json": {}, "text/event-stream": {}}}, **ERRORS}
    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"], tags=["generate"],
                      operation_id="chat_completions", summary="Chat completion (OpenAI-compatible)",
                      description="OpenAI's chat completions: `{\"model\", \"messages\", \"max_tokens\", \"temperature\", "
                                  "\"top_p\", \"stop\", \"seed\", \"stream\"}`. An answer model's reply also carries its "
                                  f"`citations` and whether it `refused`. {names}",
                      responses=responses, openapi_extra=request_body(openai.ChatCompletionRequest))
    app.add_api_route("/v1/completions", completions, methods=["POST"], tags=["generate"],
                      operation_id="completions", summary="Text completion (OpenAI-compatible)",
                      description="OpenAI's (legacy) completions: raw text continued, without the chat template. "
                                  f"{names}",
                      responses=responses, openapi_extra=request_body(openai.CompletionRequest))


def _include_usage(asked: openai.Sampling) -> bool:
    return bool(asked.stream_options and asked.stream_options.include_usage)


async def _finish(pump: openai.Pump, request: Request) -> bool:
    """Wait for the generations to end; False when the client left first (they are cancelled).

    Raises:
        ApiError: 500 when a generation failed.
    """
    work = asyncio.ensure_future(openai.wait_all(pump))
    gone = asyncio.ensure_future(openai.until_disconnect(request.receive))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        left = not work.done()
        if left:
            work.cancel()
            pump.cancel()
    if left:
        return False
    failure = work.result()
    if failure is not None:
        error = openai.failure(pump.entry, failure)["error"]
        raise ApiError(500, error["message"], code=error["code"], extra={"type": error["type"], "param": None})
    return True


def _json(body: dict) -> Response:
    return Response(json.dumps(clean(body), allow_nan=False), media_type="application/json")
