"""A causal language model as a bundle: generate, chat, stream, score.

The bundle holds the merged weights (LoRA adapters folded in) as safetensors and the
tokenizer in ``model/``, the report, and a manifest whose ``generate`` section names the base
model, the template and how it was trained. Nothing in it is pickled; loading never runs code
from it (no ``trust_remote_code``).

Example:
    >>> model = takeoff.load("runs/assistant")
    >>> model.generate("How do I install a .deb file?", max_new_tokens=64)
    >>> for piece in model.stream("Write a haiku about disks"):
    ...     print(piece, end="", flush=True)
    >>> model.chat([{"role": "user", "content": "hello"}]).text
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from takeoff.errors import BundleError, DataError
from takeoff.pipelines.base import Predictor
from takeoff.pipelines.generation.engine import Completion, Engine, Request
from takeoff.pipelines.generation.template import Template, check_messages

MODEL_DIR = "model"
MAX_NEW_TOKENS_LIMIT = 8192

__all__ = ["Completion", "GenerativeModel", "Request"]


class GenerativeModel(Predictor):
    """A causal language model (fine-tuned or base) with its tokenizer and template.

    Get one from ``takeoff.train(..., task="generate")``, :func:`takeoff.load` or
    :meth:`from_folder` (a base model as it is).
    """

    kind = "generate"

    def __init__(self, manifest: dict[str, Any], folder: Path, engine: Engine | None = None):
        super().__init__(manifest)
        self.folder = Path(folder)
        self._engine = engine
        self._engine_lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: str | Path, *, name: str | None = None, system: str | None = None,
                    precision: str = "auto", device: str = "auto") -> GenerativeModel:
        """A base model folder (see :func:`~takeoff.pipelines.generation.base_models.resolve_base`)
        as an untrained model: to generate with, to compare with, or to bundle as it is."""
        from datetime import datetime, timezone

        from takeoff._version import __version__

        folder = Path(folder)
        manifest = {"takeoff_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "task": {"kind": "generate", "target": None, "classes": []},
                    "generate": {"base_model": name or str(folder), "method": "none", "system": system,
                                 "precision": precision, "device": device},
                    "metrics": {}, "training": {"notes": []}}
        return cls(manifest, folder)

    # ------------------------------------------------------------------ facts
    @property
    def engine(self) -> Engine:
        """The loaded model (on first use; shared by every caller of this object)."""
        with self._engine_lock:
            if self._engine is None:
                spec = self.manifest["generate"]
                self._engine = Engine(self.folder, precision=spec.get("precision", "auto"),
                                      device=spec.get("device", "auto"))
            return self._engine

    @property
    def template(self) -> Template:
        return Template(self.engine.tokenizer, self.manifest["generate"].get("system"))

    @property
    def context_length(self) -> int:
        """Most tokens of prompt + generated text the model reads."""
        return self.engine.context

    @property
    def notes(self) -> list[str]:
        return self.manifest.get("training", {}).get("notes", [])

    def __repr__(self) -> str:
        spec = self.manifest["generate"]
        return f"<takeoff.GenerativeModel base={spec.get('base_model')!r} method={spec.get('method')!r}>"

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: str | Sequence[str], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 top_p: float = 1.0, stop: str | Sequence[str] | None = None, seed: int | None = None) -> str | list[str]:
        """Answer each prompt (a user message, formatted with the model's template as in training).

        Args:
            prompts: one prompt, or a list (generated together, in batches).
            max_new_tokens: most tokens per answer.
            temperature: 0 = greedy (the same answer every time); above 0 samples.
            top_p: nucleus sampling's probability mass (with ``temperature`` > 0).
            stop: text(s) that end an answer (not included in it).
            seed: makes sampling repeatable.

        Returns:
            The answer (one prompt) or the answers in order.
        """
        single = isinstance(prompts, str)
        items = [prompts] if single else list(prompts)
        for i, p in enumerate(items):
            if not isinstance(p, str):
                raise DataError(f"prompts[{i}] must be text, got {type(p).__name__}")
        texts = [self.template.prompt([{"role": "user", "content": p}]) for p in items]
        done = [r.result() for r in self._submit(texts, max_new_tokens, temperature, top_p, stop, seed)]
        answers = [c.text.strip() for c in done]
        return answers[0] if single else answers

    def chat(self, messages: Sequence[dict[str, Any]], **options: Any) -> Completion:
        """The assistant's next turn after ``messages`` (``[{"role": "user", "content": ...}]``).
        Options as for :meth:`generate`."""
        return self.stream_chat(messages, **options).result()

    def stream_chat(self, messages: Sequence[dict[str, Any]], *, max_new_tokens: int = 128, temperature: float = 0.0,
                    top_p: float = 1.0, stop: str | Sequence[str] | None = None, seed: int | None = None) -> Request:
        """Start the assistant's next turn; iterate the returned request for text pieces as they
        are generated, then read its ``completion``. ``request.cancel()`` stops it early."""
        text = self.template.prompt(check_messages(messages))
        return self._submit([text], max_new_tokens, temperature, top_p, stop, seed)[0]

    def stream(self, prompt: str, **options: Any) -> Request:
        """:meth:`generate` for one prompt, as a stream of text pieces (see :meth:`stream_chat`)."""
        if not isinstance(prompt, str):
            raise DataError(f"prompt must be text, got {type(prompt).__name__}")
        return self.stream_chat([{"role": "user", "content": prompt}], **options)

    def complete(self, texts: str | Sequence[str], **options: Any) -> list[Request]:
        """Continue raw text (no template): the requests, to iterate or ``result()``."""
        items = [texts] if isinstance(texts, str) else list(texts)
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise DataError(f"prompt[{i}] must be text, got {type(t).__name__}")
        return self._submit(items, options.pop("max_new_tokens", 128), options.pop("temperature", 0.0),
                            options.pop("top_p", 1.0), options.pop("stop", None), options.pop("seed", None))

    def _submit(self, texts: list[str], max_new_tokens: int, temperature: float, top_p: float,
                stop: str | Sequence[str] | None, seed: int | None) -> list[Request]:
        max_new_tokens = _check_number("max_new_tokens", max_new_tokens, 1, MAX_NEW_TOKENS_LIMIT, whole=True)
        temperature = _check_number("temperature", temperature, 0.0, 10.0)
        top_p = _check_number("top_p", top_p, 1e-6, 1.0)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if not all(isinstance(s, str) for s in stops):
            raise DataError(f"stop must be text or a list of texts, got {stop!r}")
        engine = self.engine
        prompts = [self._fit(engine.encode(t), max_new_tokens) for t in texts]
        return [engine.submit(ids, max_new_tokens, temperature, top_p, stops, seed) for ids in prompts]

    def _fit(self, ids: list[int], max_new_tokens: int) -> list[int]:
        """The prompt's ids cut to fit the context with room for the answer (its start dropped),
        or an error when configured to refuse."""
        room = self.context_length - max_new_tokens
        if len(ids) <= room:
            return ids
        if self.manifest["generate"].get("on_long", "truncate") == "refuse" or room < 1:
            raise DataError(f"the prompt has {len(ids)} tokens; with max_new_tokens={max_new_tokens} the model's "
                            f"context of {self.context_length} tokens leaves room for {max(room, 0)}. Fix: shorten the "
                            "prompt or ask for fewer new tokens.")
        return ids[len(ids) - room:]

    # ------------------------------------------------------------------ scoring
    def perplexity(self, prompts: Sequence[str], answers: Sequence[str], batch_size: int = 8) -> float:
        """exp(mean negative log-likelihood per answer token) of ``answers`` after ``prompts``."""
        from takeoff.pipelines.generation.sft import encode_pairs, token_losses

        examples, _ = encode_pairs(self.template, [[{"role": "user", "content": p}] for p in prompts], list(answers),
                                   self.context_length, "truncate")
        return token_losses(self.engine.model, examples, batch_size, self.engine.device)

    # ------------------------------------------------------------------ bundle
    def write_files(self, directory: Path, manifest: dict[str, Any]) -> None:
        """The model folder (weights as safetensors, config, tokenizer) into ``model/``."""
        target = directory / MODEL_DIR
        shutil.copytree(self.folder, target, ignore=lambda _d, names: [n for n in names if n.startswith(".")
                                                                          or n.endswith((".bin", ".pt", ".pth", ".pkl"))])
        manifest["generate"] = {**manifest["generate"], "folder": MODEL_DIR}

    def saved(self, path: Path) -> None:
        self.folder = path / MODEL_DIR

    @classmethod
    def from_bundle(cls, path: Path, manifest: dict[str, Any]) -> GenerativeModel:
        from takeoff.pipelines.generation.base_models import check_model_folder

        folder = path / manifest["generate"].get("folder", MODEL_DIR)
        if not folder.is_dir():
            raise BundleError(str(path), f"has no model folder '{folder.name}'", "train the model again")
        check_model_folder(folder)
        return cls(manifest, folder)


def _check_number(name: str, value: Any, low: float, high: float, whole: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (not whole or float(value).is_integer())
    if not ok or not (low <= value <= high):
        kind = "a whole number" if whole else "a number"
        raise DataError(f"{name} must be {kind} from {low:g} to {high:g}, got {value!r}")
    return int(value) if whole else float(value)
