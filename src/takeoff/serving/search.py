"""Serving semantic search indexes: the request and response models of ``POST /v1/search``
(and ``POST /v1/models/{name}/search``), and the served entry that answers them from a
:class:`~takeoff.pipelines.search.SearchIndex`.

A request holds one query (``{"query": "...", "k": 5}``) or several (``{"queries": [...]}``);
the answer has one result per query, in request order, each with its hits best first.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from takeoff.serving.errors import ApiError
from takeoff.serving.recommend import _json, parse

MAX_K = 1000
MAX_QUERY_CHARS = 10_000

Query = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="A question or text to search for.",
                             examples=["I forgot my password"])]


class SearchRequest(BaseModel):
    """One query (``query``) or several (``queries``); give one of the two."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "I forgot my password", "k": 5}, {"queries": ["where is my parcel?", "refund please"], "k": 3}]})

    query: Query | None = Field(None, description="One query. Give `query` or `queries`.")
    queries: list[Query] | None = Field(None, min_length=1, description="Several queries (at most the server's max_records).")
    k: Annotated[int, Field(strict=True, ge=1, le=MAX_K, description=f"How many hits per query (1 to {MAX_K}).")] = 5


class Hit(BaseModel):
    model_config = ConfigDict(extra="allow")

    score: float = Field(description="Cosine similarity of the query and the text (-1 to 1; higher is closer).")
    text: str = Field(description="The indexed text (e.g. the FAQ question).")
    answer: Any = Field(None, description="The row's answer column, or null without one.")
    row: int = Field(description="The row's position in the indexed table (from 0). The row's other columns follow.")


class QueryResult(BaseModel):
    query: str
    hits: list[Hit] = Field(description="Best first.")


class SearchResponse(BaseModel):
    model: str
    version: str = Field(description="Content hash of the bundle's manifest.")
    results: list[QueryResult] = Field(description="One per query, in request order.")


def components(max_records: int) -> dict[str, Any]:
    """The request model as an OpenAPI component schema (``queries`` capped at ``max_records``)."""
    schema = SearchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    out: dict[str, Any] = dict(schema.pop("$defs", {}))
    queries = schema["properties"]["queries"]
    for option in queries.get("anyOf", [queries]):
        if option.get("type") == "array":
            option["maxItems"] = max_records
    out["SearchRequest"] = schema
    return out


class SearchEntry:
    """A served search index: parses its requests and answers them as JSON bytes."""

    recommender = False
    kind = "search"

    def __init__(self, name: str, model, settings, metrics):
        self.name, self.model, self.settings, self.metrics = name, model, settings, metrics
        model.encoder  # load the encoder now, not on the first request

    # called on a worker thread, with the body read
    def search(self, body: bytes) -> Response:
        request = parse(SearchRequest, body, self.settings.max_json_depth)
        if (request.query is None) == (request.queries is None):
            both = request.query is not None
            problem = "give either query or queries, not both" if both else "give query (a text) or queries (a list of texts)"
            raise ApiError(422, f"the request must hold `query` or `queries`: {problem}",
                           fields=[{"field": "query", "problem": problem}, {"field": "queries", "problem": problem}])
        queries = [request.query] if request.queries is None else list(request.queries)
        if len(queries) > self.settings.max_records:
            raise ApiError(413, f"{len(queries)} queries in one request; the limit is {self.settings.max_records}. "
                           "Fix: send smaller batches.", code="too_many_records")
        results = self.model.search_batch(queries, k=request.k)
        self.metrics.rows.labels(self.name).inc(len(queries))
        return _json({"model": self.name, "version": self.model.version,
                      "results": [{"query": q, "hits": hits} for q, hits in zip(queries, results)]})

    # ------------------------------------------------------------------ metadata
    def summary(self, default: bool) -> dict[str, Any]:
        m = self.model
        return {"name": self.name, "task": "search", "target": None, "classes": [], "version": m.version,
                "created": m.manifest.get("created"), "default": default, "rows": len(m),
                "encoder": m.manifest["encoder"]["name"]}

    def detail(self) -> dict[str, Any]:
        m = self.model
        s, enc = m.manifest["search"], m.manifest["encoder"]
        return {
            "name": self.name, "version": m.version, "task": "search", "target": None, "classes": [],
            "created": m.manifest.get("created"), "format_version": m.manifest.get("format_version"),
            "takeoff_version": m.manifest.get("takeoff_version"), "metrics": {},
            "rows": len(m), "dim": s["dim"], "columns": {"text": s["text"], "answer": s["answer"]},
            "metadata_columns": s["metadata_columns"],
            "encoder": {"name": enc["name"], "embedded": enc["embedded"], "sha256": enc["sha256"],
                        "max_length": enc.get("max_length")},
            "notes": m.notes, "example_texts": m.texts[:5],
            "routes": {"search": f"/v1/models/{self.name}/search"}, "report_url": None,
        }
