"""``explain(model, data) -> Explanation``: global importance and per-row attributions.

Global (on a seeded sample of at most ``max_rows`` rows):

* ``permutation`` (every model): the drop of the task's primary metric when one input column
  is shuffled (with the target in the data), else the mean absolute change of the output;
* ``treeshap`` (a member that declares ``explains_trees``, e.g. LightGBM): the mean absolute
  TreeSHAP contribution, in raw-score units;
* ``integrated_gradients`` (a member that declares ``explains_gradients``, e.g. the MLP): the
  mean absolute Integrated Gradients attribution.

Local (the first ``rows`` rows), per blend member and for the model: TreeSHAP, Integrated
Gradients, or column occlusion (every other family), all in the unit of the explained output; the model's attribution of a column is the weighted sum of its members'.
Text columns also get word attributions (word occlusion). See docs/explain.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from takeoff.data.conform import conform
from takeoff.data.schema import require_columns
from takeoff.errors import ConfigError, DataError
from takeoff.explain.gradients import integrated_gradients
from takeoff.explain.methods import METHODS
from takeoff.explain.occlusion import column_occlusion, word_occlusion
from takeoff.explain.permutation import permutation_importance
from takeoff.explain.rows import Rows, explained_label, jsonable, make_rows, number, pick
from takeoff.explain.tree import RAW_UNITS, tree_importance, tree_shap

class ExplainParams(BaseModel):
    """How much :func:`explain` computes."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(5, ge=1, le=10_000, description="Rows explained one by one: the first N rows of the data.")
    seed: int = Field(0, ge=0, description="Seed of the row sample and the shuffles: same seed, same explanation.")
    repeats: int = Field(3, ge=1, le=100, description="Shuffles per column in permutation importance, averaged.")
    max_rows: int = Field(2000, ge=10, description="Rows (a seeded sample) the global importances are measured on.")
    max_words: int = Field(64, ge=1, le=10_000, description="Words per text given an attribution (word occlusion).")
    ig_steps: int = Field(50, ge=4, le=1000, description="Integration steps of Integrated Gradients.")
    attribution_rows: int = Field(
        500, ge=1, description="Rows (of the global sample) global TreeSHAP and Integrated Gradients average over.")


@dataclass
class Explanation:
    """What :func:`explain` found: global importances and per-row attributions.

    Attributes:
        title, data: a title and the data's name, for the report.
        task: ``{"kind", "target", "classes"}``.
        explained: what attributions are in, e.g. "probability of 'yes'".
        members: the blend: ``{"family", "weight", "method"}`` (the local method per member).
        settings: the parameters used.
        global_: method -> ranked ``[{"column", "importance"}]`` (most important first).
        methods: method -> what its numbers mean (unit, rows, member, ...).
        local: per explained row, ``{"row", "prediction", "explained", "output",
            "attributions": [{"column", "value", "attribution"}], "members": [...],
            "tokens": {column: [{"token", "attribution"}]}}``.
        notes: what was coerced or ignored in the data.
    """

    title: str
    data: str
    task: dict[str, Any]
    explained: str
    members: list[dict[str, Any]]
    settings: dict[str, Any]
    global_: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    local: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The explanation as a JSON-ready dict."""
        return {
            "title": self.title, "data": self.data, "task": self.task, "explained": self.explained,
            "members": self.members, "settings": self.settings, "global": self.global_,
            "methods": self.methods, "local": self.local, "notes": self.notes,
        }

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically."""
        from takeoff.bundle import write_json

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, self.to_json())
        return path

    def write_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML report (charts inline, nothing loaded from the network)
        to ``path`` atomically."""
        from takeoff.explain.html import write_html

        return write_html(self, Path(path))

    def top(self, method: str = "permutation", k: int = 5) -> list[str]:
        """The ``k`` most important columns by a global ``method``."""
        return [entry["column"] for entry in self.global_.get(method, [])[:k]]


def explain(model, data, *, rows: int = 5, seed: int = 0, target: str | None = None,
            global_importance: bool = True, where: str | None = None, strict: bool = False,
            table: str | None = None, sql: str | None = None, encoding: str | None = None,
            **options: Any) -> Explanation:
    """Explain a model's predictions on ``data``: global importances and per-row attributions.

    Args:
        model: a :class:`takeoff.Model` (``takeoff.load(bundle)``); recommenders and search
            indexes have nothing to explain here.
        data: a path, a SQLAlchemy URL (with ``table`` or ``sql``), a DataFrame, a dict (one
            record) or a list of dicts. Its columns are validated as for predict.
        rows: explain the first ``rows`` rows one by one (default 5).
        seed: seed of the global row sample and the shuffles (default 0).
        target: the target column in ``data`` (default: the model's target, when present);
            with it, permutation importance measures the drop of the primary metric.
        global_importance: compute the global importances (default True); the server only
            explains rows.
        where: how to name ``data`` in messages (default: its file name, "DataFrame", ...).
        strict: raise on values that do not parse, as ``predict --strict``.
        table, sql, encoding: as for :func:`takeoff.train`.
        **options: ``repeats`` (3), ``max_rows`` (2000), ``max_words`` (64), ``ig_steps`` (50),
            ``attribution_rows`` (500): see :class:`ExplainParams`.

    Returns:
        An :class:`Explanation`; ``.write_html(path)``, ``.to_json()``.

    Raises:
        SchemaMismatchError: a column the model was trained with is missing (as predict).
        DataError: no rows, or (strict) values that do not parse.
        ConfigError: ``model`` is not a predicting model, or a parameter is out of range.

    Example:
        >>> import takeoff
        >>> from takeoff.explain import explain
        >>> model = takeoff.load("runs/credit")
        >>> explanation = explain(model, "holdout.csv", rows=3)
        >>> explanation.top("permutation", 3)                 # doctest: +SKIP
        ['Seniority', 'Income', 'Job']
        >>> explanation.write_html("explanation.html")        # doctest: +SKIP
    """
    _require_predictor(model)
    try:
        params = ExplainParams(rows=rows, seed=seed, **options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"explain: {problems}") from None
    df, name = _read(data, table, sql, encoding)
    name = where or name
    if df.empty:
        raise DataError(f"{name} has no rows to explain")
    task, columns = model.task, model.schema.names()
    target = target or (task.target if task.target in df.columns else None)
    if target is not None:
        require_columns(df, [target], name, role="target column")

    local_at = np.arange(min(params.rows, len(df)))
    frame, notes = conform(df.iloc[local_at], model.schema, where=name, strict=strict, target=task.target)
    explanation = Explanation(
        title=f"{task.target} — explanation", data=name, task=_task_json(task), explained=explained_label(task),
        members=[], settings=params.model_dump(), notes=notes.messages(),
    )
    local = make_rows(model, frame, local_at)
    explanation.local, explanation.members = _local(model, local, df.iloc[local_at], columns, params)
    if global_importance:
        explanation.global_, explanation.methods = _global(model, df, name, columns, target, params)
    return explanation


def _task_json(task) -> dict[str, Any]:
    return {"kind": task.kind, "target": task.target, "classes": [jsonable(c) for c in task.classes]}


# ----------------------------------------------------------------------------- local
@dataclass
class _Member:
    """One blend member's local attributions: (n, columns) in the explained output's unit, the
    output they start from (n,) when the method has one, and per-row extras for the JSON."""

    method: str
    values: np.ndarray
    base: np.ndarray | None
    extra: list[dict[str, Any]]


def _members(model, rows: Rows, columns: list[str], params: ExplainParams) -> list[_Member]:
    """Each member's attributions by its own method: TreeSHAP, Integrated Gradients or occlusion."""
    found = []
    for m, member in enumerate(model.blend.members):
        if member.explains_trees:
            shap = tree_shap(member, rows.X, rows.member_outputs[m], rows.classes, columns)
            raw = [{"raw": {"unit": RAW_UNITS[model.task.kind], "base": number(shap.raw_base[i]),
                            "score": number(shap.raw_score[i]), "attributions": _ranked(columns, shap.raw[i])}}
                   for i in range(len(rows))]
            found.append(_Member("treeshap", shap.values, shap.base, raw))
        elif member.explains_gradients:
            ig = integrated_gradients(member, rows.X, rows.classes, columns, params.ig_steps)
            found.append(_Member("integrated_gradients", ig.values, ig.base, [{"delta": number(d)} for d in ig.delta]))
        else:
            occluded = column_occlusion(model, rows, columns)[m]
            found.append(_Member("occlusion", occluded, None, [{} for _ in range(len(rows))]))
    return found


def _local(model, rows: Rows, raw: pd.DataFrame, columns: list[str], params: ExplainParams):
    """Per-row attributions of the model (the weighted sum of its members') and of each member;
    and the members' summary."""
    weights = model.blend.weights
    found = _members(model, rows, columns, params)
    values = sum(w * f.values for w, f in zip(weights, found))
    text_columns = [c for c in columns if c in rows.X.text]
    words = word_occlusion(model, rows, text_columns, params.max_words) if text_columns else {}
    labels = model.decide(rows.output)
    output = pick(rows.output, rows.classes)
    member_output = [pick(out, rows.classes) for out in rows.member_outputs]
    local = []
    for i in range(len(rows)):
        entry = {
            "row": int(rows.positions[i]),
            "prediction": jsonable(labels[i]),
            "explained": None if rows.classes is None else jsonable(model.task.classes[rows.classes[i]]),
            "output": number(output[i]),
            "attributions": _ranked(columns, values[i], raw.iloc[i]),
            "members": [
                {"family": member.name, "weight": weight, "method": f.method, "output": number(member_output[m][i]),
                 "base": None if f.base is None else number(f.base[i]), "attributions": _ranked(columns, f.values[i]),
                 **f.extra[i]}
                for m, (member, weight, f) in enumerate(zip(model.blend.members, weights, found))
            ],
            "tokens": {},
        }
        for column in text_columns:
            if (i, column) not in words:
                continue  # an empty text
            found_words = words[(i, column)]
            tokens = [{"token": w, "attribution": number(v)} for w, v in zip(found_words.words, found_words.values)]
            if found_words.rest:
                tokens.append({"token": found_words.rest, "attribution": None})
            entry["tokens"][column] = tokens
            for member_entry, member_words in zip(entry["members"], found_words.members):
                member_entry.setdefault("tokens", {})[column] = [number(v) for v in member_words]
        local.append(entry)
    _add_saliency(model, rows, local, params)
    members = [{"family": member.name, "weight": w, "method": f.method}
               for member, w, f in zip(model.blend.members, weights, found)]
    return local, members


def _add_saliency(model, rows: Rows, local: list[dict[str, Any]], params: ExplainParams) -> None:
    """Saliency maps of the heaviest image member, per row: ``entry["images"][column]``."""
    from takeoff.explain.saliency import image_saliency, is_image_member, overlay_png, pooled

    members = [(w, m) for w, m in zip(model.blend.weights, model.blend.members) if is_image_member(m)]
    if not members:
        return
    weight, member = max(members, key=lambda pair: pair[0])
    found = image_saliency(member, rows.X, rows.classes, params.ig_steps)
    for i, entry in enumerate(local):
        entry["images"] = {found.column: {
            "method": "integrated_gradients", "family": member.name, "delta": number(found.delta[i]),
            "saliency": pooled(found.maps[i]), "overlay": overlay_png(found.pixels[i], found.maps[i]),
        }}


def _ranked(columns: Sequence[str], values: np.ndarray, cells: pd.Series | None = None) -> list[dict[str, Any]]:
    """``[{"column", ("value",) "attribution"}]``, largest absolute attribution first (NaN last)."""
    magnitude = np.nan_to_num(np.abs(np.asarray(values, dtype=np.float64)), nan=-1.0)
    out = []
    for j in sorted(range(len(columns)), key=lambda j: (-magnitude[j], j)):
        item: dict[str, Any] = {"column": columns[j]}
        if cells is not None:
            item["value"] = jsonable(cells[columns[j]])
        item["attribution"] = number(values[j])
        out.append(item)
    return out


# ----------------------------------------------------------------------------- global
def _global(model, df: pd.DataFrame, name: str, columns: list[str], target: str | None, params: ExplainParams):
    """Global importances per method on a seeded sample of the rows."""
    rng = np.random.default_rng(params.seed)
    task = model.task
    candidates = np.arange(len(df))
    if target is not None:
        known = df[target].notna().to_numpy()
        candidates = candidates[known] if known.any() else candidates
        target = target if known.any() else None
    at = np.sort(rng.choice(candidates, size=min(params.max_rows, len(candidates)), replace=False))
    frame, _ = conform(df.iloc[at], model.schema, where=name, target=task.target)
    rows = make_rows(model, frame, at)
    y = task.encode(df[target].iloc[at]) if target is not None else None

    ranking, methods = {}, {}
    perm = permutation_importance(model, rows, columns, y, params.repeats, rng)
    ranking["permutation"] = _importance(columns, perm.mean, perm.std)
    methods["permutation"] = {"name": METHODS["permutation"], "unit": perm.unit, "metric": perm.metric,
                              "rows": len(rows), "repeats": params.repeats, "member": None}
    # TreeSHAP and Integrated Gradients cost many predictions per row: a smaller sample does
    sub = np.sort(rng.choice(len(rows), size=min(params.attribution_rows, len(rows)), replace=False))
    X_sub, classes = rows.X.take(sub), None if rows.classes is None else rows.classes[sub]
    for member in model.blend.members:
        if member.explains_trees:
            key = _unique("treeshap", ranking)
            ranking[key] = _importance(columns, tree_importance(member, X_sub, classes, columns))
            methods[key] = {"name": METHODS["treeshap"], "member": member.name, "rows": len(sub),
                            "unit": f"mean |contribution| to the {RAW_UNITS[task.kind]}"}
        elif member.explains_gradients:
            ig = integrated_gradients(member, X_sub, classes, columns, params.ig_steps)
            key = _unique("integrated_gradients", ranking)
            ranking[key] = _importance(columns, np.abs(ig.values).mean(axis=0))
            methods[key] = {"name": METHODS["integrated_gradients"], "member": member.name, "rows": len(sub),
                            "unit": "mean |attribution| to the " + explained_label(task),
                            "max_delta": number(np.abs(ig.delta).max())}
    return ranking, methods


def _importance(columns: Sequence[str], values: np.ndarray, std: np.ndarray | None = None) -> list[dict[str, Any]]:
    """``[{"column", "importance"(, "std")}]``, most important first (NaN last)."""
    key = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
    out = []
    for j in sorted(range(len(columns)), key=lambda j: (-key[j], j)):
        item = {"column": columns[j], "importance": number(values[j])}
        if std is not None:
            item["std"] = number(std[j])
        out.append(item)
    return out


def _unique(key: str, taken: dict[str, Any]) -> str:
    i, out = 2, key
    while out in taken:
        out, i = f"{key}_{i}", i + 1
    return out


# ----------------------------------------------------------------------------- input
def _require_predictor(model) -> None:
    from takeoff.api import Model

    if isinstance(model, Model):
        runtime = getattr(model, "runtime", "native")
        if runtime != "native":
            raise ConfigError(f"explain needs the model's own families; this bundle predicts through an exported "
                              f"{runtime} graph (takeoff compress). Fix: explain the bundle it was exported from.")
        return
    kind = getattr(model, "manifest", {}).get("task", {}).get("kind", type(model).__name__)
    what = {"recommend": "a recommender", "search": "a search index"}.get(kind, f"a {kind}")
    raise ConfigError(f"explain works on models that predict a target column; this is {what}, which has no "
                      "per-column predictions to explain. Fix: pass a bundle made by `takeoff train` with --target.")


def _read(data, table: str | None, sql: str | None, encoding: str | None) -> tuple[pd.DataFrame, str]:
    """The rows as a DataFrame and their name in messages, as ``Model.predict`` reads them."""
    if isinstance(data, dict):
        return pd.DataFrame([data]), "the record"
    if isinstance(data, list):
        return pd.DataFrame.from_records(data), "the records"
    from takeoff.data.sources import read_table, source_name

    return read_table(data, table=table, sql=sql, encoding=encoding), source_name(data, table=table, sql=sql)

