"""The REST API over bundles: ``create_app(source, settings) -> FastAPI``, assembled from the
served entries (:mod:`~takeoff.serving.entries`), the routes by resource
(:mod:`~takeoff.serving.routes`), the error handlers, the OpenAPI document and the middleware.

Routes (see docs/serving.md): ``POST /v1/predict``, ``POST /v1/models/{name}/predict``,
``POST /v1/recommend``, ``POST /v1/models/{name}/recommend``, ``POST /v1/similar-items``,
``POST /v1/models/{name}/similar-items`` (recommenders, see :mod:`takeoff.serving.recommend`),
``POST /v1/search``, ``POST /v1/models/{name}/search`` (search indexes, see :mod:`takeoff.serving.search`),
``POST /v1/explain``, ``POST /v1/models/{name}/explain`` (see :mod:`takeoff.serving.explain`),
``POST /v1/chat/completions``, ``POST /v1/completions`` (generative models, OpenAI's protocol: see
:mod:`takeoff.serving.routes.openai`),
``GET /v1/models``, ``GET /v1/models/{name}``, ``GET /v1/models/{name}/report``, the Open Inference Protocol's
``/v2/...`` (see :mod:`takeoff.serving.routes.v2`), ``GET /healthz``, ``GET /readyz``, ``GET /metrics``, ``GET /`` and ``GET /static/{file}``
(the page), ``GET /docs`` and ``GET /openapi.json``.

Example:
    >>> from takeoff.serving import ServeSettings, create_app
    >>> app = create_app("runs/", ServeSettings(default_model="credit"))
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from takeoff._version import __version__
from takeoff.serving.entries import make_entry
from takeoff.serving.handlers import install_error_handlers
from takeoff.serving.metrics import Metrics
from takeoff.serving.middleware import AuthMiddleware, CatchAllMiddleware, MetricsMiddleware
from takeoff.serving.openapi import install_openapi
from takeoff.serving.routes import explain, models, openai, operations, page, predict, recommend, search, v2
from takeoff.serving.routes import card as model_card
from takeoff.serving.routes.context import RouteContext
from takeoff.serving.settings import ServeSettings
from takeoff.serving.store import load_store

log = logging.getLogger("takeoff.serving")

ROUTES = (predict, recommend, search, explain, models, v2, operations, page)  # in the OpenAPI document's order
ROUTES += (model_card, openai)  # GET /v1/models/{name}/card; POST /v1/chat/completions, /v1/completions


def create_app(source: Path | str | dict, settings: ServeSettings | None = None) -> FastAPI:
    """The REST API over the bundles in ``source``.

    Args:
        source: a bundle directory, a directory of bundle directories (each served under its
            name), or a dict of name → :class:`takeoff.Model`.
        settings: limits, auth, CORS, batching (default :class:`ServeSettings`).

    Raises:
        BundleError: a bundle is missing or cannot be loaded; UnknownNameError: the default
            model names no model.
    """
    settings = settings or ServeSettings()
    store = load_store(source, settings.default_model)
    metrics = Metrics()
    entries = {name: make_entry(name, model, settings, metrics) for name, model in store.models.items()}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        log.info("serving %d model(s): %s (default: %s)", len(entries), ", ".join(entries) or "none", store.default)
        yield
        for entry in entries.values():
            if getattr(entry, "batcher", None) is not None:
                await entry.batcher.close()

    app = FastAPI(
        title="takeoff", version=__version__, lifespan=lifespan, redoc_url=None,
        description="Predictions from takeoff model bundles. Every error is JSON: "
                    '{"error": {"code", "message", "fields": [{"field", "problem"}]}}.',
    )
    app.state.settings, app.state.store, app.state.metrics, app.state.entries = settings, store, metrics, entries
    install_error_handlers(app)
    context = RouteContext(store, entries, settings)
    for resource in ROUTES:
        resource.add_routes(app, context)
    install_openapi(app, entries, settings)
    # add_middleware wraps: the last added is the outermost.
    if settings.api_key:
        app.add_middleware(AuthMiddleware, api_key=settings.api_key)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    return app
