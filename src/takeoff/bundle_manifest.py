"""What a bundle's ``takeoff.json`` may hold, checked once when it is read.

One pydantic model (:class:`Manifest`) covers the fields every pipeline writes (prediction,
recommendation, search, and exported ONNX bundles); fields it does not name pass through
unchecked. Its checks keep a malformed manifest from reaching the loaders as a raw
``KeyError``/``TypeError``: a wrong field is a :class:`~takeoff.errors.BundleError` that names
it. :func:`digest` is the manifest's content hash (canonical JSON), which ``takeoff.json``
records in its ``digest`` field and which :func:`confined` and the signature build on.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError, model_validator

from takeoff.errors import BundleError

UNSIGNED = ("digest", "signature")  # the fields the digest does not cover
DIGEST_PREFIX = "sha256:"
PREDICTION_TASKS = ("binary", "multiclass", "multilabel", "regression")

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[StrictStr, Field(min_length=1, max_length=4096)]
Number = StrictInt | StrictFloat
Label = StrictStr | StrictInt | StrictFloat | StrictBool


def canonical(manifest: dict[str, Any]) -> bytes:
    """The manifest's content as canonical JSON (sorted keys, no spaces, ASCII with ``\\u``
    escapes), without the fields that describe the content (``digest``, ``signature``)."""
    content = {k: v for k, v in manifest.items() if k not in UNSIGNED}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def digest(manifest: dict[str, Any]) -> str:
    """``"sha256:<hex>"`` of :func:`canonical`: what ``takeoff.json`` records as its ``digest``.

    The manifest lists every other file's sha256, so this one value covers the whole bundle.
    """
    return DIGEST_PREFIX + hashlib.sha256(canonical(manifest)).hexdigest()


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TaskField(_Open):
    kind: Name
    target: StrictStr | None = None
    classes: list[Label] = Field(default_factory=list, max_length=1_000_000)
    columns: list[StrictStr] = Field(default_factory=list)

    @model_validator(mode="after")
    def _classes_fit_the_kind(self) -> TaskField:
        if self.kind in PREDICTION_TASKS:
            if self.target is None:
                raise ValueError(f"a {self.kind} task needs its target column's name")
            need = {"binary": (2, 2), "multiclass": (2, None), "multilabel": (1, None), "regression": (0, 0)}[self.kind]
            low, high = need
            if len(self.classes) < low or (high is not None and len(self.classes) > high):
                raise ValueError(f"a {self.kind} task has {len(self.classes)} classes")
            if len({json.dumps(c) for c in self.classes}) != len(self.classes):
                raise ValueError("classes are repeated")
        return self


class ColumnField(_Open):
    name: StrictStr
    kind: Literal["numeric", "categorical", "boolean", "datetime", "text", "image", "identifier", "constant", "empty"]
    dtype: StrictStr
    n_missing: StrictInt = Field(0, ge=0)
    n_unique: StrictInt = Field(0, ge=0)
    bad_values: StrictInt = Field(0, ge=0)


class MemberField(_Open):
    family: Name
    dir: Name | None = None  # absent in an exported (ONNX) bundle: the graph holds every member
    weight: Number = Field(ge=0)
    params: dict[str, Any]
    id: Name | None = None
    target_transform: StrictStr | None = None

    @model_validator(mode="after")
    def _finite(self) -> MemberField:
        if not math.isfinite(self.weight):
            raise ValueError(f"weight {self.weight} is not a finite number")
        return self


class OnnxTextField(_Open):
    tokenizer: Name


class OnnxField(_Open):
    file: Name = "model.onnx"
    text: list[OnnxTextField] = Field(default_factory=list)


class EncoderField(_Open):
    embedded: StrictBool = False
    folder: Name | None = None


class SignatureField(_Open):
    algorithm: Literal["ed25519"]
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    value: Annotated[str, Field(min_length=1, max_length=200)]


class Manifest(_Open):
    """The checked fields of ``takeoff.json`` (other fields pass through as they are)."""

    format: Literal["takeoff-bundle"]
    format_version: StrictInt = Field(ge=1)
    files: dict[Name, Sha256]
    task: TaskField
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    signature: SignatureField | None = None
    # prediction bundles
    schema_: list[ColumnField] | None = Field(None, alias="schema")
    members: list[MemberField] | None = None
    threshold: Number | list[Number] | None = None
    runtime: StrictStr | None = None
    onnx: OnnxField | None = None
    metrics: dict[str, Any] | None = None
    # recommendation bundles
    family: Name | None = None
    params: dict[str, Any] | None = None
    recommend: dict[str, Any] | None = None
    # search bundles
    encoder: EncoderField | None = None
    search: dict[str, Any] | None = None
    # generative bundles (a causal language model) and grounded answerers (an index and a generator)
    generate: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> Manifest:
        kind = self.task.kind
        if kind == "recommend":
            required = ("family", "params", "recommend")
        elif kind == "search":
            required = ("encoder", "search")
        elif kind in ("generate", "answer"):
            required = (kind,)
        else:
            required = ("schema_", "members")
        for name in required:
            if getattr(self, name) is None:
                raise ValueError(f"'{name.rstrip('_')}' is required in a {kind} bundle")
        if kind in ("recommend", "search", "generate", "answer"):
            return self
        if not self.members:
            raise ValueError("'members' is empty: a model needs at least one member")
        native = (self.runtime or "native") == "native"
        for i, member in enumerate(self.members):
            if native and member.dir is None:
                raise ValueError(f"'members.{i}.dir' is required (the member's folder in the bundle)")
        self._check_threshold()
        return self

    def _check_threshold(self) -> None:
        threshold, n = self.threshold, len(self.task.classes)
        if threshold is None:
            return
        values = threshold if isinstance(threshold, list) else [threshold]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"'threshold' {threshold} holds a value that is not a finite number")
        if self.task.kind == "binary":
            if isinstance(threshold, list) or not 0.0 <= threshold <= 1.0:
                raise ValueError(f"'threshold' of a binary task is one probability in [0, 1], got {threshold}")
        elif self.task.kind in ("multiclass", "multilabel"):
            if not isinstance(threshold, list) or len(threshold) != n:
                raise ValueError(f"'threshold' of a {self.task.kind} task is a list of {n} numbers (one per class), got {threshold}")
            if any(v < 0 for v in threshold):
                raise ValueError(f"'threshold' holds a negative value: {threshold}")
        else:
            raise ValueError(f"'threshold' is not used by a {self.task.kind} task, got {threshold}")

    def paths(self) -> list[tuple[str, str]]:
        """Every path the manifest names, with the field it is in: ``[(field, relative path)]``."""
        out = [(f"files.{name}", name) for name in self.files]
        for i, member in enumerate(self.members or []):
            if member.dir is not None:
                out.append((f"members.{i}.dir", member.dir))
        if self.onnx is not None:
            out.append(("onnx.file", self.onnx.file))
            out += [(f"onnx.text.{i}.tokenizer", t.tokenizer) for i, t in enumerate(self.onnx.text)]
        if self.encoder is not None and self.encoder.folder is not None:
            out.append(("encoder.folder", self.encoder.folder))
        return out


class RunState(_Open):
    """The checked fields of a training run's ``run.json`` (written by ``takeoff train --out``)."""

    class Source(_Open):
        data: StrictStr | None = None
        table: StrictStr | None = None
        sql: StrictStr | None = None
        encoding: StrictStr | None = None

    status: StrictStr
    source: Source
    config: dict[str, Any]
    elapsed: Number = Field(0.0, ge=0)


def _field(loc: tuple[Any, ...]) -> str:
    # pydantic puts the failing member of a union in the location ("int", "list[...]"); a
    # reader wants the field's path in the JSON document only
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in ("int", "float", "str", "bool")))]
    return ".".join(parts).replace("schema_", "schema") or "(top level)"


def explain(error: ValidationError, limit: int = 3) -> str:
    """The first few problems of a validation error as one line naming each field."""
    problems = []
    for item in error.errors()[:limit]:
        value = item.get("input")
        shown = json.dumps(value, default=str)[:80] if not isinstance(value, dict) else "{...}"
        message = item["msg"].removeprefix("Value error, ")
        field = _field(item["loc"])
        named = re.match(r"^'([\w.]+)' (.*)$", message)
        if named and (not item["loc"] or named.group(1).startswith(field)):  # a check across fields names its own
            field, message, shown = named.group(1), named.group(2), None
        problems.append(f"field '{field}': {message}" + (f" (got {shown})" if shown is not None else ""))
    more = error.error_count() - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _checked(model: type[BaseModel], path: Path, document: Any, file: str, fix: str):
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise BundleError(str(path), f"{file} is malformed: {explain(error)}", fix) from None


def validate(path: Path, document: Any, file: str = "takeoff.json") -> Manifest:
    """``document`` (the parsed ``takeoff.json`` of the bundle at ``path``) as a :class:`Manifest`.

    Raises:
        BundleError: a field is missing or of the wrong shape; the message names it.
    """
    return _checked(Manifest, path, document, file, "re-create the bundle (`takeoff train --out`)")


def validate_run_state(path: Path, document: Any, file: str = "run.json") -> RunState:
    """``document`` (the parsed ``run.json`` of the run at ``path``) as a :class:`RunState`.

    Raises:
        BundleError: a field is missing or of the wrong shape; the message names it.
    """
    return _checked(RunState, path, document, file, "train again into a new --out directory")


def confined(root: Path, relative: str, field: str) -> Path:
    """``root / relative`` resolved, refused unless it stays inside ``root`` (symlinks followed).

    Raises:
        BundleError: the path is absolute, climbs out with ``..``, or resolves outside ``root``.
    """
    pure = PurePosixPath(relative)
    if pure.is_absolute() or Path(relative).is_absolute() or ".." in pure.parts or "\\" in relative or "\x00" in relative:
        raise BundleError(str(root), f"takeoff.json field '{field}' names a path outside the bundle: {relative!r}",
                          "a bundle names only relative paths inside itself; re-create it")
    base = root.resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError) as error:  # a loop of symbolic links
        raise BundleError(str(root), f"takeoff.json field '{field}' ({relative!r}) cannot be resolved ({error})",
                          "replace the links with the files themselves") from None
    if target != base and not target.is_relative_to(base):
        raise BundleError(str(root), f"takeoff.json field '{field}' ({relative!r}) resolves to {target}, outside the "
                          "bundle (through a symbolic link)", "replace the link with the files themselves")
    return target
