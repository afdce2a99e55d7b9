"""Semantic search: an index of texts (FAQ questions, articles, past tickets) answered by
meaning, not by shared words.

``build_index`` embeds a text column with a pretrained encoder (all-MiniLM-L6-v2 by default,
see :mod:`takeoff.models.encoder`) into L2-normalised float32 vectors; :class:`SearchIndex`
embeds a query the same way and returns the rows whose vectors have the highest cosine
similarity (a dot product, since both are normalised), with their answer and other columns.

The search is exact: one matrix product per chunk of rows and an ``argpartition``, so memory
stays at about ``rows × dim × 4`` bytes for the vectors (1M rows × 384 dims ≈ 1.5 GB) plus
one chunk of scores. See docs/text.md for measured latencies.

Example:
    >>> import takeoff
    >>> from takeoff.search import build_index
    >>> index = build_index("faq.csv", text="question", answer="answer", out="runs/faq")
    >>> index.search("I forgot my login secret", k=3)[0]["answer"]
    >>> takeoff.load("runs/faq").search_batch(["where is my parcel?", "refund please"], k=1)
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff import bundle
from takeoff._version import __version__
from takeoff.errors import BundleError, DataError, preview

VECTORS, ROWS_JSON, ENCODER_DIR = "vectors.safetensors", "rows.json", "encoder"
SKIP_FILES = {"README.md", ".gitattributes"}  # not needed to run the encoder
RESERVED = ("score", "text", "answer", "row")  # keys of a hit; metadata columns of these names get a '_' suffix
CHUNK_SCORES = 1 << 24  # scores held at once (64 MB of float32): bounds memory for big batches
MAX_LENGTH = 256
_ENCODERS: dict[tuple[str, int], Any] = {}  # (encoder sha256, max_length) -> TextEncoder, shared in a process


# ---------------------------------------------------------------------------------- building
def build_index(data, text: str, answer: str | None = None, *, encoder: str | None = None,
                out: str | Path | None = None, embed_encoder: bool = True) -> SearchIndex:
    """Embed the ``text`` column of a table into a semantic search index.

    Args:
        data: a file path, SQLAlchemy URL or DataFrame (read with
            :func:`takeoff.data.sources.read_table`).
        text: the column searched (e.g. the FAQ question).
        answer: a column returned with each hit (e.g. the FAQ answer); default none.
        encoder: an encoder name, alias or local folder (default all-MiniLM-L6-v2); never
            downloaded.
        out: write the index as a bundle directory here (default: not written).
        embed_encoder: copy the encoder into the bundle (default True; about 90 MB for
            MiniLM), else keep its name and sha256 only (loading then needs the same encoder).

    Returns:
        The :class:`SearchIndex`. Rows whose text is empty are skipped (counted in
        ``notes``); duplicate texts are kept; the other columns are kept as metadata and
        returned with each hit.

    Raises:
        ColumnNotFoundError: ``text`` or ``answer`` is not a column.
        DataError: no row has a text.
        EncoderNotFoundError: the encoder is not on this machine.

    Example:
        >>> index = build_index(faq, text="question", answer="answer")
        >>> index.search("how do I get my money back?", k=1)[0]["answer"]
    """
    from takeoff.data.schema import require_columns
    from takeoff.data.sources import read_table, source_name
    from takeoff.models.encoder import DEFAULT_ENCODER, folder_digest, resolve_encoder

    started = time.monotonic()
    name = "the data" if isinstance(data, pd.DataFrame) else source_name(data)
    df = read_table(data)
    require_columns(df, [text], name, role="text column")
    if answer is not None:
        require_columns(df, [answer], name, role="answer column")
    encoder_name = str(encoder or DEFAULT_ENCODER)
    folder = resolve_encoder(encoder_name)  # fails before any work when the encoder is missing

    texts = df[text].map(lambda v: "" if _missing(v) else str(v).strip())
    keep = (texts != "").to_numpy()
    notes: list[str] = []
    skipped = np.flatnonzero(~keep).tolist()
    if skipped:
        notes.append(f"{len(skipped)} row(s) with an empty '{text}' were skipped (rows {preview(skipped, 8)})")
    if not keep.any():
        raise DataError(f"every row of {name} has an empty '{text}'; there is nothing to index. "
                        f"Fix: pass the column that holds the texts as --text.", column=text)
    rows = np.flatnonzero(keep).tolist()
    kept = texts[keep].tolist()
    duplicates = len(kept) - len(set(kept))
    if duplicates:
        notes.append(f"{duplicates} row(s) repeat a text of another row; all are kept (each is its own hit)")
    answers = None
    if answer is not None:
        answers = [None if _missing(v) else (v.item() if isinstance(v, np.generic) else v)
                   for v in df[answer].iloc[rows].tolist()]
        answers = [v if v is None or isinstance(v, (str, int, float, bool)) else str(v) for v in answers]
    meta_columns = [c for c in df.columns if c not in (text, answer)]
    metadata = _records(df.iloc[rows][meta_columns]) if meta_columns else None
    renamed = {c: f"{c}_" for c in meta_columns if c in RESERVED}
    if renamed and metadata is not None:
        metadata = [{renamed.get(k, k): v for k, v in r.items()} for r in metadata]
        notes.append("column(s) " + ", ".join(f"'{c}' → '{n}'" for c, n in renamed.items())
                     + " renamed in hits (their names are keys of every hit)")

    digest = folder_digest(folder)
    model = _encoder(folder, digest, MAX_LENGTH)
    vectors = model.embed(kept)
    if model.truncated:
        notes.append(f"{model.truncated} text(s) longer than {MAX_LENGTH} tokens were truncated for embedding")
    manifest = {
        "takeoff_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": {"kind": "search", "target": None, "classes": []},
        "search": {"text": text, "answer": answer, "rows": len(kept), "dim": int(vectors.shape[1]),
                   "dtype": "float32", "metric": "cosine", "metadata_columns": [renamed.get(c, c) for c in meta_columns]},
        "encoder": {"name": encoder_name, "embedded": bool(embed_encoder), "sha256": digest,
                    "max_length": MAX_LENGTH, **{k: v for k, v in model.info().items() if k != "folder"}},
        "metrics": {},
        "training": {"source": name, "rows_read": len(df), "rows": len(kept), "skipped_empty": len(skipped),
                     "duplicates": duplicates, "seconds": round(time.monotonic() - started, 2), "notes": notes},
    }
    index = SearchIndex(manifest, vectors, kept, answers, rows, metadata, folder)
    if out is not None:
        index.save(out)
    return index


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN → null, timestamps → ISO text, numpy scalars → Python)."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    return json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False))


def _encoder(folder: Path, digest: str, max_length: int):
    """The TextEncoder of ``folder``, loaded once per process (keyed by its content hash, so a
    bundle's copy reuses the encoder its index was built with)."""
    from takeoff.models.encoder import TextEncoder

    key = (digest, max_length)
    if key not in _ENCODERS:
        _ENCODERS[key] = TextEncoder(folder, max_length=max_length)
    return _ENCODERS[key]


# ---------------------------------------------------------------------------------- search
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


class SearchIndex:
    """Texts, their normalised vectors, answers and metadata; answers queries by cosine
    similarity. Use :func:`build_index` or :func:`takeoff.load` to get one."""

    def __init__(self, manifest: dict[str, Any], vectors: np.ndarray, texts: list[str], answers: list[Any] | None,
                 rows: list[int], metadata: list[dict[str, Any]] | None, encoder_folder: Path):
        self.manifest, self.vectors, self.texts, self.answers = manifest, vectors, texts, answers
        self.rows, self.metadata, self.encoder_folder = rows, metadata, Path(encoder_folder)
        self.path: Path | None = None
        self._attachments: dict[str, Path] = {}
        self._lock = threading.Lock()  # a fast tokenizer is not safe to call from two threads at once

    # ------------------------------------------------------------------ facts
    @property
    def task(self):
        from takeoff.data.schema import Task

        return Task.from_json(self.manifest["task"])

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.get("metrics", {})

    @property
    def notes(self) -> list[str]:
        return self.manifest["training"]["notes"]

    @functools.cached_property
    def version(self) -> str:
        import hashlib

        text = json.dumps(self.manifest, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def encoder(self):
        """The TextEncoder (loaded on first use, shared within the process)."""
        enc = self.manifest["encoder"]
        return _encoder(self.encoder_folder, enc["sha256"], enc.get("max_length", MAX_LENGTH))

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
        k = _check_k(k)
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
    def save(self, path: str | Path) -> Path:
        """Write the index as a bundle directory (atomically): vectors in safetensors
        (float32), texts, answers and metadata in JSON, the encoder in ``encoder/`` (or its
        name and sha256)."""
        from safetensors.numpy import save_file

        from takeoff.models.encoder import folder_digest

        manifest = {k: v for k, v in self.manifest.items() if k not in ("format", "format_version", "files")}
        enc = manifest["encoder"] = dict(manifest["encoder"])

        def fill(tmp: Path) -> None:
            save_file({"vectors": np.ascontiguousarray(self.vectors, dtype=np.float32)}, str(tmp / VECTORS))
            bundle.write_json(tmp / ROWS_JSON, {"texts": self.texts, "answers": self.answers, "rows": self.rows,
                                                "metadata": self.metadata})
            if enc["embedded"]:
                shutil.copytree(self.encoder_folder, tmp / ENCODER_DIR,
                                ignore=lambda _d, names: [n for n in names if n in SKIP_FILES])
                digest = folder_digest(tmp / ENCODER_DIR)
                key, old = (digest, enc.get("max_length", MAX_LENGTH)), (enc["sha256"], enc.get("max_length", MAX_LENGTH))
                if old in _ENCODERS:  # the same weights: the loaded bundle reuses this encoder
                    _ENCODERS.setdefault(key, _ENCODERS[old])
                enc.update(sha256=digest, folder=ENCODER_DIR)

        self.path = bundle.write(path, manifest, fill)
        self.manifest = bundle.read_manifest(self.path, verify=False)
        self.__dict__.pop("version", None)
        if enc["embedded"]:
            self.encoder_folder = self.path / ENCODER_DIR
        return self.path

    @classmethod
    def _load(cls, path: Path, manifest: dict[str, Any]) -> SearchIndex:
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
        index = cls(manifest, vectors, data["texts"], data["answers"], data["rows"], data["metadata"], folder)
        index.path = path
        return index


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be a whole number of at least 1, got {k!r}")
    return int(k)
