"""What every route shares: the served entries, the default model of each task, and the
errors for a model that is missing, absent by default, or of the wrong task."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import Path as PathParam
from starlette.requests import Request
from starlette.responses import Response

from takeoff.serving.entries import kind_of
from takeoff.serving.errors import ApiError
from takeoff.serving.generation import GENERATIVE
from takeoff.serving.limits import RETURN_MEMORY_BYTES, DeadlinePassed, reset_deadline, schedule_return_memory, start_deadline
from takeoff.serving.settings import ServeSettings
from takeoff.serving.store import ModelStore

TASKS = ("predict", "recommend", "search")


class RouteContext:
    """The served entries by name, the store's default, and the settings.

    ``defaults[kind]`` is the model answering the short route of that task (``/v1/predict``,
    ``/v1/recommend``, ``/v1/search``): the store's default when it does that task, else the
    only model that does, else None. ``defaults["generate"]`` likewise answers the chat and
    text completions that name no model, among the generative models (kinds generate and answer).
    """

    def __init__(self, store: ModelStore, entries: dict[str, Any], settings: ServeSettings):
        self.store, self.entries, self.settings = store, entries, settings
        self.defaults: dict[str, str | None] = {}
        for kind in TASKS:
            names = self.names(kind)
            if store.default is not None and kind_of(entries[store.default]) == kind:
                self.defaults[kind] = store.default
            else:
                self.defaults[kind] = names[0] if len(names) == 1 else None
        generative = self.generative_names()
        self.defaults["generate"] = (store.default if store.default in generative else
                                     generative[0] if len(generative) == 1 else None)
        self.model_name = PathParam(description=f"A model name: {', '.join(entries) or 'none'}",
                                    examples=list(entries)[:3] or ["model"])

    def names(self, kind: str) -> list[str]:
        """The served models of one task, in serving order."""
        return [n for n, e in self.entries.items() if kind_of(e) == kind]

    def generative_names(self) -> list[str]:
        """The served models that generate text (kinds generate and answer), in serving order."""
        return [n for n, e in self.entries.items() if kind_of(e) in GENERATIVE]

    def entry_for(self, name: str):
        """The entry named ``name``; 404 naming the models otherwise."""
        if name not in self.entries:
            raise ApiError(404, f"no model named '{name}'; the models are: {', '.join(self.entries) or 'none'}",
                           code="model_not_found", extra={"models": list(self.entries)})
        return self.entries[name]

    def no_default(self, route: str, kind: str) -> ApiError:
        """The error of a short route (``/v1/{route}``) with no default model of its task."""
        wanted = self.names(kind)
        default = self.entries.get(self.store.default) if self.store.default is not None else None
        if not wanted and default is not None:
            return wrong_task(default, route)
        what = {"recommend": "recommender", "search": "search index"}.get(kind, "model")
        return ApiError(404, f"there is no default {what}; POST to /v1/models/{{name}}/{route} with one of: "
                        f"{', '.join(wanted) or 'none'}", code="no_default_model", extra={"models": wanted})

    async def within_deadline(self, work: Awaitable[Response], what: str, fix: str, request: Request | None = None) -> Response:
        """``work`` awaited under the request timeout; after it, 504 "the ``what`` took longer ... Fix: ``fix``".

        The deadline is also set for the work itself (:mod:`~takeoff.serving.limits`): the worker
        thread stops at its next check instead of running on after the 504. After a large body
        (``request``'s Content-Length), freed memory is handed back to the system.
        """
        timeout = self.settings.timeout_s
        token = start_deadline(timeout)  # copied into the task below, and from it into worker threads
        try:
            return await asyncio.wait_for(work, timeout=timeout)
        except (asyncio.TimeoutError, DeadlinePassed):
            raise ApiError(504, f"the {what} took longer than {timeout:g}s. Fix: {fix}", code="timeout") from None
        finally:
            reset_deadline(token)
            declared = request.headers.get("content-length", "") if request is not None else ""
            if declared.isdigit() and int(declared) >= RETURN_MEMORY_BYTES:
                schedule_return_memory()


def wrong_task(entry, route: str | None = None) -> ApiError:
    """409 for a route that ``entry``'s task does not answer, saying which routes it does."""
    if kind_of(entry) in ("generate", "answer"):
        message = (f"model '{entry.name}' is a generative model: it answers POST /v1/chat/completions"
                   + (" and /v1/completions" if entry.completes_text else "")
                   + f' with {{"model": "{entry.name}", "messages": [...]}}, not {route or "predict"}')
    elif kind_of(entry) == "search":
        message = (f"model '{entry.name}' is a search index: it answers POST /v1/models/{entry.name}/search "
                   f'with {{"query": "...", "k": 5}}, not {route or "predict"}')
    elif route == "search":
        message = (f"model '{entry.name}' is not a search index; only indexes built with `takeoff index` answer "
                   "search. " + ("Use /v1/models/{n}/recommend." if entry.recommender else
                                 "POST records to /v1/models/{n}/predict.").replace("{n}", entry.name))
    elif entry.recommender:
        message = (f"model '{entry.name}' is a recommender: it answers POST /v1/models/{entry.name}/recommend "
                   f"and /v1/models/{entry.name}/similar-items, not predict")
    else:
        message = (f"model '{entry.name}' predicts '{entry.model.task.target}' ({entry.model.task.kind}); "
                   f"POST records to /v1/models/{entry.name}/predict. Only recommenders answer recommend and similar-items")
    return ApiError(409, message, code="wrong_task")
