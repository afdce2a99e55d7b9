"""The engine that runs a causal language model: batched decoding with a KV cache, streaming,
stop strings, cancellation, and the fastest precision that gives the same greedy tokens.

Requests are queued; one worker thread takes the first waiting request and every other
waiting one that decodes alike (same temperature, top_p and seed), up to ``max_batch``, and
runs them as one left-padded batch through ``transformers``' ``generate`` (its KV cache, SDPA
attention). So concurrent streams share each forward pass: on the CPU a batch of 8 costs far
less than 8 single passes. Each row is followed on its own: its tokens are decoded as they
come and handed to its :class:`Request`'s queue; it ends at the model's end token, a stop
string, its own ``max_new_tokens``, or when its reader cancels it (a client that went away):
the batch stops computing a row once it has ended and stops altogether once every row has.

Precision (see :mod:`takeoff.pipelines.generation.quantized` for the CPU kernels):

* ``"auto"`` (default): the fastest form that gives float32's greedy tokens on a probe prompt,
  checked once when the engine loads (else float32). On a CPU: weights that lie on a 4-bit grid
  (a model converted from a Q4 GGUF file) packed into 4 bits, and the vocabulary projection in
  int8 with the candidates for the largest logit recomputed in float32 (so its argmax is
  float32's); the engine's ``precision`` then reads "int4" (grid weights packed) or "fp32". bf16
  is not tried on a CPU: one token at a time, its matrix products ran no faster than float32's
  even with AMX (docs/generate.md). On a GPU with native bf16: bf16.
* ``"fp32"``: float32 throughout (the reference).
* ``"bf16"``: every weight in bf16 (no check).
* ``"int8"``: weight-only int8 for every linear layer (one scale per output row, lossy: the
  greedy tokens may differ from float32's; ``takeoff compress --quantize int8`` measures the
  perplexity change), the vocabulary projection as in "auto". CPU only; elsewhere float32.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("takeoff")

PROBE_PROMPT = "The three most useful things to know about computers are"
PROBE_TOKENS = 12
PRECISIONS = ("auto", "fp32", "bf16", "int8")
BATCH_WINDOW_S = 0.004  # how long the worker waits for more requests to join a batch
_DONE = object()


@dataclass
class Completion:
    """One finished generation.

    Attributes:
        text: the generated text (without the prompt, cut before a stop string).
        prompt_tokens, completion_tokens: token counts (for usage reporting).
        finish_reason: "stop" (end token or stop string), "length" (max_new_tokens reached)
            or "cancelled".
        seconds: wall time from submission to the last token; ``first_token_s``: to the first.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float = 0.0
    first_token_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "finish_reason": self.finish_reason, "seconds": round(self.seconds, 4),
                "first_token_s": None if self.first_token_s is None else round(self.first_token_s, 4)}


@dataclass(eq=False)
class Request:
    """One generation in flight: iterate it for text pieces; :attr:`completion` once it ended."""

    ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    submitted: float = field(default_factory=time.monotonic)
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    finish_reason: str | None = None
    first_token: float | None = None
    completion: Completion | None = None
    error: BaseException | None = None
    _queue: queue.Queue = field(default_factory=queue.Queue)
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _ended: bool = False  # the end marker was read

    @property
    def key(self) -> tuple:
        return (round(self.temperature, 6), round(self.top_p, 6), self.seed)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def cancel(self) -> None:
        """Stop generating for this request (its reader went away); safe from any thread."""
        self._cancelled.set()

    close = cancel

    def __iter__(self) -> Iterator[str]:
        """The text pieces not read yet (a request read to its end yields nothing more)."""
        while not self._ended:
            piece = self._queue.get()
            if piece is _DONE:
                self._ended = True
                break
            yield piece
        if self.error is not None:
            raise self.error

    def result(self) -> Completion:
        """Wait for the end and return the :class:`Completion`."""
        for _ in self:
            pass
        assert self.completion is not None
        return self.completion


class Engine:
    """A loaded causal LM and its tokenizer, decoding queued requests in batches.

    Args:
        folder: a Hugging Face model folder (config.json, safetensors, tokenizer).
        precision: "auto", "fp32", "bf16" or "int8" (see the module doc); the one in use is
            :attr:`precision` ("int4" where "auto" packed 4-bit grid weights).
        device: "auto", "cpu" or "cuda[:N]".
        max_batch: most requests decoded together.
    """

    def __init__(self, folder: str | Path, precision: str = "auto", device: str = "auto", max_batch: int = 8):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from takeoff.training.device import native_bf16, resolve_device

        precision = check_precision(precision)
        quiet_transformers()
        self.folder = Path(folder)
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder))
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(str(self.folder), dtype=torch.float32, use_safetensors=True)
        self.model.to(self.device).eval()
        self.max_batch = max(1, int(max_batch))
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0) or 2048)
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos:
            eos.append(self.tokenizer.eos_token_id)
        self.eos_ids = set(eos)
        self.precision = "fp32"
        self._choose_precision(precision, native_bf16(self.device))
        self._queue: queue.Queue[Request] = queue.Queue()
        self._waiting: list[Request] = []
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    # ------------------------------------------------------------------ setup
    def _choose_precision(self, precision: str, native_bf16: bool) -> None:
        from takeoff.pipelines.generation import quantized

        cpu_kernels = self.device.type == "cpu" and quantized.kernels_available()
        if precision == "bf16" or (precision == "auto" and native_bf16 and self.device.type != "cpu"):
            self._choose_bf16(forced=precision == "bf16")
        elif precision == "int8" and not cpu_kernels:
            log.warning("int8 generation needs the CPU int8 kernels of torch 2.4 or later on the CPU; device %s: "
                        "generating in float32", self.device)
        elif precision == "int8":
            quantized.quantize_int8(self.model)
            quantized.exact_argmax_head(self.model)
            self.precision = "int8"
        elif precision == "auto" and cpu_kernels:
            self._choose_cpu_fast()

    def _choose_cpu_fast(self) -> None:
        """4-bit grid weights packed and the exact-argmax head, kept if the probe's greedy tokens
        stay float32's (they are the same weights, but the kernels read bf16 activations)."""
        from takeoff.pipelines.generation import quantized

        reference = self._probe()
        originals = dict(self.model.named_modules())
        packed = linears = 0
        head = False
        try:
            packed, linears = quantized.pack_4bit_grids(self.model)
            head = quantized.exact_argmax_head(self.model)
            if not (packed or head):
                return
            same = self._probe() == reference
            if not same:
                log.info("the packed 4-bit weights changed the greedy tokens on the probe prompt: generating in float32")
        except Exception as error:  # noqa: BLE001 (a kernel this CPU lacks raises many types)
            log.warning("the packed 4-bit and int8 kernels failed here (%s): generating in float32", error)
            same = False
        if same:
            self.precision = "int4" if packed else "fp32"
            parts = [f"{packed} of {linears} linear layers packed into 4 bits (their weights lie on a 4-bit grid)"
                     ] if packed else []
            parts += ["the vocabulary projection in int8 with float32's argmax"] if head else []
            log.info("generating with %s", " and ".join(parts))
            return
        for name, module in list(self.model.named_modules()):  # put the float32 modules back
            for child_name, child in list(module.named_children()):
                original = originals.get(f"{name}.{child_name}" if name else child_name)
                if original is not None and original is not child:
                    setattr(module, child_name, original)

    def _choose_bf16(self, forced: bool) -> None:
        import torch

        if forced:
            self.model.to(torch.bfloat16)
            self.precision = "bf16"
            return
        try:
            reference = self._probe()
            self.model.to(torch.bfloat16)
            if self._probe() == reference:
                self.precision = "bf16"
                return
            log.info("bf16 changed the greedy tokens on the probe prompt: generating in float32")
        except Exception as error:  # noqa: BLE001 (a device without bf16 kernels raises many types)
            log.warning("bf16 generation failed (%s): generating in float32", error)
        self.model.to(torch.float32)

    def _probe(self) -> list[int]:
        import torch

        from takeoff.pipelines.generation.quantized import decoding

        ids = self.tokenizer(PROBE_PROMPT, return_tensors="pt").to(self.device)
        with torch.inference_mode(), decoding(self.model):
            out = self.model.generate(**ids, max_new_tokens=PROBE_TOKENS, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        return out[0, ids["input_ids"].shape[1]:].tolist()

    # ------------------------------------------------------------------ API
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model reads it (special tokens the text spells are kept)."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def submit(self, ids: Sequence[int], max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
               stop: Sequence[str] = (), seed: int | None = None) -> Request:
        """Queue one generation; iterate the returned :class:`Request` for its text pieces."""
        request = Request(list(ids), int(max_new_tokens), float(temperature), float(top_p),
                          tuple(s for s in stop if s), seed)
        self._queue.put(request)
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="takeoff-generate", daemon=True)
                self._worker.start()
        return request

    def generate_many(self, prompts: Sequence[Sequence[int]], **kwargs) -> list[Completion]:
        """Generate for several prompts (token ids) at once; their completions, in order."""
        requests = [self.submit(ids, **kwargs) for ids in prompts]
        return [r.result() for r in requests]

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while True:
            try:
                first = self._waiting.pop(0) if self._waiting else self._queue.get(timeout=30)
            except queue.Empty:
                with self._lock:  # idle: end the thread; the next submit starts another
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            batch = [first]
            deadline = time.monotonic() + BATCH_WINDOW_S
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                (batch if nxt.key == first.key else self._waiting).append(nxt)
            batch = [r for r in batch if not self._skip_cancelled(r)]
            if batch:
                try:
                    self._decode(batch)
                except BaseException as error:  # noqa: BLE001 (handed to every reader)
                    log.exception("generation failed")
                    for request in batch:
                        if not request.done:
                            request.error = error
                            self._finish(request, "error")

    def _skip_cancelled(self, request: Request) -> bool:
        if request._cancelled.is_set():
            self._finish(request, "cancelled")
            return True
        return False

    def _decode(self, batch: list[Request]) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        from takeoff.pipelines.generation.quantized import decoding

        pad = self.tokenizer.pad_token_id
        longest = max(len(r.ids) for r in batch)
        ids = torch.full((len(batch), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for i, r in enumerate(batch):
            ids[i, longest - len(r.ids):] = torch.tensor(r.ids, dtype=torch.long)
            mask[i, longest - len(r.ids):] = 1
        engine = self

        class Rows(BaseStreamer):
            def __init__(self):
                self.prompt_seen = False

            def put(self, value):
                if not self.prompt_seen:  # the first call hands over the prompt
                    self.prompt_seen = True
                    return
                for request, token in zip(batch, value.view(-1).tolist()):
                    if not request.done:
                        engine._take(request, int(token))

            def end(self):
                pass

        class RowsDone(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                for request in batch:
                    if not request.done and request._cancelled.is_set():
                        engine._finish(request, "cancelled")
                return torch.tensor([r.done for r in batch], dtype=torch.bool, device=input_ids.device)

        first = batch[0]
        sampling = first.temperature > 0
        options: dict[str, Any] = {"do_sample": sampling}
        if sampling:
            options.update(temperature=first.temperature, top_p=first.top_p, top_k=0)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        if first.seed is not None:
            torch.manual_seed(first.seed)
        with torch.inference_mode(), decoding(self.model):
            self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                max_new_tokens=max(r.max_new_tokens for r in batch), pad_token_id=pad,
                                eos_token_id=sorted(self.eos_ids) or None, streamer=Rows(),
                                stopping_criteria=StoppingCriteriaList([RowsDone()]), **options)
        for request in batch:
            if not request.done:
                self._finish(request, "length")

    def _take(self, request: Request, token: int) -> None:
        """One new token of a row: decode it, cut at a stop string, hand the new text over."""
        if request.first_token is None:
            request.first_token = time.monotonic()
        if token in self.eos_ids:
            self._finish(request, "stop")
            return
        request.tokens.append(token)
        text = self.tokenizer.decode(request.tokens, skip_special_tokens=True)
        finish = None
        for stop in request.stop:
            at = text.find(stop, max(0, request.emitted - len(stop)))
            if at >= 0:
                text, finish = text[:at], "stop"
        if finish is None and len(request.tokens) >= request.max_new_tokens:
            finish = "length"
        hold = 0 if finish else _held_back(text, request.stop)
        if text.endswith("\ufffd") and not finish:  # a character split across tokens: wait for the rest
            hold = max(hold, 1)
        ready = len(text) - hold
        if ready > request.emitted:
            request._queue.put(text[request.emitted:ready])
            request.emitted = ready
        request.text = text
        if finish:
            self._finish(request, finish)

    def _finish(self, request: Request, reason: str) -> None:
        if request.done:
            return
        if reason != "error" and len(request.text) > request.emitted and reason != "cancelled":
            request._queue.put(request.text[request.emitted:])
            request.emitted = len(request.text)
        request.finish_reason = reason
        now = time.monotonic()
        request.completion = Completion(
            request.text, len(request.ids), len(request.tokens), reason, now - request.submitted,
            None if request.first_token is None else request.first_token - request.submitted)
        request._queue.put(_DONE)


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ConfigError naming them."""
    from takeoff.errors import ConfigError, closest

    if precision in PRECISIONS:
        return precision
    guess = closest(str(precision), PRECISIONS)
    hint = f" Did you mean '{guess}'?" if guess else ""
    raise ConfigError(f"generate.precision {precision!r} is not one of: {', '.join(PRECISIONS)}.{hint} Fix: use 'auto' "
                      "(the fastest form with float32's greedy tokens) or name one.", path="generate.precision")


def quiet_transformers() -> None:
    """No per-shard progress bars from transformers (takeoff draws its own)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Characters at the end of ``text`` that could be the start of a stop string (not shown yet)."""
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                hold = max(hold, n)
                break
    return hold
