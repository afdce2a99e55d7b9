"""Compression over bundles: ONNX export, int8 quantization, pruning and distillation.

:func:`compress` runs the steps and measures the result against the original
(:mod:`takeoff.compression.compress`); :mod:`takeoff.compression.onnx` is the export.
"""

from __future__ import annotations


# Imported here, not wrapped: a wrapper named like the submodule is replaced by the module
# object as soon as anything imports ``takeoff.compression.compress``, and ``from
# takeoff.compression import compress`` then gives the module.
from takeoff.compression.compress import compress  # noqa: E402

__all__ = ["compress"]
