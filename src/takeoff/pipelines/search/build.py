"""Building a semantic search index: embed a text column of a table with a pretrained encoder
(all-MiniLM-L6-v2 by default, see :mod:`takeoff.models.encoder`) into L2-normalised float32
vectors, keeping each row's answer and other columns.

Example:
    >>> from takeoff.pipelines.search import build_index
    >>> index = build_index("faq.csv", text="question", answer="answer", out="runs/faq")
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff._version import __version__
from takeoff.errors import DataError, preview
from takeoff.pipelines.search.index import MAX_LENGTH, SearchIndex, shared_encoder

RESERVED = ("score", "text", "answer", "row")  # keys of a hit; metadata columns of these names get a '_' suffix


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
    model = shared_encoder(folder, digest, MAX_LENGTH)
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

