"""A semantic search index: texts, their normalised vectors, answers and metadata, answering
queries by meaning, not by shared words; and its bundle files.

:class:`SearchIndex` embeds a query with the encoder the index was built with and returns the
rows whose vectors have the highest cosine similarity (a dot product, since both are
normalised). The search is exact: one matrix product per chunk of rows and an
``argpartition``, so memory stays at about ``rows × dim × 4`` bytes for the vectors (1M rows ×
384 dims ≈ 1.5 GB) plus one chunk of scores. See docs/text.md for measured latencies.

Example:
    >>> index = takeoff.load("runs/faq")
    >>> index.search("I forgot my login secret", k=3)[0]["answer"]
    >>> index.search_batch(["where is my parcel?", "refund please"], k=1)
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from takeoff import bundle
from takeoff.errors import BundleError, DataError, preview
from takeoff.pipelines.base import Predictor, check_k

VECTORS, ROWS_JSON, ENCODER_DIR = "vectors.safetensors", "rows.json", "encoder"
SKIP_FILES = {"README.md", ".gitattributes"}  # not needed to run the encoder
CHUNK_SCORES = 1 << 24  # scores held at once (64 MB of float32): bounds memory for big batches
MAX_LENGTH = 256
_ENCODERS: dict[tuple[str, int], Any] = {}  # (encoder sha256, max_length) -> TextEncoder, shared in a process


def shared_encoder(folder: Path, digest: str, max_length: int):
    """The TextEncoder of ``folder``, loaded once per process (keyed by its content hash, so a
    bundle's copy reuses the encoder its index was built with)."""
    from takeoff.models.encoder import TextEncoder

    key = (digest, max_length)
    if key not in _ENCODERS:
        _ENCODERS[key] = TextEncoder(folder, max_length=max_length)
    return _ENCODERS[key]


def top_k(vectors: np.ndarray, queries: np.ndarray, k: int, chunk_scores: int = CHUNK_SCORES) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows by dot product for each query.

    ``vectors`` (n, dim) and ``queries`` (q, dim) float32; returns ``(rows, scores)``, both
    (q, min(k, n)), best first (ties: lower row first). Rows are scored in chunks of about
    ``chunk_scores / q`` so the score matrix never exceeds ``chunk_scores`` floats.
    """
    n, q = len(vectors), len(queries)
    k = min(k, n)
    best_rows = np.empty((q, 0), dtype=np.int64)
    best_scores = np.empty((q, 0), dtype=np.float32)
    step = max(1024, chunk_scores // max(q, 1))
    for start in range(0, n, step):
        scores = queries @ vectors[start:start + step].T  # (q, chunk)
        if scores.shape[1] > k:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (q, k), unordered
        else:
            part = np.broadcast_to(np.arange(scores.shape[1]), (q, scores.shape[1]))
        best_rows = np.concatenate([best_rows, part + start], axis=1)
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        if best_rows.shape[1] > k:  # keep the running best k
            keep = np.argpartition(-best_scores, k - 1, axis=1)[:, :k]
            best_rows = np.take_along_axis(best_rows, keep, axis=1)
            best_scores = np.take_along_axis(best_scores, keep, axis=1)
    order = np.lexsort((best_rows, -best_scores), axis=1) if q else best_rows
    return np.take_along_axis(best_rows, order, axis=1), np.take_along_axis(best_scores, order, axis=1)


class SearchIndex(Predictor):
    """Texts, their normalised vectors, answers and metadata; answers queries by cosine
    similarity. Use :func:`~takeoff.pipelines.search.build_index` or :func:`takeoff.load` to get one."""

    kind = "search"

    def __init__(self, manifest: dict[str, Any], vectors: np.ndarray, texts: list[str], answers: list[Any] | None,
                 rows: list[int], metadata: list[dict[str, Any]] | None, encoder_folder: Path):
        super().__init__(manifest)
        self.vectors, self.texts, self.answers = vectors, texts, answers
        self.rows, self.metadata, self.encoder_folder = rows, metadata, Path(encoder_folder)
        self._lock = threading.Lock()  # a fast tokenizer is not safe to call from two threads at once

    # ------------------------------------------------------------------ facts
    @property
    def notes(self) -> list[str]:
        return self.manifest["training"]["notes"]

    @property
    def encoder(self):
        """The TextEncoder (loaded on first use, shared within the process)."""
        enc = self.manifest["encoder"]
        return shared_encoder(self.encoder_folder, enc["sha256"], enc.get("max_length", MAX_LENGTH))

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        s = self.manifest["search"]
        return f"<takeoff.SearchIndex text={s['text']!r} rows={len(self)} encoder={self.manifest['encoder']['name']!r}>"

    # ------------------------------------------------------------------ search
    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` rows most like ``query`` in meaning, best first.

        Returns:
            One dict per hit: ``score`` (cosine similarity, -1 to 1), ``text``, ``answer``
            (None without an answer column), ``row`` (the row's position in the indexed
            table, from 0) and the row's other columns.

        Raises:
            DataError: ``query`` is not a string, or ``k`` is not a whole number ≥ 1.
        """
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5) -> list[list[dict[str, Any]]]:
        """:meth:`search` for several queries at once (one embedding pass, one matrix product)."""
        k = check_k(k)
        if isinstance(queries, str) or not all(isinstance(q, str) for q in queries):
            raise DataError(f"queries must be a list of strings, got {preview(list(queries) if not isinstance(queries, str) else [queries], 3)}")
        if not queries:
            return []
        with self._lock:
            embedded = self.encoder.embed(list(queries))
        rows, scores = top_k(self.vectors, embedded, k)
        return [[self._hit(int(i), float(s)) for i, s in zip(r, sc)] for r, sc in zip(rows.tolist(), scores.tolist())]

    def _hit(self, i: int, score: float) -> dict[str, Any]:
        hit = {"score": score, "text": self.texts[i], "answer": self.answers[i] if self.answers is not None else None,
               "row": self.rows[i]}
        if self.metadata is not None:
            hit.update(self.metadata[i])
        return hit

    # ------------------------------------------------------------------ bundle
    def write_files(self, directory: Path, manifest: dict[str, Any]) -> None:
        """Vectors in safetensors (float32), texts, answers and metadata in JSON, the encoder in
        ``encoder/`` (or its name and sha256 only)."""
        from safetensors.numpy import save_file

        from takeoff.models.encoder import folder_digest

        enc = manifest["encoder"] = dict(manifest["encoder"])
        save_file({"vectors": np.ascontiguousarray(self.vectors, dtype=np.float32)}, str(directory / VECTORS))
        bundle.write_json(directory / ROWS_JSON, {"texts": self.texts, "answers": self.answers, "rows": self.rows,
                                                  "metadata": self.metadata})
        if enc["embedded"]:
            shutil.copytree(self.encoder_folder, directory / ENCODER_DIR,
                            ignore=lambda _d, names: [n for n in names if n in SKIP_FILES])
            digest = folder_digest(directory / ENCODER_DIR)
            key, old = (digest, enc.get("max_length", MAX_LENGTH)), (enc["sha256"], enc.get("max_length", MAX_LENGTH))
            if old in _ENCODERS:  # the same weights: the loaded bundle reuses this encoder
                _ENCODERS.setdefault(key, _ENCODERS[old])
            enc.update(sha256=digest, folder=ENCODER_DIR)

    def saved(self, path: Path) -> None:
        if self.manifest["encoder"]["embedded"]:
            self.encoder_folder = path / ENCODER_DIR

    @classmethod
    def from_bundle(cls, path: Path, manifest: dict[str, Any]) -> SearchIndex:
        from safetensors.numpy import load_file

        from takeoff.models.encoder import check_encoder_folder, folder_digest, resolve_encoder

        enc = manifest.get("encoder", {})
        if enc.get("embedded"):
            folder = path / enc.get("folder", ENCODER_DIR)
            check_encoder_folder(folder)  # its files' hashes were checked with the manifest
        else:
            folder = resolve_encoder(enc.get("name"))
            if folder_digest(folder) != enc.get("sha256"):
                raise BundleError(str(path), f"references encoder '{enc.get('name')}' with sha256 "
                                  f"{str(enc.get('sha256'))[:12]}…, but the copy found at {folder} differs",
                                  "install the same encoder version, or rebuild the index with the encoder embedded")
        vectors = load_file(str(path / VECTORS))["vectors"]
        data = json.loads((path / ROWS_JSON).read_text(encoding="utf-8"))
        if len(data["texts"]) != len(vectors):
            raise BundleError(str(path), f"holds {len(data['texts'])} texts for {len(vectors)} vectors", "rebuild the index")
        return cls(manifest, vectors, data["texts"], data["answers"], data["rows"], data["metadata"], folder)
