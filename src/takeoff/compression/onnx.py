"""ONNX export of whole bundles: the feature pipeline, every member and the blend in one graph.

:func:`export` builds ``model.onnx``; :func:`write_onnx_bundle` writes it as a new bundle
(``"runtime": "onnx"``) after checking, on real rows, that it predicts what the bundle
predicts. Such a bundle is run by :mod:`takeoff.runtime.onnx`, which needs onnxruntime and
none of torch, LightGBM or scikit-learn (``pip install 'takeoff[lite]'``; scikit-learn only
when the table has free text, whose hashing stays in Python).

In the graph: imputation (IsNaN/Where), standardisation, clipping and missing indicators on
the ``numbers`` input, the numeric block's column order (hashed text included), category codes
(``ai.onnx.ml`` LabelEncoder: known values 2.., unseen 1, missing 0), each member's own graph
(``Family.to_onnx``, names prefixed ``m<i>.``), and the blend's weighted sum. The input
layout is described in :mod:`takeoff.runtime.onnx`.

Example:
    >>> from takeoff.compression.onnx import write_onnx_bundle
    >>> lite = write_onnx_bundle(takeoff.load("runs/credit"), "runs/credit-onnx", frame=rows)
    >>> lite.manifest["onnx"]["max_abs_diff"]   # measured on ``rows``
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from takeoff import bundle, registry
from takeoff.errors import ConfigError, ExportError, MissingDependencyError
from takeoff.features.pipeline import CLIP, RawInputs
from takeoff.runtime.onnx import CATEGORIES, HASHED_TEXT, MISSING, MODEL_FILE, NUMBERS, OUTPUTS, OnnxBlend

if TYPE_CHECKING:
    import onnx

    from takeoff.api import Model

MIN_OPSET = 17  # default domain; members exported at an older opset are converted up
ML_OPSET = 2  # ai.onnx.ml: LabelEncoder with string keys and int64 values
DEFAULT_TOLERANCE = 1e-4
SAMPLE_ROWS = 16  # rows the members' graphs are traced with
ASSETS_DIR = "assets"


def export(model: Model, sample: pd.DataFrame | None = None) -> onnx.ModelProto:
    """The whole model as one ONNX graph (raw columns in, blended outputs out).

    Args:
        model: a trained or loaded :class:`~takeoff.api.Model` (native runtime).
        sample: a few input rows the members' graphs are traced with (default: synthetic
            rows at the training medians, most frequent categories and a short text).

    Returns:
        The checked ``onnx.ModelProto`` (inputs: see :mod:`takeoff.runtime.onnx`).

    Raises:
        ConfigError: the bundle is already an ONNX bundle, or a member's family cannot be
            exported (the message lists those that can).
        MissingDependencyError: the onnx package is not installed (``takeoff[train]``).
    """
    onnx, helper = _onnx()
    if model.runtime != "native":
        raise ConfigError(f"the model at {model.path} already runs on {model.runtime}; export the original bundle instead")
    names = [family.name for family in model.blend.members]
    blocked = [family.name for family in model.blend.members if not family.exports_onnx]
    if blocked:
        raise ConfigError(f"model family '{blocked[0]}' cannot be exported to ONNX; families that can: "
                          f"{', '.join(registry.capable('exports_onnx'))}. Fix: distill the bundle into one of them "
                          "first (takeoff compress --distill mlp).")
    X = _sample(model, sample)
    members = [_checked_member(family.to_onnx(X), family.name, X) for family in model.blend.members]
    opset = max([MIN_OPSET] + [_opset(m, "") for m in members])
    ml_opset = max([ML_OPSET] + [_opset(m, "ai.onnx.ml") for m in members])
    graph = _Graph(helper)
    wanted = {i.name for m in members for i in m.graph.input}
    numeric, categorical = _features(graph, model.pipeline, wanted, _reads_hashed_text(model.pipeline, members))
    outputs = []
    for i, member in enumerate(members):
        prefix = f"m{i}."
        if _opset(member, "") != opset:
            member = onnx.version_converter.convert_version(member, opset)
        if member.functions:
            member = onnx.inliner.inline_local_functions(member)
        outputs.append(graph.splice(member.graph, prefix, {"numeric": numeric, "categorical": categorical}))
    _blend(graph, outputs, model.blend.weights)
    out_shape = ["N", len(model.task.classes)] if model.task.is_classification else ["N"]
    result = helper.make_model(
        helper.make_graph(graph.nodes, "takeoff", graph.inputs,
                          [helper.make_tensor_value_info(OUTPUTS, onnx.TensorProto.FLOAT, out_shape)],
                          graph.initializers, value_info=graph.value_info),
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ml_opset)],
        producer_name="takeoff", doc_string=f"{model.task.kind} model for '{model.task.target}'",
    )
    # the oldest IR version that holds these opsets, so older ONNX Runtimes load the graph
    result.ir_version = helper.find_min_ir_version_for(result.opset_import, ignore_unknown=True)
    helper.set_model_props(result, {"takeoff.task": model.task.kind, "takeoff.target": str(model.task.target),
                                    "takeoff.members": ",".join(names)})
    onnx.checker.check_model(result)
    return result


def check_parity(model: Model, onnx_model: onnx.ModelProto, frame: pd.DataFrame) -> float:
    """How far the graph's outputs are from ``model``'s on real rows.

    Args:
        model: the native model the graph was exported from.
        onnx_model: its graph (from :func:`export`).
        frame: input rows (the target column may be present; it is ignored).

    Returns:
        The largest ``|graph − model| / max(1, |model|)`` over the rows' outputs: the
        maximum absolute difference for probabilities (and values within ±1), relative beyond
        (a float32 graph cannot hold a price of 18,000 closer than ~0.002).
    """
    with tempfile.TemporaryDirectory(prefix="takeoff-onnx-") as scratch:
        spec = _stage(model, onnx_model, Path(scratch))
        return _differences(model, Path(scratch), spec, frame)["difference"]


def write_onnx_bundle(model: Model, out: str | Path, *, frame: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE,
                      extra: dict[str, Any] | None = None) -> Model:
    """Export ``model`` to ONNX and write it as a new bundle that ``takeoff predict`` and
    ``takeoff serve`` run with ONNX Runtime (``"runtime": "onnx"``), atomically.

    The bundle holds ``model.onnx``, ``features.json`` (the graph's input layout and the
    schema's hints), the text families' tokenizers, ``report.html`` when the model has one,
    and a manifest with the same schema, task, threshold and metrics, the members (for
    information) and the parity measured on ``frame`` (``onnx.max_abs_diff``,
    ``onnx.difference``: see :func:`check_parity`).

    Args:
        model: a native :class:`~takeoff.api.Model` (trained, or loaded from a bundle).
        out: the new bundle's directory (an existing bundle there is replaced).
        frame: real input rows to measure parity on (a few hundred are plenty).
        tolerance: the largest difference accepted (see :func:`check_parity`).
        extra: more manifest entries (e.g. how the bundle was compressed).

    Returns:
        The new bundle, loaded.

    Raises:
        ExportError: the graph's outputs differ by more than ``tolerance``; nothing is written.
        ConfigError: a member cannot be exported, or the model is already an ONNX bundle.
        DataError: ``frame`` lacks the model's columns.
    """
    import onnx

    from takeoff.api import load
    from takeoff.bundle import library_versions

    graph = export(model, frame.head(SAMPLE_ROWS))
    with tempfile.TemporaryDirectory(prefix="takeoff-onnx-") as scratch:
        scratch = Path(scratch)
        spec = _stage(model, graph, scratch)
        parity = _differences(model, scratch, spec, frame)
        if not parity["difference"] <= tolerance:  # NaN fails too
            raise ExportError(
                f"the ONNX export differs from the model by {parity['difference']:.3g} on {parity['rows']} row(s) "
                f"(max abs difference {parity['max_abs_diff']:.3g}), above the tolerance {tolerance:g}; nothing was "
                "written. Fix: pass a larger tolerance if a difference of this size is acceptable; otherwise keep "
                "the original bundle (and report the rows: takeoff.compression.onnx.check_parity measures it).",
                parity["difference"], tolerance)
        manifest = {k: v for k, v in model.manifest.items() if k not in ("format", "format_version", "files")}
        manifest["members"] = [{"family": f.name, "weight": w, "params": f.params.model_dump(mode="json")}
                               for f, w in zip(model.blend.members, model.blend.weights)]
        manifest["runtime"] = "onnx"
        manifest["onnx"] = {
            **spec,
            "opset": next(o.version for o in graph.opset_import if o.domain == ""),
            "inputs": [i.name for i in graph.graph.input],
            "exported_from": model.version,
            "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **parity, "tolerance": tolerance,
        }
        manifest["libraries"] = {**model.manifest.get("libraries", {}), **library_versions(),
                                 "onnx": onnx.__version__, "onnxruntime": _onnxruntime_version()}
        manifest.update(extra or {})
        report = model.attachments.get("report.html")

        def fill(tmp: Path) -> None:
            shutil.copytree(scratch, tmp, dirs_exist_ok=True)
            bundle.write_json(tmp / "features.json", model.pipeline.state())
            bundle.write_json(tmp / "metrics.json", {"task": model.task.kind, "metrics": model.metrics})
            if report is not None and Path(report).is_file():
                shutil.copyfile(report, tmp / "report.html")
            if model.redactor is not None:  # the personal-data redaction step goes with the model
                model.redactor.save(tmp)
            from takeoff.pipelines.prediction.card import CARD_FILE, model_card

            (tmp / CARD_FILE).write_text(model_card(manifest), encoding="utf-8")

        path = bundle.write(out, manifest, fill)
    return load(path)


# ---------------------------------------------------------------------------- the pieces
def _onnx():
    try:
        import onnx
        import onnx.inliner
        import onnx.version_converter
        from onnx import helper
    except ImportError:
        raise MissingDependencyError("onnx", "ONNX export", extra="train") from None
    return onnx, helper


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _opset(model, domain: str) -> int:
    aliases = {"", "ai.onnx"} if domain == "" else {domain}
    return max([o.version for o in model.opset_import if o.domain in aliases] or [0])


def _sample(model: Model, sample: pd.DataFrame | None):
    """A few rows of features to trace the members' graphs with."""
    if sample is not None and len(sample):
        return model.features(sample.head(SAMPLE_ROWS), where="the sample rows")[0]
    pipeline = model.pipeline
    layout = pipeline.layout()
    n = 2
    numbers = np.tile(np.asarray(layout.median, dtype=np.float64), (n, 1)).reshape(n, len(layout.keys))
    categories = np.empty((n, len(layout.categorical)), dtype=object)
    for j, name in enumerate(layout.categorical):
        vocabulary = pipeline.categories.get(name) or [None]
        categories[:, j] = vocabulary[0]
    width = pipeline.params.text_hash_features
    hashed = {name: np.zeros((n, width), dtype=np.float32) for name in layout.text_at}
    text = {name: np.array(["a short sample text", "another one"], dtype=object) for name in layout.text_at}
    return pipeline.finish(RawInputs(numbers, categories, hashed, text))


def _checked_member(member, family: str, X) -> onnx.ModelProto:
    """``member`` if it keeps the contract of ``Family.to_onnx`` (inputs, one output)."""
    allowed = {"numeric", "categorical"} | {f"text.{c}.{part}" for c in X.text for part in ("input_ids", "attention_mask")}
    unknown = [i.name for i in member.graph.input if i.name not in allowed]
    outputs = [o.name for o in member.graph.output]
    if unknown or outputs != [OUTPUTS]:
        raise ExportError(f"model family '{family}' exported a graph with inputs {[i.name for i in member.graph.input]} "
                          f"and outputs {outputs}; expected inputs among {sorted(allowed)} and one output '{OUTPUTS}'")
    return member


class _Graph:
    """The composed graph's nodes, initializers, inputs and value infos, as they are added."""

    def __init__(self, helper):
        self.helper = helper
        self.nodes, self.initializers, self.inputs, self.value_info = [], [], [], []

    def constant(self, name: str, values, dtype) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(self.helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def splice(self, member, prefix: str, feeds: dict[str, str | None]) -> str:
        """Add a member's graph with its names prefixed; its ``numeric`` and ``categorical``
        inputs read ``feeds``, its text inputs become inputs of the whole graph. Returns the
        name of its output."""
        from onnx import compose

        g = compose.add_prefix_graph(member, prefix)
        rename = {prefix + name: tensor for name, tensor in feeds.items() if tensor is not None}
        _rename_uses(g, rename)
        self.inputs.extend(i for i in g.input if i.name not in rename)
        self.nodes.extend(g.node)
        self.initializers.extend(g.initializer)
        self.value_info.extend(v for v in g.value_info if v.name not in rename)
        return prefix + OUTPUTS


def _rename_uses(graph, rename: dict[str, str]) -> None:
    """Point every use of a tensor in ``rename`` (subgraphs included) at its new name."""
    from onnx import AttributeProto

    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in rename:
                node.input[k] = rename[name]
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                _rename_uses(attr.g, rename)
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    _rename_uses(sub, rename)


def _features(graph: _Graph, pipeline, wanted: set[str], hashed: bool) -> tuple[str | None, str | None]:
    """The preprocessing: graph inputs → the ``numeric`` and ``categorical`` blocks (each only
    when a member reads it). Numbers are worked on in float64 as in
    :meth:`FeaturePipeline.finish`, so the blocks equal its output bit for bit. With ``hashed``
    False no member reads the hashed-text columns: they are zeros, not an input."""
    from onnx import TensorProto

    layout = pipeline.layout()
    numeric = categorical = None
    if "numeric" in wanted:
        parts, sources = [], []  # float32 blocks, and per column its place in the numeric block
        if layout.keys:
            numbers = graph.input(NUMBERS, TensorProto.DOUBLE, ["N", len(layout.keys)])
            missing = graph.node("IsNaN", [numbers], "pre.missing")
            filled = graph.node("Where", [missing, graph.constant("pre.median", layout.median, np.float64), numbers],
                                "pre.filled")
            centred = graph.node("Sub", [filled, graph.constant("pre.mean", layout.mean, np.float64)], "pre.centred")
            scaled = graph.node("Div", [centred, graph.constant("pre.std", layout.std, np.float64)], "pre.scaled")
            clipped = graph.node("Clip", [scaled, graph.constant("pre.clip_low", -CLIP, np.float64),
                                          graph.constant("pre.clip_high", CLIP, np.float64)], "pre.clipped")
            parts.append(graph.node("Cast", [clipped], "pre.values", to=TensorProto.FLOAT))
            sources.extend(layout.value_at.tolist())
            if len(layout.indicator_of):
                flags = graph.node("Gather", [missing, graph.constant("pre.indicator_of", layout.indicator_of, np.int64)],
                                   "pre.flags", axis=1)
                parts.append(graph.node("Cast", [flags], "pre.indicators", to=TensorProto.FLOAT))
                sources.extend(layout.indicator_at.tolist())
        if layout.text_at:
            width = pipeline.params.text_hash_features
            if hashed or not graph.inputs:  # (without any other input, the hashed block gives N)
                parts.append(graph.input(HASHED_TEXT, TensorProto.FLOAT, ["N", width * len(layout.text_at)]))
            else:
                parts.append(_zeros(graph, "pre.unread_text", width * len(layout.text_at), TensorProto.FLOAT))
            for start in layout.text_at.values():
                sources.extend(range(start, start + width))
        if parts:
            block = graph.node("Concat", parts, "pre.block", axis=1) if len(parts) > 1 else parts[0]
            order = np.argsort(np.asarray(sources))  # numeric block column -> its column in ``block``
            if np.array_equal(order, np.arange(len(order))):
                numeric = graph.node("Identity", [block], "numeric")
            else:
                numeric = graph.node("Gather", [block, graph.constant("pre.order", order, np.int64)], "numeric", axis=1)
        else:  # no numeric columns: an empty block, as many rows as the categories
            numeric = _zeros(graph, "numeric", 0, TensorProto.FLOAT)
    if "categorical" in wanted:
        if layout.categorical:
            strings = graph.input(CATEGORIES, TensorProto.STRING, ["N", len(layout.categorical)])
            codes = []
            for j, name in enumerate(layout.categorical):
                vocabulary = [str(v) for v in pipeline.categories[name]]
                column = graph.node("Gather", [strings, graph.constant(f"pre.column{j}", [j], np.int64)],
                                    f"pre.category{j}", axis=1)  # [N, 1]
                codes.append(graph.node("LabelEncoder", [column], f"pre.codes{j}", domain="ai.onnx.ml",
                                        keys_strings=vocabulary + [MISSING],
                                        values_int64s=list(range(2, len(vocabulary) + 2)) + [0], default_int64=1))
            categorical = graph.node("Concat", codes, "categorical", axis=1) if len(codes) > 1 else \
                graph.node("Identity", codes, "categorical")
        else:
            categorical = _zeros(graph, "categorical", 0, TensorProto.INT64)
    return numeric, categorical


def _zeros(graph: _Graph, name: str, width: int, elem_type: int) -> str:
    """A [N, width] tensor of zeros, N read from whichever raw input the graph has."""
    from onnx import helper

    source = next((i.name for i in graph.inputs if i.name in (NUMBERS, CATEGORIES, HASHED_TEXT)), None)
    if source is None:
        raise ExportError(f"the model reads a '{name}' block but the table has no column for it")
    rows = graph.node("Shape", [source], f"{name}.rows", start=0, end=1)
    shape = graph.node("Concat", [rows, graph.constant(f"{name}.width", [width], np.int64)], f"{name}.shape", axis=0)
    value = helper.make_tensor(f"{name}.value", elem_type, [1], [0])
    graph.nodes.append(helper.make_node("ConstantOfShape", [shape], [name], name=name, value=value))
    return name


def _reads_hashed_text(pipeline, members) -> bool:
    """Whether a member reads the hashed-text columns of the numeric block (hashing needs
    scikit-learn at run time: an input only when read)."""
    layout = pipeline.layout()
    width = pipeline.params.text_hash_features
    hashed = {c for start in layout.text_at.values() for c in range(start, start + width)}
    for member in members:
        if "numeric" in {i.name for i in member.graph.input}:
            columns = _numeric_columns_read(member.graph, len(layout.names))
            if columns is None or columns & hashed:
                return True
    return False


def _numeric_columns_read(member, width: int) -> set[int] | None:
    """The columns of ``numeric`` that a member's graph reads, when it reads them through
    Gather(axis=1) with constant indices (and Shape, which reads none); None: maybe all."""
    from onnx import AttributeProto, numpy_helper

    constants = {t.name: t for t in member.initializer}
    constants.update({n.output[0]: a.t for n in member.node if n.op_type == "Constant"
                      for a in n.attribute if a.name == "value"})
    columns: set[int] = set()
    for node in member.node:
        if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
            return None  # a subgraph may read it: no finer answer
        if "numeric" not in node.input or node.op_type == "Shape":
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if node.op_type != "Gather" or node.input[0] != "numeric" or axis != 1 or node.input[1] not in constants:
            return None
        columns.update(int(i) % width for i in numpy_helper.to_array(constants[node.input[1]]).ravel())
    return columns


def _blend(graph: _Graph, outputs: list[str], weights: list[float]) -> None:
    """``outputs`` = Σ weight·member output (float32)."""
    if len(outputs) == 1:
        graph.node("Identity", outputs, OUTPUTS)
        return
    weighted = [graph.node("Mul", [out, graph.constant(f"blend.weight{i}", w, np.float32)], f"blend.weighted{i}")
                for i, (out, w) in enumerate(zip(outputs, weights))]
    graph.node("Sum", weighted, OUTPUTS)


def _stage(model: Model, graph, directory: Path) -> dict[str, Any]:
    """Write the graph and the text families' assets into ``directory``; return the manifest's
    ``onnx`` entry that describes them."""
    import onnx

    onnx.save(graph, str(directory / MODEL_FILE))
    text = []
    for i, family in enumerate(model.blend.members):
        if not hasattr(family, "onnx_assets"):
            continue
        where = directory / ASSETS_DIR / f"m{i}"
        where.mkdir(parents=True)
        for column, asset in family.onnx_assets(where).items():
            text.append({"input": f"m{i}.text.{column}", "column": column,
                         "tokenizer": f"{ASSETS_DIR}/m{i}/{asset['tokenizer']}", "max_length": int(asset["max_length"])})
    return {"file": MODEL_FILE, "text": text}


def _differences(model: Model, directory: Path, spec: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """The staged graph's outputs against ``model``'s on ``frame``."""
    from takeoff.api import Model as ModelClass

    width = len(model.task.classes) if model.task.is_classification else None
    runner = OnnxBlend(directory, {"onnx": spec}, model.pipeline, width)
    exported = ModelClass({**model.manifest, "runtime": "onnx"}, model.schema, model.task, model.pipeline, runner)
    expected, _ = model.predict_outputs(frame, where="the parity rows")
    got, _ = exported.predict_outputs(frame, where="the parity rows")
    expected, got = np.asarray(expected, dtype=np.float64), np.asarray(got, dtype=np.float64)
    if expected.shape != got.shape:
        raise ExportError(f"the ONNX graph returns outputs of shape {got.shape}; the model returns {expected.shape}")
    gap = np.abs(got - expected)
    if not len(gap):
        raise ExportError("no rows to check the ONNX export on. Fix: pass some of the model's input rows")
    return {
        "max_abs_diff": float(gap.max()),
        "difference": float((gap / np.maximum(1.0, np.abs(expected))).max()),
        "rows": int(len(expected)),
    }
