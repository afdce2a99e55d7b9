"""Serving recommenders: the request and response models of ``POST /v1/recommend`` and
``POST /v1/similar-items`` (and their ``/v1/models/{name}/...`` forms), and the served entry
that answers them from a :class:`~takeoff.pipelines.recommendation.RecommenderModel`.

IDs are JSON integers or strings; ``1`` and ``"1"`` name the same user or item, as in
training. A user the model has never seen gets the most popular items (said in ``notes``);
an unknown item in a similar-items request is a 404 naming the field.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError
from starlette.responses import Response

from takeoff.errors import DataError, preview
from takeoff.serving.errors import ApiError
from takeoff.serving.limits import load_json
from takeoff.serving.settings import ServeSettings
from takeoff.data.interactions import native_id
from takeoff.serving.items import item_labels
from takeoff.serving.jsonable import finite

MAX_K = 1000  # items per list: a page of results, not the catalogue
ID_HELP = "an ID as in the training data: a whole number or a non-empty string"

ItemId = Annotated[
    Union[StrictInt, Annotated[StrictStr, Field(min_length=1, max_length=256)]],
    Field(description="An ID as in the training data: a JSON integer or a string (1 and \"1\" are the same ID).",
          examples=[1]),
]
K = Annotated[int, Field(strict=True, ge=1, le=MAX_K, description=f"How many items to return (1 to {MAX_K}).")]


# ------------------------------------------------------------------ requests
class RecommendRequest(BaseModel):
    """Recommendations for one user (``user``) or several (``users``); give one of the two."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user": 1, "k": 10, "exclude_seen": True}, {"users": [1, 2, "anonymous"], "k": 5}]})

    user: ItemId | None = Field(None, description="One user ID. Give `user` or `users`.")
    users: list[ItemId] | None = Field(None, min_length=1, description="Several user IDs (at most the server's max_records).")
    k: K = 10
    exclude_seen: StrictBool = Field(True, description="Leave out the items the user interacted with in training.")
    features: dict[str, Any] | list[dict[str, Any] | None] | None = Field(
        None, description="User features (column → value) for users the model has never seen: a dict with `user`, "
                          "one dict (or null) per user with `users`. Known users ignore them.")

    def ids(self) -> list[Any]:
        return [self.user] if self.users is None else list(self.users)


class SimilarItemsRequest(BaseModel):
    """The items most like one item."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"item": 1, "k": 10}]})

    item: ItemId
    k: K = 10


# ------------------------------------------------------------------ documented responses
class RecommendedItem(BaseModel):
    item: int | str = Field(description="The item ID (a number when the IDs look like integers).")
    score: float = Field(description="The model's score: higher is better; comparable within one list only.")
    label: str | None = Field(None, description="The item's title (from the bundle's item features), when it has one.")


class UserRecommendations(BaseModel):
    user: int | str = Field(description="The user ID, as sent.")
    items: list[RecommendedItem] = Field(description="Best first.")
    notes: list[str] = Field(description="How the list was made, e.g. 'user 7 is not in the training data: most popular items'.")


class RecommendResponse(BaseModel):
    model: str
    version: str = Field(description="Content hash of the bundle's manifest.")
    recommendations: list[UserRecommendations] = Field(description="One per user, in request order.")


class SimilarItemsResponse(BaseModel):
    model: str
    version: str
    item: int | str = Field(description="The item ID, as sent.")
    items: list[RecommendedItem] = Field(description="The most similar items, best first (never the item itself).")
    notes: list[str]


def components(max_records: int) -> dict[str, Any]:
    """The request models as OpenAPI component schemas (``users`` capped at ``max_records``)."""
    out: dict[str, Any] = {}
    for model in (RecommendRequest, SimilarItemsRequest):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    users = out["RecommendRequest"]["properties"]["users"]
    for option in users.get("anyOf", [users]):
        if option.get("type") == "array":
            option["maxItems"] = max_records
    return out


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


# ------------------------------------------------------------------ parsing
JSON_DEPTH = ServeSettings.model_fields["max_json_depth"].default


def parse(model: type[BaseModel], body: bytes, max_depth: int = JSON_DEPTH) -> BaseModel:
    """A JSON body as ``model``; raises ApiError (400 unreadable or nested deeper than
    ``max_depth``, 422 naming the fields)."""
    data = load_json(body, max_depth)
    if not isinstance(data, dict):
        raise ApiError(422, f"the body must be a JSON object, e.g. {json.dumps(model.model_config['json_schema_extra']['examples'][0])}",
                       fields=[{"field": "body", "problem": "not a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "the request is not valid", fields=_problems(exc, model)) from None


def _problems(exc: ValidationError, model: type[BaseModel]) -> list[dict[str, str]]:
    problems: dict[str, list[str]] = {}
    ids = {"user", "users", "item"}
    for error in exc.errors(include_url=False, include_input=False):
        loc = list(error["loc"])
        path = str(loc[0]) if loc else "body"
        for part in loc[1:]:  # list indices; union members ('int', 'str') are not part of the path
            if not isinstance(part, int):
                break
            path += f"[{part}]"
        kind = error["type"]
        if kind == "missing":
            message = "required field is missing"
        elif loc == ["k"]:
            message = f"must be a whole number from 1 to {MAX_K}"
        elif kind == "extra_forbidden":
            message = f"unknown field; the fields are: {', '.join(model.model_fields)}"
        elif loc and loc[0] in ids and kind in ("int_type", "string_type", "string_too_short", "string_too_long") \
                and not (loc[0] == "users" and len(loc) == 1):
            message = f"must be {ID_HELP} (at most 256 characters)"
        else:
            message = error["msg"]
        if message not in problems.setdefault(path, []):
            problems[path].append(message)
    return [{"field": path, "problem": "; ".join(msgs)} for path, msgs in problems.items()]


# ------------------------------------------------------------------ one served recommender
class RecommendEntry:
    """A served recommender: parses its requests and answers them as JSON bytes."""

    recommender = True

    def __init__(self, name: str, model, settings, metrics):
        self.name, self.model, self.settings, self.metrics = name, model, settings, metrics
        self.label_column, self.labels = item_labels(model)

    # called on a worker thread, with the body read
    def recommend(self, body: bytes) -> Response:
        request = parse(RecommendRequest, body, self.settings.max_json_depth)
        if (request.user is None) == (request.users is None):
            both = request.user is not None
            problem = "give either user or users, not both" if both else "give user (one ID) or users (a list of IDs)"
            raise ApiError(422, f"the request must hold `user` or `users`: {problem}",
                           fields=[{"field": "user", "problem": problem}, {"field": "users", "problem": problem}])
        users = request.ids()
        if len(users) > self.settings.max_records:
            raise ApiError(413, f"{len(users)} users in one request; the limit is {self.settings.max_records}. "
                           "Fix: send smaller batches.", code="too_many_records")
        features = request.features
        if isinstance(features, dict):
            features = [features] if request.users is None else None
            if features is None:
                raise ApiError(422, "with `users`, `features` is a list: one dict (or null) per user",
                               fields=[{"field": "features", "problem": "expected a list"}])
        if features is not None and len(features) != len(users):
            raise ApiError(422, f"`features` holds {len(features)} entries for {len(users)} user(s); give one per user",
                           fields=[{"field": "features", "problem": "one entry per user"}])
        try:
            results = self.model.recommend_batch(users, k=request.k, exclude_seen=request.exclude_seen, features=features)
        except DataError as exc:
            raise ApiError(422, str(exc), fields=[{"field": "features", "problem": str(exc)}]) from None
        self.metrics.rows.labels(self.name).inc(len(users))
        body_out = {"model": self.name, "version": self.model.version, "recommendations": [
            {"user": user, "items": self._items(r.items, r.scores), "notes": r.notes} for user, r in zip(users, results)]}
        return _json(body_out)

    def similar(self, body: bytes) -> Response:
        request = parse(SimilarItemsRequest, body, self.settings.max_json_depth)
        try:
            result = self.model.similar_items(request.item, k=request.k)
        except DataError:
            raise ApiError(404, f"item {request.item!r} is not in the training data of model '{self.name}', so nothing "
                           f"is known about it. Known items look like: {preview(self.model.log.items[:5], 5)}",
                           code="item_not_found", fields=[{"field": "item", "problem": "not in the training data"}]) from None
        self.metrics.rows.labels(self.name).inc()
        return _json({"model": self.name, "version": self.model.version, "item": request.item,
                      "items": self._items(result.items, result.scores), "notes": result.notes})

    def _items(self, items: list[Any], scores: list[float]) -> list[dict[str, Any]]:
        out = [{"item": item, "score": finite(score)} for item, score in zip(items, scores)]
        if self.labels is not None:
            codes = self.model.log.codes_of_items(items)
            for row, code in zip(out, codes.tolist()):
                row["label"] = self.labels[code] if code >= 0 and self.labels[code] else None
        return out

    # ------------------------------------------------------------------ metadata
    def summary(self, default: bool) -> dict[str, Any]:
        m = self.model
        return {"name": self.name, "task": "recommend", "target": None, "classes": [], "version": m.version,
                "created": m.manifest.get("created"), "default": default, "family": m.manifest.get("family"),
                "users": m.n_users, "items": m.n_items}

    def detail(self) -> dict[str, Any]:
        m = self.model
        rc = m.manifest.get("recommend", {})
        training = m.manifest.get("training", {})
        return {
            "name": self.name, "version": m.version, "task": "recommend", "target": None, "classes": [],
            "family": m.manifest.get("family"), "params": m.manifest.get("params"),
            "created": m.manifest.get("created"), "format_version": m.manifest.get("format_version"),
            "takeoff_version": m.manifest.get("takeoff_version"),
            "metrics": m.metrics, "leaderboard": m.manifest.get("leaderboard"), "k": rc.get("k"),
            "columns": {"user": rc.get("user"), "item": rc.get("item"), "rating": rc.get("rating"), "time": rc.get("time")},
            "users": m.n_users, "items": m.n_items, "interactions": training.get("interactions"),
            "item_label": self.label_column,
            "example_users": [native_id(u) for u in m.log.users[:5]],
            "example_items": [native_id(i) for i in m.log.items[:5]],
            "routes": {"recommend": f"/v1/models/{self.name}/recommend", "similar_items": f"/v1/models/{self.name}/similar-items"},
            "report_url": f"/v1/models/{self.name}/report" if "report.html" in m.attachments else None,
        }


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, allow_nan=False), media_type="application/json")
