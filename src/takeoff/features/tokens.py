"""Token ids for the ONNX text graphs, with the ``tokenizers`` package only.

The lite runtime has neither torch nor transformers, so a fine-tuned text model's exported
graph takes token ids that this module computes from the ``tokenizer.json`` the model wrote
beside it (see ``TextFinetuneFamily.onnx_assets``). The ids equal what the family's Hugging
Face tokenizer gives: special tokens ([CLS] … [SEP] for BERT-like encoders) added, truncated
to ``max_length`` tokens (specials included), padded on the right to the longest text of the
batch with the tokenizer's pad id.

Example:
    >>> ids, mask = encode_texts("bundle/models/m0/tokenizer.json", ["good", ""], 128)  # doctest: +SKIP
    >>> ids.shape, mask.dtype  # doctest: +SKIP
    ((2, 3), dtype('int64'))
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from takeoff.errors import BundleError, MissingDependencyError

PAD_TOKENS = ("[PAD]", "<pad>", "<|pad|>", "<|endoftext|>")  # looked up when the file sets no padding
CACHE_SIZE = 16  # tokenizers kept loaded (a bundle has one per text column at most)

_cache: dict[tuple[str, int, int, int], tuple[Any, int]] = {}
_lock = threading.Lock()


def encode_texts(
    tokenizer_path: str | os.PathLike[str], texts: Sequence[Any], max_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask of ``texts``, padded to the longest in the batch.

    Args:
        tokenizer_path: a Hugging Face fast-tokenizer file (``tokenizer.json``).
        texts: the strings (anything else is turned into one with ``str``; None and NaN into "").
        max_length: tokens kept per text, special tokens included; longer texts are cut.

    Returns:
        ``(input_ids, attention_mask)``, both int64 of shape (len(texts), longest); the mask is
        1 on real tokens and 0 on padding. No texts give two (0, 0) arrays.

    Raises:
        BundleError: the file is missing or is not a tokenizer.
        MissingDependencyError: the ``tokenizers`` package is not installed.
    """
    tokenizer, pad_id = _load(Path(tokenizer_path), int(max_length))
    if len(texts) == 0:
        return np.zeros((0, 0), np.int64), np.zeros((0, 0), np.int64)
    encodings = tokenizer.encode_batch([_text(t) for t in texts])
    longest = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), longest), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return ids, mask


def _text(value: Any) -> str:
    """A cell as the pipeline hands text on: missing (None, NaN) is ""."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _load(path: Path, max_length: int) -> tuple[Any, int]:
    """The tokenizer at ``path`` set to truncate at ``max_length`` and not pad, and its pad id.

    Cached per (file, modification time, size, max_length): a cached tokenizer is never
    reconfigured, so threads can share it.
    """
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise MissingDependencyError("tokenizers", "text models in the ONNX runtime") from None
    try:
        stat = path.stat()
    except OSError:
        raise BundleError(str(path), "is missing: the text model's tokenizer file",
                          "export the bundle again, or copy the whole bundle folder") from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, max_length)
    with _lock:
        if key in _cache:
            return _cache[key]
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception on a bad file
        raise BundleError(str(path), f"cannot be read as a tokenizer: {str(error).splitlines()[0]}",
                          "export the bundle again") from None
    padding = tokenizer.padding
    pad_id = padding["pad_id"] if padding else next(
        (i for i in map(tokenizer.token_to_id, PAD_TOKENS) if i is not None), 0)
    direction = (tokenizer.truncation or {}).get("direction", "right")
    tokenizer.no_padding()  # a file may pad to a fixed length (all-MiniLM-L6-v2 pads to 128)
    tokenizer.enable_truncation(max_length, direction=direction)
    with _lock:
        if len(_cache) >= CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = (tokenizer, int(pad_id))
    return tokenizer, int(pad_id)
