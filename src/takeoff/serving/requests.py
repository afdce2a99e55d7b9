"""Request bodies of one model: a pydantic record model built from the bundle's inputs, the
OpenAPI pieces that show it, and parsing of JSON and CSV bodies into a DataFrame.

Every input field is required but nullable: send ``null`` for an unknown value (it is imputed
as in training). Unknown fields are ignored and reported as warnings, as ``takeoff predict``
ignores extra columns. The rows then go through ``Model.features`` like any other data.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Optional

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from takeoff.errors import preview
from takeoff.serving.errors import ApiError, field_path
from takeoff.serving.limits import CHUNK_ROWS, check_cells, check_columns, check_deadline, load_json
from takeoff.serving.settings import ServeSettings

_PYTHON_TYPES: dict[str, Any] = {
    "numeric": Optional[Annotated[float, Field(allow_inf_nan=False)]],
    "boolean": Optional[bool],
    "datetime": Optional[datetime | str],
    "categorical": Optional[str],
    "text": Optional[str],
}


@dataclass
class Parsed:
    """A request's rows, in the model's input columns, and what was ignored on the way: JSON
    records as validated dicts (a DataFrame costs milliseconds per request), CSV as a frame."""

    rows: list[dict[str, Any]] | pd.DataFrame
    single: bool
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def schema_name(name: str) -> str:
    """A component-schema-safe spelling of a model name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _describe(f: dict[str, Any]) -> tuple[str, list[Any]]:
    kind = f["kind"]
    if kind == "numeric":
        median = f.get("median")
        hint = f" (training median {median:g})" if isinstance(median, (int, float)) and math.isfinite(median) else ""
        return f"A number{hint}. null when unknown (imputed).", [median if isinstance(median, (int, float)) and math.isfinite(median) else 0.0]
    if kind == "categorical":
        cats = [str(c) for c in f.get("categories", [])]
        known = f" Known values: {preview(cats, 20)}; other values are treated as unseen." if cats else ""
        return f"A category.{known} null when unknown.", [cats[0] if cats else "a"]
    if kind == "boolean":
        return "true or false (also 'yes'/'no', 1/0). null when unknown.", [True]
    if kind == "datetime":
        return "A date or date-time (ISO 8601 preferred). null when unknown.", ["2024-01-31T12:00:00"]
    return "Free text. null when unknown.", ["text"]


class RequestSchema:
    """How one model reads requests: validation, OpenAPI schemas, JSON and CSV parsing."""

    def __init__(self, name: str, model, settings: ServeSettings | None = None):
        self.name, self.model = name, model
        self.limits = settings or ServeSettings(api_key=None)
        self.fields = model.input_fields()
        self.names = [f["name"] for f in self.fields]
        self.kinds = {f["name"]: f["kind"] for f in self.fields}
        self.target = model.task.target
        prefix = schema_name(name)
        self.record_ref, self.batch_ref = f"{prefix}.Record", f"{prefix}.Batch"
        definitions = {}
        for i, f in enumerate(self.fields):
            description, examples = _describe(f)
            # Python names f0, f1, ... with the column name as alias: columns need not be identifiers.
            definitions[f"f{i}"] = (_PYTHON_TYPES.get(f["kind"], Optional[str]),
                                    Field(alias=f["name"], title=f["name"], description=description, examples=examples))
        self.record: type[BaseModel] = create_model(
            self.record_ref,
            __config__=ConfigDict(extra="ignore", coerce_numbers_to_str=True, json_schema_extra={"additionalProperties": True}),
            __doc__=f"One input row of model '{name}'. Every field is required; send null for an unknown value. "
                    "Unknown fields are ignored (and reported in warnings).",
            **definitions,
        )
        self.adapter = TypeAdapter(list[self.record])

    # ------------------------------------------------------------------ OpenAPI
    def components(self, max_records: int) -> dict[str, Any]:
        record = self.record.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        batch = {
            "title": self.batch_ref, "type": "object", "required": ["records"],
            "description": f"Several input rows of model '{self.name}' (at most {max_records}).",
            "properties": {"records": {"type": "array", "minItems": 1, "maxItems": max_records,
                                       "items": {"$ref": f"#/components/schemas/{self.record_ref}"}}},
        }
        return {self.record_ref: record, self.batch_ref: batch}

    def request_body(self) -> dict[str, Any]:
        refs = [{"$ref": f"#/components/schemas/{self.batch_ref}"}, {"$ref": f"#/components/schemas/{self.record_ref}"}]
        csv = {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary", "description": "A CSV file with a header row naming the input fields."}}}
        return {"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"anyOf": refs}},
            "multipart/form-data": {"schema": csv},
        }}}

    # ------------------------------------------------------------------ parsing
    def parse_json(self, body: bytes, max_records: int) -> Parsed:
        """A JSON body (one record, or ``{"records": [...]}``) as rows; raises ApiError."""
        data = load_json(body, self.limits.max_json_depth)
        if not isinstance(data, dict):
            raise ApiError(422, 'the body must be a JSON object: one record, or {"records": [record, ...]}')
        warnings = []
        if "records" in data and ("records" not in self.kinds or isinstance(data["records"], list)):
            records, single = data["records"], False
            if not isinstance(records, list):
                raise ApiError(422, "'records' must be a list of objects", fields=[{"field": "records", "problem": "not a list"}])
            if not records:
                raise ApiError(422, "'records' is empty; send at least one record", fields=[{"field": "records", "problem": "empty list"}])
            others = [k for k in data if k != "records"]
            if others:
                warnings.append(f"ignored top-level field(s): {preview(others)}")
        else:
            records, single = [data], True
        return self.parse_records(records, single, max_records, warnings)

    def parse_records(self, records: list[Any], single: bool, max_records: int, warnings: list[str] | None = None) -> Parsed:
        """Records (dicts, as decoded from JSON) validated against the model's inputs; raises ApiError."""
        warnings = list(warnings or [])
        if len(records) > max_records:
            raise ApiError(413, f"{len(records)} records in one request; the limit is {max_records} (setting max_records). "
                           "Fix: send smaller batches.", code="too_many_records")
        widths = [len(r) if isinstance(r, dict) else 0 for r in records]
        for i, width in enumerate(widths):
            check_columns(width, self.limits.max_columns, "the record" if single else f"record {i}")
        check_cells(sum(widths), self.limits.max_cells)
        try:
            rows = []
            for start in range(0, len(records), CHUNK_ROWS):  # the deadline is checked between chunks
                check_deadline()
                rows.extend(self.adapter.dump_python(self.adapter.validate_python(records[start:start + CHUNK_ROWS]), by_alias=True))
        except ValidationError as exc:
            raise ApiError(422, f"the request does not match the inputs of model '{self.name}'",
                           fields=_field_problems(exc, single, start)) from None
        self._decode_images(rows)
        extras = set().union(*(r.keys() for r in records)) - set(self.names) - {self.target}
        if extras:
            warnings.insert(0, f"ignored field(s) the model does not use: {preview(sorted(extras))}")
        return Parsed(rows, single, warnings)

    def parse_csv(self, content: bytes, max_records: int) -> Parsed:
        """A CSV file with a header row as rows; raises ApiError.

        The header's width is checked before pandas reads anything (a wide header costs pandas
        a column object per name), and the rows are read in chunks, counted against
        ``max_records`` and ``max_cells``, with the deadline checked between chunks.
        """
        width = _csv_width(content, self.limits.max_columns)
        check_columns(width, self.limits.max_columns, "the CSV")
        frames, rows = [], 0
        try:
            reader = pd.read_csv(io.BytesIO(content), sep=",", encoding="utf-8", chunksize=CHUNK_ROWS)
            with reader:
                for chunk in reader:
                    rows += len(chunk)
                    if rows > max_records:
                        raise ApiError(413, f"more than {max_records} rows in one request; the limit is {max_records} "
                                       "(setting max_records). Fix: send smaller files, or use `takeoff predict` for large ones.",
                                       code="too_many_records")
                    check_cells(rows * len(chunk.columns), self.limits.max_cells)
                    check_deadline()
                    frames.append(chunk)
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the file is not a readable UTF-8 CSV with a header row: {_first_line(exc)}", code="invalid_csv") from None
        if not rows:
            raise ApiError(422, "the CSV has a header but no rows", fields=[{"field": "file", "problem": "no rows"}])
        df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        columns = [str(c) for c in df.columns]
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise ApiError(422, f"column(s) {preview([repr(m) for m in missing])} missing in the CSV; the model was trained "
                           f"with: {preview(self.names, 40)}. Fix: add them (empty values are allowed).",
                           fields=[{"field": m, "problem": "required column is missing"} for m in missing])
        df.columns = columns
        if any(k == "image" for k in self.kinds.values()):
            df = df.astype({n: object for n, k in self.kinds.items() if k == "image"})
            records = df[self.names].to_dict("records")
            self._decode_images(records)
            df = pd.DataFrame(records, columns=self.names)
        extras = [c for c in columns if c not in self.kinds and c != self.target]
        warnings = [f"ignored column(s) the model does not use: {preview(extras)}"] if extras else []
        return Parsed(df[self.names].reset_index(drop=True), False, warnings)

    def _decode_images(self, rows: list[dict[str, Any]]) -> None:
        """Image fields arrive as base64 text (optionally a data: URI) and become bytes. A
        client never names a file: the server does not read paths off its own disk."""
        images = [n for n, k in self.kinds.items() if k == "image"]
        for i, row in enumerate(rows):
            for name in images:
                value = row.get(name)
                if value is None or (isinstance(value, float) and value != value):
                    row[name] = None
                    continue
                text = str(value).strip()
                if text.startswith("data:") and "," in text:
                    text = text.split(",", 1)[1]
                try:
                    row[name] = base64.b64decode(text, validate=True)
                except (ValueError, binascii.Error):
                    raise ApiError(422, f"field '{name}' of record {i} is not base64 image data. Fix: send the image "
                                        "file's bytes base64-encoded (a data: URI is accepted); file paths are not read.",
                                   fields=[{"field": name, "problem": "not base64"}]) from None


def _csv_width(content: bytes, max_columns: int) -> int:
    """The number of columns of a CSV's header row (as far as ``max_columns`` needs it), without
    making an object per column: the commas, when they are under the limit or no quote can hide
    one; else the csv module's count, on a header of a reasonable size (past it the commas,
    which can only overcount)."""
    end = content.find(b"\n")
    header = content[:end] if end >= 0 else content
    commas = header.count(b",")
    if commas < max_columns or b'"' not in header or len(header) > 1_000_000:
        return commas + 1
    try:
        return len(next(csv.reader([header.decode("utf-8-sig", errors="replace")]), []))
    except csv.Error:
        return commas + 1


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


_PROBLEMS = {"missing": "required field is missing (send null when the value is unknown)"}


def _field_problems(exc: ValidationError, single: bool, offset: int = 0) -> list[dict[str, str]]:
    problems: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False, include_input=False):
        loc = error["loc"]
        row = loc[0] + offset if loc and isinstance(loc[0], int) else None
        column = str(loc[1]) if len(loc) > 1 else None
        path = field_path(row, column, single) or "body"
        message = _PROBLEMS.get(error["type"], error["msg"])
        if message not in problems.setdefault(path, []):
            problems[path].append(message)
    return [{"field": path, "problem": "; ".join(msgs)} for path, msgs in problems.items()]
