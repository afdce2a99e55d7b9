"""The documented response shapes of the predict routes and of every error (for OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


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
