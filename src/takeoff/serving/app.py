"""The REST API over bundles: ``create_app(source, settings) -> FastAPI``.

Routes (see docs/serving.md): ``POST /v1/predict``, ``POST /v1/models/{name}/predict``,
``POST /v1/recommend``, ``POST /v1/models/{name}/recommend``, ``POST /v1/similar-items``,
``POST /v1/models/{name}/similar-items`` (recommenders, see :mod:`takeoff.serving.recommend`),
``POST /v1/search``, ``POST /v1/models/{name}/search`` (search indexes, see :mod:`takeoff.serving.search`),
``POST /v1/explain``, ``POST /v1/models/{name}/explain`` (see :mod:`takeoff.serving.explain`),
``GET /v1/models``, ``GET /v1/models/{name}``, ``GET /v1/models/{name}/report``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``, ``GET /`` and ``GET /static/{file}``
(the page), ``GET /docs`` and ``GET /openapi.json``.

Example:
    >>> from takeoff.serving import ServeSettings, create_app
    >>> app = create_app("runs/", ServeSettings(default_model="credit"))
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Path as PathParam, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartParser
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, HTMLResponse, Response

from takeoff._version import __version__
from takeoff.data.schema import LABEL_SEP
from takeoff.errors import DataError, TakeoffError
from takeoff.features.block import Features
from takeoff.serving.batching import MicroBatcher
from takeoff.serving.errors import ApiError, error_response, from_data_error
from takeoff.serving.explain import add_routes as add_explain_routes
from takeoff.serving.metrics import Metrics
from takeoff.serving.middleware import AuthMiddleware, CatchAllMiddleware, MetricsMiddleware
from takeoff.serving.recommend import (RecommendEntry, RecommendRequest, RecommendResponse, SimilarItemsRequest,
                                       SimilarItemsResponse)
from takeoff.serving.recommend import components as recommend_components
from takeoff.serving.recommend import request_body as recommend_body
from takeoff.serving.search import SearchEntry, SearchRequest, SearchResponse
from takeoff.serving.search import components as search_components
from takeoff.serving.requests import Parsed, RequestSchema, schema_name
from takeoff.serving.settings import ServeSettings
from takeoff.serving.store import ModelStore, load_store

log = logging.getLogger("takeoff.serving")

WEB_DIR = Path(__file__).resolve().parent.parent / "resources" / "web"
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
WHERE = "the request"
INLINE_BYTES = 16_384  # JSON bodies up to this size are answered on the event loop
PLACEHOLDER = """<!doctype html><html><head><meta charset="utf-8"><title>takeoff</title></head>
<body><h1>takeoff</h1><p>The models are served at <a href="/v1/models">/v1/models</a>;
the API is described at <a href="/docs">/docs</a>.</p></body></html>"""


# ------------------------------------------------------------------ documented response shapes
class Prediction(BaseModel):
    prediction: Any = Field(description="The predicted label (classification), list of labels (multilabel) or value (regression).")
    probabilities: dict[str, float] | None = Field(
        None, description="Classification: the probability of each label (multilabel: each label's own, they do not sum to 1).")


class PredictResponse(BaseModel):
    model: str
    version: str = Field(description="Content hash of the bundle's manifest.")
    task: str = Field(description="binary, multiclass, multilabel or regression.")
    predictions: list[Prediction] = Field(description="One per record, in request order.")
    warnings: list[str] = Field(description="Ignored fields, values treated as missing, ...")


class FieldProblem(BaseModel):
    field: str = Field(description="e.g. records[3].Income (batch) or Income (single record).")
    problem: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldProblem]


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 409, 413, 415, 422, 504)}


# ------------------------------------------------------------------ one served model
class Entry:
    """A served model: its request schema and how its rows are predicted."""

    recommender = False
    kind = "predict"

    def __init__(self, name: str, model, settings: ServeSettings, metrics: Metrics):
        self.name, self.model, self.settings, self.metrics = name, model, settings, metrics
        self.schema = RequestSchema(name, model)
        self.neural = any(m["family"] != "lightgbm" for m in model.manifest["members"])
        self.batcher = None
        if self.neural:
            self.batcher = MicroBatcher(self._predict_parts, settings.batch_max_size, settings.batch_max_wait_ms / 1000,
                                        on_batch=metrics.batch_rows.labels(name).observe)

    def _predict_parts(self, parts: list[Features]) -> list[np.ndarray]:
        """Predict the features of several requests in one call; split the outputs back."""
        batch = type(parts[0]).concat(parts) if len(parts) > 1 else parts[0]  # Features, or RawInputs (ONNX bundles)
        outputs = self.model.predict_features(batch)
        return np.split(outputs, np.cumsum([len(p) for p in parts])[:-1])

    def features(self, parsed: Parsed) -> tuple[Features, list[str]]:
        """Validate one request's rows and make their features (before batching, so a bad
        request fails alone); return them with the notes of what was coerced."""
        try:
            features, notes = self.model.features(parsed.rows, where=WHERE, strict=self.settings.strict)
        except DataError as exc:
            raise from_data_error(exc, parsed.single, self.schema.kinds) from None
        return features, notes.messages()

    def predict_direct(self, parsed: Parsed) -> Response:
        features, notes = self.features(parsed)
        return self.respond(self.model.predict_features(features), parsed.warnings + notes)

    def respond(self, outputs: np.ndarray, warnings: list[str]) -> Response:
        """The predictions as JSON bytes."""
        task = self.model.task
        labels = [_native(v) for v in self.model.decide(outputs).tolist()]
        if task.is_classification or task.is_multilabel:
            keys = [str(c) for c in task.classes]
            if task.is_multilabel:  # the label set as a list: "a|b" -> ["a", "b"]
                labels = [label.split(LABEL_SEP) if label else [] for label in labels]
            predictions = [{"prediction": label, "probabilities": dict(zip(keys, map(_finite, row)))}
                           for label, row in zip(labels, outputs.tolist())]
        else:
            predictions = [{"prediction": _finite(v)} for v in labels]
        if not (task.is_classification or task.is_multilabel) and any(p["prediction"] is None for p in predictions):
            warnings = [*warnings, "some predictions are not finite numbers and are given as null"]
        self.metrics.rows.labels(self.name).inc(len(labels))
        body = {"model": self.name, "version": self.model.version, "task": task.kind,
                "predictions": predictions, "warnings": warnings}
        return Response(json.dumps(body, allow_nan=False), media_type="application/json")

    def summary(self, default: bool) -> dict[str, Any]:
        m = self.model
        return {"name": self.name, "task": m.task.kind, "target": m.task.target, "classes": _clean(m.classes),
                "version": m.version, "created": m.manifest.get("created"), "default": default}

    def detail(self) -> dict[str, Any]:
        m = self.model
        return _clean({
            "name": self.name, "version": m.version, "task": m.task.kind, "target": m.task.target,
            "classes": m.classes, "threshold": m.threshold, "created": m.manifest.get("created"),
            "format_version": m.manifest.get("format_version"), "takeoff_version": m.manifest.get("takeoff_version"),
            "metrics": m.metrics, "inputs": m.input_fields(),
            "members": [{"family": x["family"], "weight": x["weight"]} for x in m.manifest["members"]],
            "report_url": f"/v1/models/{self.name}/report" if "report.html" in m._attachments else None,
        })


# ------------------------------------------------------------------ the app
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
    entries = {name: _entry_class(model)(name, model, settings, metrics) for name, model in store.models.items()}

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
    _install_error_handlers(app)
    _add_routes(app, store, entries, settings)
    _install_openapi(app, entries, settings)
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


def _kind(entry) -> str:
    """"predict" (a tabular model), "recommend" or "search"."""
    return getattr(entry, "kind", "recommend" if entry.recommender else "predict")


def _defaults(store: ModelStore, entries: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """The models answering ``/v1/predict``, ``/v1/recommend`` and ``/v1/search``: the store's
    default when it does that task, else the only model that does."""
    out = []
    for kind in ("predict", "recommend", "search"):
        names = [n for n, e in entries.items() if _kind(e) == kind]
        if store.default is not None and _kind(entries[store.default]) == kind:
            out.append(store.default)
        else:
            out.append(names[0] if len(names) == 1 else None)
    return out[0], out[1], out[2]


def _wrong_task(entry, route: str | None = None) -> ApiError:
    if _kind(entry) == "search":
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


def _add_routes(app: FastAPI, store: ModelStore, entries: dict[str, Any], settings: ServeSettings) -> None:
    predict_default, recommend_default, search_default = _defaults(store, entries)
    recommenders = [n for n, e in entries.items() if _kind(e) == "recommend"]
    indexes = [n for n, e in entries.items() if _kind(e) == "search"]

    def entry_for(name: str):
        if name not in entries:
            raise ApiError(404, f"no model named '{name}'; the models are: {', '.join(entries) or 'none'}",
                           code="model_not_found", extra={"models": list(entries)})
        return entries[name]

    def no_default(route: str, kind: str) -> ApiError:
        wanted = [n for n, e in entries.items() if _kind(e) == kind]
        default = entries.get(store.default) if store.default is not None else None
        if not wanted and default is not None:
            return _wrong_task(default, route)
        what = {"recommend": "recommender", "search": "search index"}.get(kind, "model")
        return ApiError(404, f"there is no default {what}; POST to /v1/models/{{name}}/{route} with one of: "
                        f"{', '.join(wanted) or 'none'}", code="no_default_model", extra={"models": wanted})

    def predict_route(name: str | None):
        async def predict(request: Request) -> Response:
            if name is None:
                raise no_default("predict", "predict")
            return await _predict(request, entry_for(name), settings)
        return predict

    model_name = PathParam(description=f"A model name: {', '.join(entries) or 'none'}", examples=list(entries)[:3] or ["model"])
    predict_doc = "One record, `{\"records\": [...]}`, or a CSV file (multipart field `file`). "
    tags = ["predict"]
    app.add_api_route(
        "/v1/predict", predict_route(predict_default), methods=["POST"], tags=tags, operation_id="predict_default",
        summary=f"Predict with the default model ({predict_default})" if predict_default else "Predict with the default model (none set)",
        description=predict_doc, responses={200: {"model": PredictResponse}, **ERRORS},
        openapi_extra=entries[predict_default].schema.request_body() if predict_default else None,
    )
    for name, entry in entries.items():
        if SAFE_NAME.fullmatch(name) and _kind(entry) == "predict":  # documented with its own input schema
            app.add_api_route(
                f"/v1/models/{name}/predict", predict_route(name), methods=["POST"], tags=tags,
                operation_id=f"predict_{schema_name(name)}", summary=f"Predict with model '{name}'",
                description=predict_doc, responses={200: {"model": PredictResponse}, **ERRORS},
                openapi_extra=entry.schema.request_body(),
            )

    @app.post("/v1/models/{name}/predict", include_in_schema=False)
    async def predict_any(name: str, request: Request) -> Response:
        return await _predict(request, entry_for(name), settings)

    # ---------------------------------------------------------------- recommenders
    def recommend_routes(action: str, path: str):
        async def answer_default(request: Request) -> Response:
            if recommend_default is None:
                raise no_default(path, "recommend")
            return await _recommend(request, entries[recommend_default], settings, action)

        async def answer_named(request: Request, name: str = model_name) -> Response:
            return await _recommend(request, entry_for(name), settings, action)
        return answer_default, answer_named

    rec_tags = ["recommend"]
    which = f"the default recommender ({recommend_default})" if recommend_default else "the default recommender (none set)"
    recommend_doc = ('`{"user": ID, "k": 10, "exclude_seen": true}` or `{"users": [ID, ...], ...}`. A user the model '
                     "has never seen gets the most popular items (said in `notes`). "
                     f"Recommenders served: {', '.join(recommenders) or 'none'}.")
    similar_doc = f'`{{"item": ID, "k": 10}}`: the items most like one item. Recommenders served: {", ".join(recommenders) or "none"}.'
    for path, action, doc, request_model, response in (
        ("recommend", "recommend", recommend_doc, RecommendRequest, RecommendResponse),
        ("similar-items", "similar", similar_doc, SimilarItemsRequest, SimilarItemsResponse),
    ):
        what = "Recommendations" if action == "recommend" else "Similar items"
        common = dict(methods=["POST"], tags=rec_tags, description=doc, responses={200: {"model": response}, **ERRORS},
                      openapi_extra=recommend_body(request_model))
        answer_default, answer_named = recommend_routes(action, path)
        app.add_api_route(f"/v1/{path}", answer_default, operation_id=f"{action}_default",
                          summary=f"{what} from {which}", **common)
        app.add_api_route(f"/v1/models/{{name}}/{path}", answer_named, operation_id=f"{action}_by_name",
                          summary=f"{what} from a recommender, by name", **common)

    # ---------------------------------------------------------------- search indexes
    async def search_default_route(request: Request) -> Response:
        if search_default is None:
            raise no_default("search", "search")
        return await _search(request, entries[search_default], settings)

    async def search_named(request: Request, name: str = model_name) -> Response:
        return await _search(request, entry_for(name), settings)

    search_doc = ('`{"query": "...", "k": 5}` or `{"queries": ["...", ...], "k": 5}`: the indexed texts closest in '
                  f"meaning to each query, best first, with their answers. Search indexes served: {', '.join(indexes) or 'none'}.")
    common = dict(methods=["POST"], tags=["search"], description=search_doc,
                  responses={200: {"model": SearchResponse}, **ERRORS}, openapi_extra=recommend_body(SearchRequest))
    which = f"the default search index ({search_default})" if search_default else "the default search index (none set)"
    app.add_api_route("/v1/search", search_default_route, operation_id="search_default",
                      summary=f"Semantic search in {which}", **common)
    app.add_api_route("/v1/models/{name}/search", search_named, operation_id="search_by_name",
                      summary="Semantic search in an index, by name", **common)

    # ---------------------------------------------------------------- explanations
    add_explain_routes(app, entries, predict_default, entry_for=entry_for, no_default=no_default, model_name=model_name,
                       settings=settings, errors=ERRORS, read_body=_read_body)

    # ---------------------------------------------------------------- models and operations
    @app.get("/v1/models", tags=["models"], summary="The models served")
    async def list_models() -> dict:
        defaults = (predict_default, recommend_default, search_default)
        # "default" per model: it answers its task's short route (/v1/predict, /v1/recommend,
        # /v1/search); the top-level "default" is the one --default named (the page opens it)
        return {"models": [e.summary(e.name in defaults) for e in entries.values()], "default": store.default}

    @app.get("/v1/models/{name}", tags=["models"], summary="A model's metadata, metrics and inputs",
             responses={404: {"model": ErrorResponse}})
    async def model_detail(name: str = model_name) -> dict:
        return _clean(entry_for(name).detail())

    @app.get("/v1/models/{name}/report", tags=["models"], summary="A model's HTML validation report",
             response_class=HTMLResponse, responses={404: {"model": ErrorResponse}})
    async def model_report(name: str = model_name) -> Response:
        entry = entry_for(name)
        report = entry.model._attachments.get("report.html")
        if report is None or not Path(report).is_file():
            raise ApiError(404, f"model '{name}' has no report", code="report_not_found")
        return FileResponse(report, media_type="text/html")

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: models are loaded (503 otherwise)",
             responses={503: {"model": ErrorResponse}})
    async def readyz() -> dict:
        if not entries:
            raise ApiError(503, "no models are loaded", code="not_ready")
        return {"status": "ready", "models": list(entries)}

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics of this process",
             response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        index = WEB_DIR / "index.html"
        return FileResponse(index, media_type="text/html") if index.is_file() else HTMLResponse(PLACEHOLDER)

    @app.get("/static/{path:path}", include_in_schema=False)
    async def static(path: str) -> Response:
        base = WEB_DIR.resolve()
        target = (base / path).resolve()
        if base not in target.parents or not target.is_file():
            raise ApiError(404, f"no static file '{path}'")
        return FileResponse(target)


async def _predict(request: Request, entry: Entry, settings: ServeSettings) -> Response:
    if _kind(entry) != "predict":
        raise _wrong_task(entry)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        kind = "json"
    elif media in ("multipart/form-data", "text/csv"):
        kind = "csv"
    else:
        raise ApiError(415, f"content type '{media or 'none'}' is not accepted; send application/json "
                       "(a record, or {\"records\": [...]}), multipart/form-data with a CSV file in field 'file', or text/csv")

    def parse(body: bytes) -> Parsed:
        if kind == "json":
            return entry.schema.parse_json(body, settings.max_records)
        return entry.schema.parse_csv(body, settings.max_records)

    def direct(body: bytes) -> Response:
        return entry.predict_direct(parse(body))

    async def work() -> Response:
        nonlocal kind
        body = await _read_body(request, settings.max_body_bytes)
        if media == "multipart/form-data":
            body, is_record = await _upload(request, body, entry)
            kind = "json" if is_record else kind
        # A few JSON records take well under a millisecond: a hop to a worker thread would cost
        # more than it frees the event loop. Bigger bodies are worked on in a thread.
        inline = kind == "json" and len(body) <= INLINE_BYTES

        async def run(fn, *args):
            return fn(*args) if inline else await asyncio.to_thread(fn, *args)

        if entry.batcher is None:
            return await run(direct, body)  # one hop for the whole request
        parsed = await run(parse, body)
        if len(parsed) > settings.batch_max_size:
            return await run(entry.predict_direct, parsed)
        features, notes = await run(entry.features, parsed)
        outputs = await entry.batcher.predict(features)
        return await run(entry.respond, outputs, parsed.warnings + notes)

    try:
        return await asyncio.wait_for(work(), timeout=settings.timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, f"the prediction took longer than {settings.timeout_s:g}s. Fix: send fewer records "
                       "per request, or raise --timeout", code="timeout") from None


async def _recommend(request: Request, entry, settings: ServeSettings, action: str) -> Response:
    """``action`` "recommend" or "similar" of a recommender: JSON in, JSON out, under the deadline."""
    if not entry.recommender:
        raise _wrong_task(entry, "recommend" if action == "recommend" else "similar-items")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        raise ApiError(415, f"content type '{media or 'none'}' is not accepted; send application/json")
    answer = entry.recommend if action == "recommend" else entry.similar

    async def work() -> Response:
        body = await _read_body(request, settings.max_body_bytes)
        return await asyncio.to_thread(answer, body)  # scoring a catalogue is not event-loop work

    try:
        return await asyncio.wait_for(work(), timeout=settings.timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, f"the request took longer than {settings.timeout_s:g}s. Fix: ask for fewer users "
                       "per request, or raise --timeout", code="timeout") from None


async def _search(request: Request, entry, settings: ServeSettings) -> Response:
    """A search request: JSON in, JSON out, under the deadline."""
    if _kind(entry) != "search":
        raise _wrong_task(entry, "search")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        raise ApiError(415, f"content type '{media or 'none'}' is not accepted; send application/json")

    async def work() -> Response:
        body = await _read_body(request, settings.max_body_bytes)
        return await asyncio.to_thread(entry.search, body)  # embedding the queries is not event-loop work

    try:
        return await asyncio.wait_for(work(), timeout=settings.timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, f"the search took longer than {settings.timeout_s:g}s. Fix: send fewer queries "
                       "per request, or raise --timeout", code="timeout") from None


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) past ``limit`` bytes: by Content-Length first, then as it streams."""
    too_large = ApiError(413, f"the request body is larger than the limit of {limit:,} bytes. Fix: send "
                         "smaller batches", code="payload_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the client disconnected before sending the whole body", code="client_disconnected") from None
    return b"".join(chunks)


async def _upload(request: Request, body: bytes, entry: Entry) -> tuple[bytes, bool]:
    """The CSV of a multipart upload (field ``file``), or, for a model with image inputs,
    one record made of the uploaded image file(s) (a field named as the image column) and the
    other form fields; returns the body and whether it is a JSON record."""
    async def stream():
        yield body

    images = [n for n, k in entry.schema.kinds.items() if k == "image"]
    try:
        form = await MultiPartParser(request.headers, stream(), max_files=max(1, len(images)), max_fields=200).parse()
    except Exception as exc:  # noqa: BLE001 (python-multipart raises several kinds on malformed bodies)
        raise ApiError(400, f"the multipart body cannot be read: {exc}", code="invalid_multipart") from None
    if any(isinstance(form.get(n), UploadFile) for n in images):
        import base64

        try:
            record: dict[str, Any] = {}
            for name in entry.schema.names:
                value = form.get(name)
                if isinstance(value, UploadFile):
                    record[name] = base64.b64encode(await value.read()).decode("ascii")
                else:
                    record[name] = value if value not in (None, "") else None
            return json.dumps(record).encode(), True
        finally:
            await form.close()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "no file in the upload; send the CSV as the multipart field 'file'",
                       fields=[{"field": "file", "problem": "required field is missing"}])
    try:
        return await upload.read(), False
    finally:
        await form.close()


# ------------------------------------------------------------------ errors and OpenAPI
def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request.scope, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; the API is described at /docs"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(request.scope, ApiError(exc.status_code, message, headers=exc.headers))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields = [{"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "problem": e["msg"]} for e in exc.errors()]
        return error_response(request.scope, ApiError(422, "the request is not valid", fields=fields))

    @app.exception_handler(TakeoffError)
    async def takeoff_error(request: Request, exc: TakeoffError) -> Response:
        if isinstance(exc, DataError):
            return error_response(request.scope, from_data_error(exc, single=False))
        log.error("unexpected takeoff error answering %s %s: %s", request.method, request.url.path, exc)
        return error_response(request.scope, ApiError(500, "internal error; the server logged the details"))


def _install_openapi(app: FastAPI, entries: dict[str, Entry], settings: ServeSettings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {})
            for entry in entries.values():
                if _kind(entry) == "predict":
                    components.setdefault("schemas", {}).update(entry.schema.components(settings.max_records))
            components.setdefault("schemas", {}).update(recommend_components(settings.max_records))
            components.setdefault("schemas", {}).update(search_components(settings.max_records))
            if settings.api_key:
                components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
                schema["security"] = [{"bearer": []}]
                for path in ("/healthz", "/readyz"):
                    for operation in schema["paths"].get(path, {}).values():
                        operation["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _entry_class(model):
    kind = model.manifest.get("task", {}).get("kind")
    return {"recommend": RecommendEntry, "search": SearchEntry}.get(kind, Entry)


# ------------------------------------------------------------------ JSON helpers
def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _finite(value: Any) -> Any:
    value = _native(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(obj: Any) -> Any:
    """JSON-ready: numpy scalars to Python, non-finite floats to None, recursively."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    return _finite(obj)
