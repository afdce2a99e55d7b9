"""The Open Inference Protocol (KServe v2) over a served table model: tensors in, tensors out.

A request gives the rows in one of two forms:

- **named columns**: one input tensor per input field, named as the field, of shape ``[N]`` (or
  ``[N, 1]``): ``{"name": "Income", "shape": [2], "datatype": "FP64", "data": [129, 80]}``;
- **one tensor**: a single input of shape ``[N, F]`` whose ``F`` values per row are the model's
  input fields in the order of the model's metadata (``GET /v2/models/{name}``); FP32/FP64 when
  every field is a number, BYTES (strings, parsed as ``/v1`` parses them) otherwise.

The rows then go through the same validation and prediction as ``/v1``. The answer holds
``prediction`` (``[N]``: the label or value; a multilabel model gives ``[N, L]`` BOOL),
``probabilities`` (classification, ``[N, C]``) and ``classes`` (``[C]``: the order of the
probabilities' columns), or the requested ``outputs`` among them. Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from takeoff._version import __version__
from takeoff.data.schema import LABEL_SEP
from takeoff.serving.errors import ApiError
from takeoff.serving.jsonable import finite, native
from takeoff.serving.limits import check_cells, check_columns, load_json
from takeoff.serving.requests import Parsed

Parameters = dict[str, str | float | int | bool]

INTEGER_TYPES = {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
FLOAT_TYPES = {"FP16", "FP32", "FP64"}
DATATYPES = {"BOOL", "BYTES", *INTEGER_TYPES, *FLOAT_TYPES}
KIND_TYPES = {"numeric": "FP64", "boolean": "BOOL"}  # every other kind is BYTES (strings)


# ---------------------------------------------------------------------------- documented shapes
class RequestInput(BaseModel):
    model_config = ConfigDict(title="v2.RequestInput")
    name: str = Field(description="An input field's name (named columns), or any name for the one [N, F] tensor.")
    shape: list[int] = Field(description="[N] or [N, 1] for a named column; [N, F] for the one tensor.")
    datatype: str = Field(description="BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64 or BYTES (strings).")
    parameters: Parameters | None = None
    data: list[Any] = Field(description="The values in row-major order, flat or nested.")


class RequestOutput(BaseModel):
    model_config = ConfigDict(title="v2.RequestOutput")
    name: str = Field(description="prediction, probabilities or classes.")
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(title="v2.InferenceRequest", json_schema_extra={"examples": [{
        "id": "42", "inputs": [{"name": "Income", "shape": [2], "datatype": "FP64", "data": [129, 80]}]}]})
    id: str | None = Field(None, description="Returned in the answer.")
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(None, description="The outputs to return (default: all).")


class ResponseOutput(BaseModel):
    model_config = ConfigDict(title="v2.ResponseOutput")
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any]


class InferenceResponse(BaseModel):
    model_config = ConfigDict(title="v2.InferenceResponse")
    model_name: str
    model_version: str = Field(description="Content hash of the bundle's manifest.")
    id: str
    parameters: Parameters | None = Field(None, description="'warnings': what was ignored or coerced, when anything was.")
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    model_config = ConfigDict(title="v2.MetadataTensor")
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    model_config = ConfigDict(title="v2.ModelMetadata")
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class V2Error(BaseModel):
    model_config = ConfigDict(title="v2.Error")
    error: str


def components() -> dict[str, Any]:
    """The v2 request and response schemas, for the OpenAPI document's components."""
    out: dict[str, Any] = {}
    for model in (InferenceRequest, InferenceResponse, ModelMetadata, V2Error):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[schema["title"]] = schema
    return out


def server_metadata() -> dict[str, Any]:
    return {"name": "takeoff", "version": __version__, "extensions": []}


# ---------------------------------------------------------------------------- metadata
def input_tensors(entry) -> list[dict[str, Any]]:
    return [{"name": f["name"], "datatype": KIND_TYPES.get(f["kind"], "BYTES"), "shape": [-1]} for f in entry.schema.fields]


def output_tensors(entry) -> list[dict[str, Any]]:
    task = entry.model.task
    if task.is_multilabel:
        n = len(task.classes)
        return [{"name": "prediction", "datatype": "BOOL", "shape": [-1, n]},
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, n]},
                {"name": "classes", "datatype": "BYTES", "shape": [n]}]
    if task.is_classification:
        n = len(task.classes)
        return [{"name": "prediction", "datatype": _datatype_of(list(task.classes)), "shape": [-1]},
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, n]},
                {"name": "classes", "datatype": "BYTES", "shape": [n]}]
    return [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]


def model_metadata(entry) -> dict[str, Any]:
    return {"name": entry.name, "versions": [entry.model.version], "platform": "takeoff",
            "inputs": input_tensors(entry), "outputs": output_tensors(entry)}


# ---------------------------------------------------------------------------- requests
def parse_infer(entry, body: bytes) -> tuple[Parsed, dict[str, Any]]:
    """An inference request body as the model's rows (validated as ``/v1`` validates records),
    and the request itself (its ``id`` and requested ``outputs``); raises ApiError."""
    limits = entry.settings
    data = load_json(body, limits.max_json_depth)
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), list) or not data["inputs"]:
        raise ApiError(400, 'the body must be an inference request: {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    if data.get("id") is not None and not isinstance(data["id"], str):
        raise ApiError(400, "'id' must be a string")
    if data.get("parameters") is not None and not isinstance(data["parameters"], dict):
        raise ApiError(400, "'parameters' must be an object")
    tensors = [_tensor(t, i) for i, t in enumerate(data["inputs"])]
    rows_sent = max((t["shape"][0] for t in tensors if t["shape"]), default=0)
    if rows_sent > limits.max_records:
        raise ApiError(413, f"{rows_sent} rows in one request; the limit is {limits.max_records} (setting max_records). "
                       "Fix: send smaller batches.", code="too_many_records")
    check_cells(sum(t["size"] for t in tensors), limits.max_cells)
    names = entry.schema.names
    single = len(tensors) == 1 and tensors[0]["name"] not in entry.schema.kinds and len(tensors[0]["shape"]) == 2
    warnings: list[str] = []
    if single:
        tensor = tensors[0]
        n, width = tensor["shape"]
        check_columns(width, limits.max_columns, f"input '{tensor['name']}'")
        if width != len(names):
            raise ApiError(400, f"input '{tensor['name']}' has {width} values per row; model '{entry.name}' takes {len(names)} "
                           f"inputs, in this order: {', '.join(names)}. Fix: send shape [N, {len(names)}], or one tensor per "
                           "input named as the input")
        values = tensor["values"]
        rows = [dict(zip(names, values[i * width:(i + 1) * width])) for i in range(n)]
    else:
        check_columns(len(tensors), limits.max_columns, "the request")
        columns: dict[str, list[Any]] = {}
        for tensor in tensors:
            shape = tensor["shape"]
            if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1) or not shape:
                raise ApiError(400, f"input '{tensor['name']}' has shape {shape}; a named input is one column, shape [N] "
                               f"or [N, 1] (or send all inputs as one [N, {len(names)}] tensor)")
            if tensor["name"] in columns:
                raise ApiError(400, f"input '{tensor['name']}' is given twice")
            columns[tensor["name"]] = tensor["values"]
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ApiError(400, "the inputs have different numbers of rows: " +
                           ", ".join(f"{k}: {len(v)}" for k, v in columns.items()))
        missing = [n for n in names if n not in columns]
        if missing:
            raise ApiError(400, f"input(s) {', '.join(repr(m) for m in missing)} missing; model '{entry.name}' takes: "
                           f"{', '.join(names)}. Fix: send each as a tensor of shape [N] (null values are allowed)")
        extras = [k for k in columns if k not in entry.schema.kinds]
        if extras:
            warnings.append(f"ignored input(s) the model does not use: {', '.join(extras)}")
        n = lengths.pop()
        used = [columns[name] for name in names]
        rows = [dict(zip(names, values)) for values in zip(*used)] if n else []
    if not rows:
        raise ApiError(400, "the inputs hold no rows; send at least one")
    try:
        parsed = entry.schema.parse_records(rows, False, limits.max_records, warnings)
    except ApiError as exc:
        raise _with_fields(exc) from None
    return parsed, data


def _tensor(raw: Any, i: int) -> dict[str, Any]:
    """One input tensor, checked: its name, shape, datatype and flattened values."""
    if not isinstance(raw, dict):
        raise ApiError(400, f"inputs[{i}] is not an object with name, shape, datatype and data")
    name = raw.get("name")
    where = f"input '{name}'" if isinstance(name, str) else f"inputs[{i}]"
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in raw]
    if missing:
        raise ApiError(400, f"{where} lacks {', '.join(missing)}")
    if not isinstance(name, str):
        raise ApiError(400, f"{where}: 'name' must be a string")
    shape, datatype = raw["shape"], raw["datatype"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ApiError(400, f"{where}: 'shape' must be a list of non-negative integers, got {json.dumps(shape)[:100]}")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise ApiError(400, f"{where}: datatype {json.dumps(datatype)[:60]} is not one of {', '.join(sorted(DATATYPES))}")
    parameters = raw.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise ApiError(400, f"{where}: 'parameters' must be an object")
    if parameters and "binary_data_size" in parameters:
        raise ApiError(400, f"{where}: binary tensor data is not supported; send the values in 'data'")
    values = _flatten(raw["data"], where)
    size = math.prod(shape)
    if len(values) != size:
        raise ApiError(400, f"{where} has {len(values)} values; its shape {shape} needs {size}")
    _check_values(values, datatype, where)
    return {"name": name, "shape": shape, "datatype": datatype, "values": values, "size": size}


def _flatten(data: Any, where: str) -> list[Any]:
    """Row-major values of flat or nested ``data`` (the JSON depth is bounded before this)."""
    if not isinstance(data, list):
        raise ApiError(400, f"{where}: 'data' must be a list")
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _check_values(values: list[Any], datatype: str, where: str) -> None:
    """The values fit ``datatype``; null is accepted everywhere as an unknown value."""
    if datatype == "BYTES":
        ok = (str, type(None))
    elif datatype == "BOOL":
        ok = (bool, type(None))
    elif datatype in INTEGER_TYPES:
        bad = next((v for v in values if v is not None and (isinstance(v, bool) or not isinstance(v, int))), _NONE)
        if bad is not _NONE:
            raise ApiError(400, f"{where} is {datatype} but holds {json.dumps(bad)[:60]}")
        return
    else:
        bad = next((v for v in values if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))), _NONE)
        if bad is not _NONE:
            raise ApiError(400, f"{where} is {datatype} but holds {json.dumps(bad)[:60]}")
        return
    bad = next((v for v in values if not isinstance(v, ok)), _NONE)
    if bad is not _NONE:
        raise ApiError(400, f"{where} is {datatype} but holds {json.dumps(bad)[:60]}")


_NONE = object()


def _with_fields(exc: ApiError) -> ApiError:
    """A /v1 validation error with its field problems in the message (v2 errors are one string)."""
    if not exc.fields:
        return exc
    shown = "; ".join(f"{f['field']}: {f['problem']}" for f in exc.fields[:10])
    more = f" (and {len(exc.fields) - 10} more)" if len(exc.fields) > 10 else ""
    return ApiError(exc.status, f"{exc.message}: {shown}{more}", code=exc.code)


# ---------------------------------------------------------------------------- answers
def infer_response(entry, outputs: np.ndarray, warnings: list[str], request: dict[str, Any]) -> dict[str, Any]:
    """The inference response: the requested output tensors (default: all) of ``outputs``."""
    model, task = entry.model, entry.model.task
    labels = [native(v) for v in model.decide(outputs).tolist()]
    n = len(labels)
    tensors: dict[str, dict[str, Any]] = {}
    if task.is_classification or task.is_multilabel:
        classes = [str(c) for c in task.classes]
        probabilities = [finite(v) for v in np.asarray(outputs, dtype=float).reshape(n, -1).ravel().tolist()]
        if task.is_multilabel:
            chosen = [set(label.split(LABEL_SEP)) if label else set() for label in labels]
            tensors["prediction"] = {"shape": [n, len(classes)], "datatype": "BOOL",
                                     "data": [c in row for row in chosen for c in classes]}
        else:
            datatype = _datatype_of(list(task.classes))
            tensors["prediction"] = {"shape": [n], "datatype": datatype,
                                     "data": [str(v) for v in labels] if datatype == "BYTES" else labels}
        tensors["probabilities"] = {"shape": [n, len(classes)], "datatype": "FP64", "data": probabilities}
        tensors["classes"] = {"shape": [len(classes)], "datatype": "BYTES", "data": classes}
    else:
        tensors["prediction"] = {"shape": [n], "datatype": "FP64", "data": [finite(v) for v in labels]}
    wanted = request.get("outputs")
    if wanted is not None:
        if not isinstance(wanted, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in wanted):
            raise ApiError(400, "'outputs' must be a list of {\"name\": ...} objects")
        unknown = [o["name"] for o in wanted if o["name"] not in tensors]
        if unknown:
            raise ApiError(400, f"unknown output(s) {', '.join(repr(u) for u in unknown)}; model '{entry.name}' gives: "
                           f"{', '.join(tensors)}")
        names = [o["name"] for o in wanted]
    else:
        names = list(tensors)
    if not (task.is_classification or task.is_multilabel) and any(v is None for v in tensors["prediction"]["data"]):
        warnings = [*warnings, "some predictions are not finite numbers and are given as null"]
    entry.metrics.rows.labels(entry.name).inc(n)
    answer: dict[str, Any] = {"model_name": entry.name, "model_version": model.version,
                              "id": request.get("id") or uuid.uuid4().hex,
                              "outputs": [{"name": name, **tensors[name]} for name in names]}
    if warnings:
        answer["parameters"] = {"warnings": "; ".join(warnings)}
    return answer


def _datatype_of(values: list[Any]) -> str:
    """The tensor datatype of labels: BOOL, INT64 or FP64 when they all are, else BYTES."""
    values = [native(v) for v in values]
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"
