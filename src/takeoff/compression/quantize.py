"""Post-training dynamic int8 quantization of an ONNX bundle's weight matrices.

ONNX Runtime's dynamic quantizer stores MatMul/Gemm weights as int8 with a scale per output
channel and quantizes activations on the fly per batch, so no calibration data is needed.
Only the weight matrices change; the preprocessing, trees and embeddings stay in float.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from takeoff.errors import ConfigError

GRAPH = "model.onnx"
# Matrix products only: quantizing Gather (embedding tables) too saves more bytes but moves
# the outputs more, and the attention/softmax ops stay in float either way.
OP_TYPES = ["MatMul", "Gemm"]


def quantize_graph(source: Path, target: Path, *, per_channel: bool = True) -> None:
    """Write the int8 version of the ONNX graph ``source`` to ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        op_types_to_quantize=OP_TYPES,
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
                                "per_channel": True, "op_types": OP_TYPES}
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
