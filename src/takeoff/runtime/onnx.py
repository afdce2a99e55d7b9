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
# Intra-op threads of the session (TAKEOFF_ONNX_THREADS overrides). A table's graph gets one: a
# request of a few rows is fastest so (thread hand-offs cost more than they give: ~40 us against
# ~70-350 us per call with 4), and a server scales with --workers. A text graph gets every core
# the process may use, as PyTorch does: its calls are milliseconds of matrix products (int8
# MiniLM, 64 tweets on 2 cores: 132 ms with two threads against 257 ms with one; one tweet:
# 2.8 against 4.2 ms).
THREADS_ENV = "TAKEOFF_ONNX_THREADS"
# Tokens (rows x longest text, padding included) per run of a text graph. Rows are sorted by
# length and cut into runs of about this size, so short texts are not padded to the longest of
# the whole request and each run's activations stay in cache: a batch of 64 tweets (MiniLM,
# one thread) ran 2x faster in runs of 256-512 tokens than as one run. 512 rather than 256
# leaves each run big enough for a few threads (TAKEOFF_ONNX_THREADS).
TEXT_RUN_TOKENS = 512


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
        options.intra_op_num_threads = _threads(text=bool(self.text))
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
        """Probabilities (n, n_classes) or values (n,), float64 like :meth:`Blend.predict`.

        A text graph runs on length-sorted runs of rows (see :data:`TEXT_RUN_TOKENS`), each
        padded only to its own longest text; the outputs come back in the rows' order.
        """
        if len(raw) == 0:
            return np.zeros((0, self.n_outputs) if self.n_outputs else (0,), dtype=np.float64)
        feed = self.feed(raw)
        runs = text_runs([feed[f"{entry['input']}.attention_mask"] for entry in self.text], TEXT_RUN_TOKENS) \
            if self.text else []
        if len(runs) <= 1:
            (outputs,) = self.session.run([OUTPUTS], feed)
            return outputs.astype(np.float64)
        masks = {f"{entry['input']}.{part}": f"{entry['input']}.attention_mask" for entry in self.text
                 for part in ("input_ids", "attention_mask")}
        out = None
        for index in runs:
            part = {}
            for name, values in feed.items():
                values = values[index]
                if name in masks:  # right-padded: keep the columns up to this run's longest text
                    values = values[:, : max(1, int(feed[masks[name]][index].sum(axis=1).max()))]
                part[name] = values
            (outputs,) = self.session.run([OUTPUTS], part)
            if out is None:
                out = np.empty((len(raw),) + outputs.shape[1:], dtype=np.float64)
            out[index] = outputs
        return out

    def save(self, directory: Path) -> None:
        """Copy the graph and the text assets into a bundle being written."""
        files = [self.spec.get("file", MODEL_FILE)] + [entry["tokenizer"] for entry in self.text]
        for name in files:
            target = Path(directory) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.path / name, target)


def text_runs(masks: list[np.ndarray], tokens: int) -> list[np.ndarray]:
    """Row indices cut into runs for a text graph: rows sorted by their token count (summed over
    the text columns, whose attention ``masks`` are [N, L_c]), then taken in order while the run
    stays within ``tokens`` (rows x the run's longest text per column, summed); a row longer than
    ``tokens`` runs alone. One run of all rows when they fit as they are."""
    n = len(masks[0])
    if n * sum(m.shape[1] for m in masks) <= tokens:
        return [np.arange(n)]
    lengths = np.stack([m.sum(axis=1) for m in masks], axis=1)  # (N, columns)
    order = np.argsort(lengths.sum(axis=1), kind="stable")
    runs, start = [], 0
    while start < n:
        longest = lengths[order[start]].copy()
        end = start + 1
        while end < n:
            wider = np.maximum(longest, lengths[order[end]])
            if (end - start + 1) * int(wider.sum()) > tokens:
                break
            longest, end = wider, end + 1
        runs.append(order[start:end])
        start = end
    return runs


def _threads(text: bool = False) -> int:
    value = os.environ.get(THREADS_ENV, str(_cores() if text else 1)).strip()
    if not value.isdigit() or int(value) < 1:
        from takeoff.errors import ConfigError

        raise ConfigError(f"{THREADS_ENV}={value!r} is not a positive whole number of threads")
    return int(value)


def _cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
