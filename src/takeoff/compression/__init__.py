"""Compression over bundles: ONNX export, int8 quantization, pruning and distillation.

:func:`compress` runs the steps and measures the result against the original
(:mod:`takeoff.compression.compress`); :mod:`takeoff.compression.onnx` is the export.
"""

from __future__ import annotations


def compress(*args, **kwargs):
    """See :func:`takeoff.compression.compress.compress`."""
    from takeoff.compression.compress import compress as run

    return run(*args, **kwargs)


__all__ = ["compress"]
