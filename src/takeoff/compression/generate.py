"""``takeoff compress --quantize int8`` for generate bundles (causal language models).

The compressed bundle is the original with ``generate.precision: "int8"``: its engine turns
every linear layer but the vocabulary projection into weight-only int8 (one scale per output
row) when it loads, and computes the projection as precision "auto" does (int8, with the
candidates for the greedy token recomputed in float32). The weights stay in float32 on disk.

Why not store the int8 weights: the model folder stays a plain Hugging Face folder that any
tool loads, the original is never lost (``precision: "auto"`` or ``"fp32"`` in the manifest
brings it back), and quantizing 135M weights at load takes about a second; the price is that
the bundle is no smaller on disk (a quarter of the decoder weights' bytes would be saved).

Both models are measured in the same run: held-out perplexity on the pairs given (the change is
what matters; quantization fits nothing, so any pairs the model was not trained on serve),
tokens per second at batch 1 (the two taking turns, greedy, :data:`SPEED_TOKENS` new tokens
per prompt) and how many greedy answers stay token for token the original's.
"""

from __future__ import annotations

import copy
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from takeoff.compression.measure import Measurement, bundle_bytes
from takeoff.errors import ConfigError, DataError

log = logging.getLogger("takeoff")

MAX_PAIRS = 200  # pairs scored for perplexity (the first ones)
SPEED_PROMPTS = 3  # prompts timed per round
SPEED_ROUNDS = 3
SPEED_TOKENS = 32
GREEDY_PROMPTS = 8  # prompts whose greedy answers are compared token for token
PERPLEXITY_TOLERANCE = 0.02  # a larger relative increase is warned about


@dataclass
class GenerateCompression:
    """What ``compress`` returns for a generate bundle (the fields of
    :class:`~takeoff.compression.compress.CompressionResult` that callers read)."""

    path: Path
    original: Measurement
    compressed: Measurement
    steps: list[dict[str, Any]] = field(default_factory=list)
    rows: str = ""
    greedy_same: str = ""
    note: str = ("Both models were measured in the same process: perplexity on the same held-out pairs, tokens per "
                 "second at batch 1 on this machine's CPU with the two taking turns (greedy decoding), and the greedy "
                 "answers compared token for token.")

    def ratios(self) -> dict[str, float]:
        """original / compressed: above 1 means smaller or faster."""
        out = {"size": self.original.bytes / max(self.compressed.bytes, 1)}
        before, after = self.original.latency_ms.get("1"), self.compressed.latency_ms.get("1")
        if before and after:
            out["speed_b1_p50"] = before["p50"] / max(after["p50"], 1e-9)
        return out

    def deltas(self) -> dict[str, float]:
        return {k: float(self.compressed.metrics[k] - v) for k, v in self.original.metrics.items()
                if isinstance(v, (int, float)) and isinstance(self.compressed.metrics.get(k), (int, float))}

    def perplexity_change(self) -> float:
        """Relative change of the held-out perplexity (0.01 = 1 % higher)."""
        return self.compressed.metrics["perplexity"] / self.original.metrics["perplexity"] - 1

    def comparison_rows(self) -> list[tuple[str, str, str, str]]:
        """(what, original, compressed, change) rows of the report and the CLI table."""
        o, c = self.original, self.compressed
        speed_o, speed_c = o.metrics["tokens_per_s"], c.metrics["tokens_per_s"]
        return [
            ("size on disk", f"{o.bytes / 1e6:.2f} MB", f"{c.bytes / 1e6:.2f} MB",
             f"{o.bytes / max(c.bytes, 1):.2f}× smaller (int8 made at load)"),
            ("tokens/s, 1 stream", f"{speed_o:.1f}", f"{speed_c:.1f}", f"{speed_c / max(speed_o, 1e-9):.2f}× faster"),
            ("held-out perplexity", f"{o.metrics['perplexity']:.4f}", f"{c.metrics['perplexity']:.4f}",
             f"{self.perplexity_change() * 100:+.2f} %"),
            ("greedy answers unchanged", "—", self.greedy_same, ""),
        ]

    def to_json(self) -> dict[str, Any]:
        return {"bundle": str(self.path), "rows": self.rows, "steps": self.steps, "original": self.original.to_json(),
                "compressed": self.compressed.to_json(), "ratios": self.ratios(), "metric_deltas": self.deltas(),
                "perplexity_change": self.perplexity_change(), "greedy_same": self.greedy_same}


def check_options(*, onnx: bool, quantize: str | None, prune, structured: bool, distill, unlabeled) -> None:
    """Refuse what does not apply to a generate bundle, naming what does."""
    others = [flag for flag, on in (("--onnx", onnx), ("--prune", prune is not None), ("--structured", structured),
                                    ("--distill", distill is not None), ("--unlabeled", unlabeled is not None)) if on]
    if others:
        raise ConfigError(f"{', '.join(others)} apply to table models; a generate bundle compresses with --quantize int8 "
                          "(weight-only int8 linear layers). Fix: drop " + ", ".join(others) + ".")
    if quantize is None:
        raise ConfigError("nothing to do: a generate bundle compresses with --quantize int8 (weight-only int8 linear "
                          "layers, perplexity and tokens/s measured before and after)")
    if quantize != "int8":
        raise ConfigError(f"--quantize {quantize!r} is not supported; choose: int8")


def compress_generate(model, out: Path, *, data=None, eval_data=None, table=None, sql=None, encoding=None,
                      onnx: bool = False, quantize: str | None = None, prune=None, structured: bool = False,
                      distill=None, unlabeled=None) -> GenerateCompression:
    """Write the int8 version of the generate bundle ``model`` to ``out`` and measure both.

    Args:
        model: a loaded :class:`~takeoff.pipelines.generation.model.GenerativeModel` (saved).
        data, eval_data: held-out pairs (a path or DataFrame with the bundle's prompt and answer
            columns, or chat JSON lines); ``eval_data`` wins when both are given.

    Raises:
        ConfigError: an option that does not apply, or no pairs to measure on.
        DataError: the pairs lack the bundle's columns or hold no usable pair.
    """
    from takeoff.pipelines.generation.data import read_pairs
    from takeoff.pipelines.run_dir import read_data

    check_options(onnx=onnx, quantize=quantize, prune=prune, structured=structured, distill=distill,
                  unlabeled=unlabeled)
    source = eval_data if eval_data is not None else data
    spec = model.manifest["generate"]
    if source is None:
        raise ConfigError("compressing a generate bundle measures the held-out perplexity before and after: pass pairs "
                          f"the model was not trained on with --eval (columns '{spec.get('prompt') or 'prompt'}' and "
                          f"'{model.manifest['task'].get('target') or 'answer'}', or chat JSON lines)")
    if model.path is None:
        raise ConfigError("compress reads a saved bundle: save the model first (model.save(path))")
    df, name = read_data(source, table, sql, encoding)
    pairs = read_pairs(df, name, spec.get("prompt"), model.manifest["task"].get("target"))
    if len(pairs) > MAX_PAIRS:
        pairs = pairs.take(range(MAX_PAIRS))
    rows = f"{name}: {len(pairs)} pairs" + (f" (the first {MAX_PAIRS})" if len(df) > MAX_PAIRS else "")

    from takeoff.pipelines.generation.model import GenerativeModel

    started = time.monotonic()
    manifest = copy.deepcopy(model.manifest)
    manifest["generate"] = {**manifest["generate"], "precision": "int8"}
    quantized = GenerativeModel(manifest, model.folder)
    if quantized.engine.precision != "int8":
        raise ConfigError(f"int8 generation needs torch's CPU int8 kernels on the CPU; this engine runs on "
                          f"{quantized.engine.device} in {quantized.engine.precision}. Fix: compress on a CPU with "
                          "torch 2.4 or later.")
    load_s = time.monotonic() - started
    perplexity = [_perplexity(m, pairs) for m in (model, quantized)]
    speeds = _speeds([model, quantized], [c for c in pairs.conversations[:SPEED_PROMPTS]])
    same = _greedy_same(model, quantized, pairs.conversations[:GREEDY_PROMPTS])
    measures = []
    for label, m, ppl, speed in zip(("original", "compressed"), (model, quantized), perplexity, speeds):
        ms = 1000 / max(speed, 1e-9)
        measures.append(Measurement(label, bundle_bytes(model.path), {"1": {"p50": ms, "p99": ms, "repeats": SPEED_ROUNDS}},
                                    {"perplexity": round(ppl, 4), "tokens_per_s": round(speed, 2),
                                     "precision": m.engine.precision}))
    step = {"step": "quantize", "kind": "int8", "method": "weight-only int8, one scale per output row, made at load",
            "layers": quantized.engine.precision, "load_seconds": round(load_s, 2),
            "seconds": round(time.monotonic() - started, 2)}
    result = GenerateCompression(Path(out), measures[0], measures[1], [step], rows, f"{same}/{min(len(pairs), GREEDY_PROMPTS)}")
    if result.perplexity_change() > PERPLEXITY_TOLERANCE:
        log.warning("int8 raised the held-out perplexity by %.1f %% (more than %.0f %%); the original bundle, whose "
                    "precision 'auto' keeps float32's greedy answers, may serve better",
                    result.perplexity_change() * 100, PERPLEXITY_TOLERANCE * 100)
    _write(model, quantized, result)
    return result


def _perplexity(model, pairs) -> float:
    from takeoff.pipelines.generation.sft import encode_pairs, token_losses

    examples, _ = encode_pairs(model.template, pairs.conversations, pairs.answers, model.context_length, "truncate")
    if not examples:
        raise DataError("none of the pairs could be scored (each needs an answer token within the context)")
    return token_losses(model.engine.model, examples, 8, model.engine.device)


def _speeds(models: list, conversations: list) -> list[float]:
    """Median tokens/s at batch 1 of each model, taking turns prompt by prompt."""
    ids = [_prompt_ids(models[0], c) for c in conversations]
    for m in models:
        m.engine.submit(ids[0], 2).result()  # warm-up
    speeds: list[list[float]] = [[] for _ in models]
    for _ in range(SPEED_ROUNDS):
        for m, found in zip(models, speeds):
            tokens = 0
            start = time.perf_counter()
            for x in ids:
                tokens += m.engine.submit(x, SPEED_TOKENS).result().completion_tokens
            found.append(tokens / (time.perf_counter() - start))
    return [statistics.median(s) for s in speeds]


def _greedy_same(original, quantized, conversations: list) -> int:
    same = 0
    for conversation in conversations:
        ids = _prompt_ids(original, conversation)
        a = original.engine.submit(ids, SPEED_TOKENS)
        b = quantized.engine.submit(ids, SPEED_TOKENS)
        a.result(), b.result()
        same += a.tokens == b.tokens
    return same


def _prompt_ids(model, conversation) -> list[int]:
    """The prompt's token ids, its start cut to leave room for the new tokens."""
    return model.engine.encode(model.template.prompt(conversation))[-(model.context_length - SPEED_TOKENS):]


def _write(model, quantized, result: GenerateCompression) -> None:
    """The original's files with the int8 manifest, the comparison and its report (atomically)."""
    from takeoff import bundle
    from takeoff.compression.report import write_compression_report

    quantized.manifest["compression"] = {"steps": result.steps, "ratios": result.ratios(),
                                         "metric_deltas": result.deltas(), "rows": result.rows,
                                         "perplexity_change": result.perplexity_change(),
                                         "greedy_same": result.greedy_same, "original_bundle": str(model.path)}
    with tempfile.TemporaryDirectory(prefix="takeoff-compress-") as scratch:
        scratch = Path(scratch)
        document = {**result.to_json(), "original_bundle": str(model.path)}
        bundle.write_json(scratch / "compression.json", document)
        write_compression_report(scratch / "compression.html", result)
        for name, path in model.attachments.items():
            quantized.attach(name, path)
        quantized.attach("compression.json", scratch / "compression.json")
        quantized.attach("compression.html", scratch / "compression.html")
        quantized.save(result.path)
