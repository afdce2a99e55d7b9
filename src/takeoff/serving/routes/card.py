"""``GET /v1/models/{name}/card``: a prediction model's card (``MODEL_CARD.md``), as Markdown."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import Response

from takeoff.serving.errors import ApiError
from takeoff.serving.responses import ErrorResponse
from takeoff.serving.routes.context import RouteContext


def add_routes(app: FastAPI, ctx: RouteContext) -> None:
    @app.get("/v1/models/{name}/card", tags=["models"], summary="A model's card (Markdown)",
             response_class=Response, responses={200: {"content": {"text/markdown": {}}}, 404: {"model": ErrorResponse}})
    async def model_card(name: str = ctx.model_name) -> Response:
        entry = ctx.entry_for(name)
        card = getattr(entry.model, "card", None)
        if card is None:
            raise ApiError(404, f"model '{name}' has no model card: cards are written for prediction models",
                           code="card_not_found")
        return Response(card(), media_type="text/markdown; charset=utf-8")
