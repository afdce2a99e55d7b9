"""Execution paths for bundles that do not need the training libraries (see :mod:`takeoff.runtime.onnx`)."""
