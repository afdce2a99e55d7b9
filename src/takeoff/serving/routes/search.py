"""``POST /v1/search`` (the default search index) and ``POST /v1/models/{name}/search``; the
work is in :mod:`takeoff.serving.search`."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from starlette.responses import Response

from takeoff.serving.body import read_body, require_json
from takeoff.serving.entries import kind_of
from takeoff.serving.recommend import request_body
from takeoff.serving.responses import ERRORS
from takeoff.serving.routes.context import RouteContext, wrong_task
from takeoff.serving.search import SearchRequest, SearchResponse


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    default = ctx.defaults["search"]

    async def search_default_route(request: Request) -> Response:
        if default is None:
            raise ctx.no_default("search", "search")
        return await _search(request, ctx.entries[default], ctx)

    async def search_named(request: Request, name: str = ctx.model_name) -> Response:
        return await _search(request, ctx.entry_for(name), ctx)

    search_doc = ('`{"query": "...", "k": 5}` or `{"queries": ["...", ...], "k": 5}`: the indexed texts closest in '
                  f"meaning to each query, best first, with their answers. Search indexes served: {', '.join(ctx.names('search')) or 'none'}.")
    common = dict(methods=["POST"], tags=["search"], description=search_doc,
                  responses={200: {"model": SearchResponse}, **ERRORS}, openapi_extra=request_body(SearchRequest))
    which = f"the default search index ({default})" if default else "the default search index (none set)"
    app.add_api_route("/v1/search", search_default_route, operation_id="search_default",
                      summary=f"Semantic search in {which}", **common)
    app.add_api_route("/v1/models/{name}/search", search_named, operation_id="search_by_name",
                      summary="Semantic search in an index, by name", **common)


async def _search(request: Request, entry, ctx: RouteContext) -> Response:
    """A search request: JSON in, JSON out, under the deadline."""
    if kind_of(entry) != "search":
        raise wrong_task(entry, "search")
    require_json(request)

    async def work() -> Response:
        body = await read_body(request, ctx.settings.max_body_bytes)
        return await asyncio.to_thread(entry.search, body)  # embedding the queries is not event-loop work

    return await ctx.within_deadline(work(), "search", "send fewer queries per request, or raise --timeout", request)
