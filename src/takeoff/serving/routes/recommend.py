"""``POST /v1/recommend`` and ``POST /v1/similar-items`` (the default recommender), and their
``/v1/models/{name}/...`` forms; the work is in :mod:`takeoff.serving.recommend`."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from starlette.responses import Response

from takeoff.serving.body import read_body, require_json
from takeoff.serving.recommend import (RecommendRequest, RecommendResponse, SimilarItemsRequest, SimilarItemsResponse,
                                       request_body)
from takeoff.serving.responses import ERRORS
from takeoff.serving.routes.context import RouteContext, wrong_task


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    default = ctx.defaults["recommend"]
    recommenders = ctx.names("recommend")

    def recommend_routes(action: str, path: str):
        async def answer_default(request: Request) -> Response:
            if default is None:
                raise ctx.no_default(path, "recommend")
            return await _recommend(request, ctx.entries[default], ctx, action)

        async def answer_named(request: Request, name: str = ctx.model_name) -> Response:
            return await _recommend(request, ctx.entry_for(name), ctx, action)
        return answer_default, answer_named

    which = f"the default recommender ({default})" if default else "the default recommender (none set)"
    recommend_doc = ('`{"user": ID, "k": 10, "exclude_seen": true}` or `{"users": [ID, ...], ...}`. A user the model '
                     "has never seen gets the most popular items (said in `notes`). "
                     f"Recommenders served: {', '.join(recommenders) or 'none'}.")
    similar_doc = f'`{{"item": ID, "k": 10}}`: the items most like one item. Recommenders served: {", ".join(recommenders) or "none"}.'
    for path, action, doc, request_model, response in (
        ("recommend", "recommend", recommend_doc, RecommendRequest, RecommendResponse),
        ("similar-items", "similar", similar_doc, SimilarItemsRequest, SimilarItemsResponse),
    ):
        what = "Recommendations" if action == "recommend" else "Similar items"
        common = dict(methods=["POST"], tags=["recommend"], description=doc,
                      responses={200: {"model": response}, **ERRORS}, openapi_extra=request_body(request_model))
        answer_default, answer_named = recommend_routes(action, path)
        app.add_api_route(f"/v1/{path}", answer_default, operation_id=f"{action}_default",
                          summary=f"{what} from {which}", **common)
        app.add_api_route(f"/v1/models/{{name}}/{path}", answer_named, operation_id=f"{action}_by_name",
                          summary=f"{what} from a recommender, by name", **common)


async def _recommend(request: Request, entry, ctx: RouteContext, action: str) -> Response:
    """``action`` "recommend" or "similar" of a recommender: JSON in, JSON out, under the deadline."""
    if not entry.recommender:
        raise wrong_task(entry, "recommend" if action == "recommend" else "similar-items")
    require_json(request)
    answer = entry.recommend if action == "recommend" else entry.similar

    async def work() -> Response:
        body = await read_body(request, ctx.settings.max_body_bytes)
        return await asyncio.to_thread(answer, body)  # scoring a catalogue is not event-loop work

    return await ctx.within_deadline(work(), "request", "ask for fewer users per request, or raise --timeout", request)
