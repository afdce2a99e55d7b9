"""The ONNX Runtime execution path: bundles written by ``takeoff compress --onnx``
(``"runtime": "onnx"`` in the manifest) predict through one ``model.onnx`` graph that holds
the whole pipeline: imputation, scaling, clipping, missing indicators, category codes, every
member and the blend.

What stays in Python is what a graph cannot take in: conforming the rows (as for any bundle),
datetime parts, hashing free text (scikit-learn, only when the graph reads the hashed block),
and tokenising text for the text families' graphs (the ``tokenizers`` package). This module
imports onnxruntime, numpy and pandas only: no torch, no LightGBM, no onnx package.

The graph's inputs (each present only when some member reads it):

* ``numbers`` float64 [N, k]: numbers, booleans and datetime parts in the pipeline's layout
  order, NaN for missing (:attr:`~takeoff.features.pipeline.RawInputs.numbers`);
* ``categories`` string [N, c]: the categorical columns' values, :data:`MISSING` for missing;
* ``hashed_text`` float32 [N, h]: the hashed bag of words of each free-text column, in order;
* ``<member>.text.<column>.input_ids`` / ``.attention_mask`` int64 [N, L]: token ids of the
  text families' columns (listed under ``onnx.text`` in the manifest).

Its one output, ``outputs`` float32, is the blend: probabilities [N, n_classes] or values [N].
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff.errors import BundleError, MissingDependencyError
from takeoff.features.pipeline import FeaturePipeline, RawInputs

MODEL_FILE = "model.onnx"
MISSING = "\x00"  # a missing category in the ``categories`` input (conformed values are stripped text)
NUMBERS, CATEGORIES, HASHED_TEXT, OUTPUTS = "numbers", "categories", "hashed_text", "outputs"
# Intra-op threads of the session. One: a request of a few rows is fastest so (thread hand-offs
# cost more than they give: ~40 us against ~70-350 us per call with 4), and a server scales
# with --workers. A big batch file gains ~25% from 4; set TAKEOFF_ONNX_THREADS for that.
THREADS_ENV = "TAKEOFF_ONNX_THREADS"


class OnnxBlend:
    """The predictor of a ``runtime: onnx`` bundle: one ONNX Runtime session over ``model.onnx``.

    It plays the part :class:`~takeoff.models.blend.Blend` plays for other bundles:
    :meth:`transform` makes a graph's inputs from conformed rows (what ``Model.features``
    returns), :meth:`predict` runs the graph on them.

    Raises:
        MissingDependencyError: onnxruntime is not installed.
        BundleError: the graph is missing or cannot be loaded.
    """

    members: list[Any] = []  # nothing per member: the graph holds them all

    def __init__(self, path: Path, manifest: dict[str, Any], pipeline: FeaturePipeline, n_outputs: int | None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "running ONNX bundles", extra="lite") from None
        self.path, self.pipeline, self.n_outputs = Path(path), pipeline, n_outputs
        self.spec = manifest.get("onnx", {})
        self.text = list(self.spec.get("text", []))  # [{"input", "column", "tokenizer", "max_length"}]
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: shape notes on every run are not the user's concern
        graph = self.path / self.spec.get("file", MODEL_FILE)
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 (onnxruntime raises its own exception types)
            raise BundleError(str(graph), f"cannot be loaded by ONNX Runtime {ort.__version__} "
                              f"({str(error).splitlines()[0]})", "export the bundle again, or upgrade onnxruntime") from None
        self.inputs = {i.name for i in self.session.get_inputs()}

    def transform(self, columns: pd.DataFrame | dict[str, np.ndarray]) -> RawInputs:
        """The raw inputs of conformed rows (hashing text only when the graph reads it)."""
        return self.pipeline.raw(columns, hashed=HASHED_TEXT in self.inputs)

    def feed(self, raw: RawInputs) -> dict[str, np.ndarray]:
        """The session's input arrays for ``raw``."""
        feed: dict[str, np.ndarray] = {}
        if NUMBERS in self.inputs:
            feed[NUMBERS] = np.ascontiguousarray(raw.numbers, dtype=np.float64)
        if CATEGORIES in self.inputs:
            categories = raw.categories.copy()
            categories[pd.isna(categories)] = MISSING
            feed[CATEGORIES] = categories
        if HASHED_TEXT in self.inputs:
            layout = self.pipeline.layout()
            feed[HASHED_TEXT] = np.hstack([raw.hashed[name] for name in layout.text_at]).astype(np.float32, copy=False)
        if self.text:
            from takeoff.features.tokens import encode_texts

            for entry in self.text:
                ids, mask = encode_texts(self.path / entry["tokenizer"], raw.text[entry["column"]], entry["max_length"])
                feed[f"{entry['input']}.input_ids"], feed[f"{entry['input']}.attention_mask"] = ids, mask
        return feed

    def predict(self, raw: RawInputs) -> np.ndarray:
        """Probabilities (n, n_classes) or values (n,), float64 like :meth:`Blend.predict`."""
        if len(raw) == 0:
            return np.zeros((0, self.n_outputs) if self.n_outputs else (0,), dtype=np.float64)
        (outputs,) = self.session.run([OUTPUTS], self.feed(raw))
        return outputs.astype(np.float64)

    def save(self, directory: Path) -> None:
        """Copy the graph and the text assets into a bundle being written."""
        files = [self.spec.get("file", MODEL_FILE)] + [entry["tokenizer"] for entry in self.text]
        for name in files:
            target = Path(directory) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.path / name, target)


def _threads() -> int:
    value = os.environ.get(THREADS_ENV, "1").strip()
    if not value.isdigit() or int(value) < 1:
        from takeoff.errors import ConfigError

        raise ConfigError(f"{THREADS_ENV}={value!r} is not a positive whole number of threads")
    return int(value)
