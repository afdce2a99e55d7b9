"""Serving generative models: the served entry of a generative bundle (kind ``generate``, a
:class:`~takeoff.pipelines.generation.GenerativeModel`) or of an answer bundle (kind
``answer``), which the OpenAI-compatible routes (:mod:`takeoff.serving.routes.openai`) start
generations on.

The entry is duck-typed on what the routes need, so that every generative kind is served alike:

- ``model.stream_chat(messages, max_new_tokens=, temperature=, top_p=, stop=, seed=)`` returns
  a stream: iterating it gives text pieces as they are generated; ``.completion`` (text,
  prompt_tokens, completion_tokens, finish_reason, seconds, first_token_s) once it ended;
  ``.cancel()`` stops it. An answer model's stream also has ``.citations`` (objects with
  ``source``, ``section``, ``text``, ``score``) and ``.refused``.
- ``model.complete(texts, **same)`` (raw text continuation, for ``/v1/completions``) returns
  one such stream per text; a model without it answers chat only.
- ``model.context_length``, and for a ``generate`` model ``model.template`` and
  ``model.engine.encode``: the prompt is measured before it is submitted, so that a prompt
  longer than the context is refused (400) instead of silently cut.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from takeoff.errors import DataError
from takeoff.serving.errors import ApiError
from takeoff.serving.jsonable import clean
from takeoff.serving.metrics import Metrics
from takeoff.serving.settings import ServeSettings

GENERATIVE = ("generate", "answer")
KIND_NAMES = {"generate": "generative model", "answer": "answer model (retrieval-augmented)"}
ROLE_ALIASES = {"developer": "system"}  # OpenAI's newer name for the system message


def invalid(message: str, param: str | None = None, code: str = "invalid_request", status: int = 400) -> ApiError:
    """A 400 in the server's error shape, with OpenAI's ``type`` and ``param`` keys beside."""
    fields = [{"field": param, "problem": message}] if param else []
    return ApiError(status, message, code=code, fields=fields, extra={"type": "invalid_request_error", "param": param})


class GenerateEntry:
    """A served generative model: starts its generations, measures their prompts, counts their tokens."""

    recommender = False
    batcher = None

    def __init__(self, name: str, model, settings: ServeSettings, metrics: Metrics):
        self.name, self.model, self.settings, self.metrics = name, model, settings, metrics
        self.kind = model.manifest.get("task", {}).get("kind") or getattr(model, "kind", "generate")
        getattr(model, "engine", None)  # load the weights now, not on the first request

    # ------------------------------------------------------------------ facts
    @property
    def context_length(self) -> int | None:
        value = getattr(self.model, "context_length", None)
        return int(value) if isinstance(value, int) else None

    @property
    def completes_text(self) -> bool:
        """Whether the model continues raw text (``/v1/completions``)."""
        return callable(getattr(self.model, "complete", None))

    # ------------------------------------------------------------------ starting generations (worker thread)
    def start_chat(self, messages: list[dict[str, Any]], max_tokens: int | None, options: dict[str, Any]):
        """Submit the assistant's next turn after ``messages``; return the stream."""
        messages = [_alias_role(m) for m in messages]
        prompt = None
        if self.kind == "generate" and hasattr(self.model, "template"):
            from takeoff.pipelines.generation.template import check_messages

            try:
                prompt = self.model.engine.encode(self.model.template.prompt(check_messages(messages)))
            except DataError as exc:
                raise invalid(str(exc), "messages") from None
        max_new = self.max_new_tokens(prompt, max_tokens, "messages")
        if max_new is not None:
            options = {**options, "max_new_tokens": max_new}
        try:
            return self.model.stream_chat(messages, **options)
        except DataError as exc:
            raise _from_model(exc) from None

    def start_completions(self, prompts: Sequence[str], max_tokens: int | None, options: dict[str, Any]) -> list:
        """Submit a raw continuation of each prompt; return their streams, in order."""
        encode = getattr(getattr(self.model, "engine", None), "encode", None)
        sizes = [encode(p) if encode is not None else None for p in prompts]
        for i, ids in enumerate(sizes):
            if ids is not None and not ids:
                where = "prompt" if len(prompts) == 1 else f"prompt[{i}]"
                raise invalid(f"{where} is empty: there is no text to continue. Fix: send some text", "prompt")
        wanted = [self.max_new_tokens(ids, max_tokens, "prompt") for ids in sizes]
        known = [w for w in wanted if w is not None]
        if known:  # one value for every prompt: the room left by the longest
            options = {**options, "max_new_tokens": min(known)}
        try:
            return self.model.complete(list(prompts), **options)
        except DataError as exc:
            raise _from_model(exc) from None

    def max_new_tokens(self, prompt: list[int] | None, asked: int | None, what: str) -> int | None:
        """The tokens to generate: ``asked`` (checked against the server's limit and the room the
        prompt leaves in the context), or, when not asked, as many as fit up to the limit.
        None: the model decides (an answer model, whose prompt is built inside it)."""
        limit = self.settings.max_tokens_limit
        if asked is not None and asked > limit:
            raise invalid(f"max_tokens is {asked}; this server allows at most {limit} tokens per completion (setting "
                          f"max_tokens_limit). Fix: ask for at most {limit}", "max_tokens", code="max_tokens_above_limit")
        context = self.context_length
        if prompt is None or context is None:
            return asked
        room = context - len(prompt)
        if room < 1 or (asked is not None and asked > room):
            fix = (f"shorten the {what} or ask for at most {room} tokens" if room >= 1 else f"shorten the {what}")
            raise invalid(f"the {what} take{'s' if what == 'prompt' else ''} {len(prompt)} tokens"
                          + (f" and max_tokens is {asked}" if asked is not None else "")
                          + f"; model '{self.name}' reads at most {context} tokens (its context). Fix: {fix}",
                          what, code="context_length_exceeded")
        return asked if asked is not None else min(limit, room)

    # ------------------------------------------------------------------ after a generation (its pump thread)
    def observe(self, completion) -> None:
        """Count a finished generation in the metrics."""
        if completion is None:
            return
        m, name = self.metrics, self.name
        m.generations.labels(name, str(getattr(completion, "finish_reason", "unknown"))).inc()
        m.prompt_tokens.labels(name).inc(max(0, int(completion.prompt_tokens)))
        m.generated_tokens.labels(name).inc(max(0, int(completion.completion_tokens)))
        first = getattr(completion, "first_token_s", None)
        if isinstance(first, (int, float)) and math.isfinite(first):
            m.first_token.labels(name).observe(first)
        seconds = getattr(completion, "seconds", None)
        if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0:
            m.generation_time.labels(name).observe(seconds)
            if completion.completion_tokens > 0:
                m.tokens_per_second.labels(name).observe(completion.completion_tokens / seconds)

    # ------------------------------------------------------------------ metadata
    def summary(self, default: bool) -> dict[str, Any]:
        m = self.model
        return {"name": self.name, "task": self.kind, "target": None, "classes": [], "version": m.version,
                "created": m.manifest.get("created"), "default": default, "base_model": self._base_model(),
                "context_length": self.context_length}

    def detail(self) -> dict[str, Any]:
        m = self.model
        spec = m.manifest.get(self.kind) if isinstance(m.manifest.get(self.kind), dict) else {}
        routes = {"chat_completions": "/v1/chat/completions"}
        if self.completes_text:
            routes["completions"] = "/v1/completions"
        return clean({
            "name": self.name, "version": m.version, "task": self.kind, "target": None, "classes": [],
            "created": m.manifest.get("created"), "format_version": m.manifest.get("format_version"),
            "takeoff_version": m.manifest.get("takeoff_version"), "metrics": m.manifest.get("metrics", {}),
            "base_model": self._base_model(), "method": spec.get("method"), "system": spec.get("system"),
            "context_length": self.context_length, "max_tokens_limit": self.settings.max_tokens_limit,
            "notes": list(getattr(m, "notes", []) or []), "routes": routes,
            "report_url": f"/v1/models/{self.name}/report" if "report.html" in m.attachments else None,
        })

    def _base_model(self) -> str | None:
        spec = self.model.manifest.get("generate") or {}
        base = spec.get("base_model") if isinstance(spec, dict) else None
        if not isinstance(base, str):
            return None
        return Path(base).name if ("/" in base and Path(base).is_absolute()) else base  # a folder: its name, not the path


def citations_of(stream) -> list[dict[str, Any]]:
    """An answer stream's citations as JSON objects, numbered from 1 (``[]`` for other models)."""
    out = []
    for i, cite in enumerate(getattr(stream, "citations", None) or [], start=1):
        if dataclasses.is_dataclass(cite) and not isinstance(cite, type):
            data = dataclasses.asdict(cite)
        elif isinstance(cite, dict):
            data = dict(cite)
        else:
            data = {key: getattr(cite, key, None) for key in ("source", "section", "text", "score")}
        out.append(clean({"index": i, "source": data.get("source"), "section": data.get("section"),
                          "text": data.get("text"), "score": data.get("score"),
                          **{k: v for k, v in data.items() if k not in ("source", "section", "text", "score")}}))
    return out


def sources_footer(citations: list[dict[str, Any]]) -> str:
    """The citations as a footer for the reply's text: ``Sources: [1] file — section ...``."""
    if not citations:
        return ""
    lines = [f"[{c['index']}] {c.get('source') or 'unknown source'}" + (f" — {c['section']}" if c.get("section") else "")
             for c in citations]
    return "\n\nSources:\n" + "\n".join(lines)


def _alias_role(message: Any) -> Any:
    if isinstance(message, dict) and message.get("role") in ROLE_ALIASES:
        return {**message, "role": ROLE_ALIASES[message["role"]]}
    return message


def _from_model(exc: DataError) -> ApiError:
    """A model's DataError as a 400, in the request's words (max_tokens, not max_new_tokens)."""
    message = str(exc).replace("max_new_tokens", "max_tokens")
    param = next((p for p in ("max_tokens", "temperature", "top_p", "stop", "seed", "messages", "prompt")
                  if message.startswith(p)), None)
    return invalid(message, param)
