"""Post-training dynamic int8 quantization of an ONNX bundle's weight matrices and embedding tables.

ONNX Runtime's dynamic quantizer stores MatMul/Gemm weights as int8 with a scale per output
channel and quantizes activations on the fly per batch, so no calibration data is needed.
Large embedding tables (Gather on a float table, such as a transformer's 30,522 x 384 word
embeddings, half of MiniLM's bytes) are stored as 8-bit with one scale per table and turned
back into float after the lookup. The preprocessing, trees, small tables (category
embeddings) and the attention products stay in float.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from takeoff.errors import ConfigError

GRAPH = "model.onnx"
OP_TYPES = ["MatMul", "Gemm", "Gather"]
# Embedding tables of fewer values stay in float: a category embedding of a few dozen rows
# would save a few kilobytes and lose its exact values. MiniLM's position table (512 x 384)
# and word table pass; its token-type table (2 x 384) does not.
EMBEDDING_MIN_VALUES = 1 << 16


def small_tables(source: Path, min_values: int = EMBEDDING_MIN_VALUES) -> list[str]:
    """Names of the Gather nodes of graph ``source`` that read a float table (an initializer)
    of fewer than ``min_values`` values: left out of the quantization."""
    import onnx

    graph = onnx.load(str(source)).graph
    sizes = {t.name: int(np.prod(t.dims)) for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    return [n.name for n in graph.node
            if n.op_type == "Gather" and n.name and sizes.get(n.input[0], min_values) < min_values]


def quantize_graph(source: Path, target: Path, *, per_channel: bool = True) -> None:
    """Write the int8 version of the ONNX graph ``source`` to ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        op_types_to_quantize=OP_TYPES,
        nodes_to_exclude=small_tables(source),
        extra_options={"MatMulConstBOnly": True},
    )


def quantize_bundle(model, out: Path, kind: str = "int8"):
    """A copy of the ONNX bundle ``model`` with int8 weights, written atomically to ``out``.

    Returns:
        (the loaded quantized Model, step info)
    """
    from takeoff import bundle
    from takeoff.api import load

    if kind != "int8":
        raise ConfigError(f"quantization {kind!r} is not supported; choose: int8")
    source = Path(model.path)
    if model.manifest.get("runtime") != "onnx" or not (source / GRAPH).exists():
        raise ConfigError(f"{source} has no ONNX graph to quantize. Fix: export it first (--onnx).")
    started = time.monotonic()
    manifest = {k: v for k, v in copy.deepcopy(model.manifest).items() if k not in ("format", "format_version", "files")}

    def fill(tmp: Path) -> None:
        for item in source.iterdir():
            if item.name in (bundle.MANIFEST, GRAPH):
                continue
            (shutil.copytree if item.is_dir() else shutil.copyfile)(item, tmp / item.name)
        with tempfile.TemporaryDirectory(prefix="takeoff-quantize-") as scratch:
            staged = Path(scratch) / GRAPH
            quantize_graph(source / GRAPH, staged)
            shutil.move(str(staged), tmp / GRAPH)

    before = (source / GRAPH).stat().st_size
    manifest["quantization"] = {"kind": kind, "method": "onnxruntime dynamic", "weight_type": "QInt8",
                                "per_channel": True, "op_types": OP_TYPES,
                                "embedding_min_values": EMBEDDING_MIN_VALUES}
    bundle.write(out, manifest, fill)
    quantized = load(out)
    info: dict[str, Any] = {
        "step": "quantize",
        "kind": kind,
        "graph_bytes_before": before,
        "graph_bytes_after": (Path(out) / GRAPH).stat().st_size,
        "seconds": round(time.monotonic() - started, 2),
    }
    return quantized, info
