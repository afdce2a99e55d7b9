"""Generation speed: takeoff's engine against plain ``transformers.generate`` and llama.cpp on the
same model, in the same run.

Measured, for a support-style chat prompt and ``--tokens`` new tokens (greedy):

* one stream: tokens/s and time to first token, for takeoff at each ``--precision`` (``auto``
  is what it chooses), plain ``transformers`` ``generate`` in float32 (what a user gets from the
  model card), and llama.cpp (``llama-cpp-python``, a benchmark-only dependency) on the GGUF
  file the model came from;
* whether takeoff's greedy tokens equal plain transformers' float32 tokens: on the timed prompt,
  and on each of the 8 support prompts;
* ``--streams`` concurrent streams through takeoff's engine (batched decoding): their aggregate
  tokens/s against one stream's.

The engines take turns: each of ``--repeats`` rounds times every engine once, so a machine
that slows down (other work on it) slows all of them alike; the ratios are the medians of the
per-round ratios.

Usage (llama.cpp is optional: without ``llama_cpp`` importable its row says so)::

    python benchmarks/generate.py --model smollm2 --tokens 64 --streams 8
    python benchmarks/generate.py --model gemma3-270m --accept-terms --precision auto,fp32

Threads: every engine gets the same ``--threads`` (default: all cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

PROMPTS = [
    "How do I install a .deb package that I downloaded from a website?",
    "My laptop's wifi stopped working after an update. What should I check first?",
    "What is the difference between stable and testing releases?",
    "Can I upgrade my system without reinstalling everything?",
    "How do I find which package a file belongs to?",
    "Where are the log files kept on a Linux system?",
    "How do I add a new user account from the command line?",
    "What does it mean when a package is held back during an upgrade?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2", help="base model name, folder or .gguf (default smollm2)")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each times every engine once (medians reported)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precision", default="auto,fp32,int8",
                        help="takeoff's precisions, comma-separated: auto, fp32, bf16, int8 (default auto,fp32,int8)")
    parser.add_argument("--accept-terms", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from takeoff.pipelines.generation.base_models import PACKAGED, packaged_gguf, resolve_base

    folder = resolve_base(args.model, accept_terms=args.accept_terms)
    gguf = Path(args.model) if args.model.endswith(".gguf") else (
        packaged_gguf(PACKAGED[args.model]) if args.model in PACKAGED else None)
    results = {"model": args.model, "tokens": args.tokens, "threads": args.threads, "repeats": args.repeats,
               "machine": machine(), "torch": torch.__version__}

    hf = PlainTransformers(folder)
    engines = {"transformers_fp32": hf}
    for precision in [p.strip() for p in args.precision.split(",") if p.strip()]:
        engines[f"takeoff_{precision}"] = Takeoff(folder, precision)
    lcpp = LlamaCpp.open(gguf, args.threads) if gguf else "no GGUF file for this model"
    if isinstance(lcpp, LlamaCpp):
        engines["llama_cpp"] = lcpp
    else:
        results["llama_cpp"] = {"skipped": lcpp}

    ids = hf.chat_ids(PROMPTS[0])
    for engine in engines.values():
        engine.generate(ids, 4)  # warm-up
    speeds: dict[str, list[float]] = {name: [] for name in engines}
    firsts: dict[str, list[float]] = {name: [] for name in engines}
    tokens: dict[str, list[int]] = {}
    streams = {name: [] for name in engines if name.startswith("takeoff_")}
    for _ in range(args.repeats):
        for name, engine in engines.items():
            start = time.perf_counter()
            tokens[name] = engine.generate(ids, args.tokens)
            speeds[name].append(len(tokens[name]) / (time.perf_counter() - start))
            start = time.perf_counter()
            engine.generate(ids, 1)
            firsts[name].append(time.perf_counter() - start)
            if name in streams:
                streams[name].append(engine.streams([hf.chat_ids(PROMPTS[i % len(PROMPTS)]) for i in range(args.streams)],
                                                    args.tokens))
    for name, engine in engines.items():
        row = {"tokens_per_s": statistics.median(speeds[name]), "first_token_s": statistics.median(firsts[name]),
               "per_round_tokens_per_s": [round(v, 2) for v in speeds[name]], **engine.facts()}
        if "llama_cpp" in engines:
            row["vs_llama_cpp"] = statistics.median(a / b for a, b in zip(speeds[name], speeds["llama_cpp"]))
        row["vs_transformers"] = statistics.median(a / b for a, b in zip(speeds[name], speeds["transformers_fp32"]))
        if name in streams:
            row["same_greedy_tokens_as_fp32"] = tokens[name] == tokens["transformers_fp32"]
            row["streams"] = args.streams
            row["streams_tokens_per_s"] = statistics.median(s for s, _ in streams[name])
            row["streams_first_token_s"] = statistics.median(f for _, f in streams[name])
            row["streams_ratio"] = statistics.median(s / one for (s, _), one in zip(streams[name], speeds[name]))
        results[name] = row
    # greedy agreement with float32 over every support prompt (untimed)
    reference = [hf.generate(hf.chat_ids(p), args.tokens) for p in PROMPTS]
    for name, engine in engines.items():
        if name.startswith("takeoff_"):
            same = [engine.generate(hf.chat_ids(p), args.tokens) == ref for p, ref in zip(PROMPTS, reference)]
            results[name]["same_greedy_prompts"] = f"{sum(same)}/{len(same)}"
    report(results, list(engines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def chat_ids(tokenizer, prompt: str) -> list[int]:
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             tokenize=False)
    else:
        text = f"### User:\n{prompt}\n\n### Assistant:\n"
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class PlainTransformers:
    """``AutoModelForCausalLM.generate`` as the model card shows it: float32, greedy."""

    def __init__(self, folder: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos = {eos} if isinstance(eos, int) else set(eos or [])

    def chat_ids(self, prompt: str) -> list[int]:
        return chat_ids(self.tokenizer, prompt)

    def generate(self, ids: list[int], tokens: int) -> list[int]:
        import torch

        x = torch.tensor([ids])
        with torch.inference_mode():
            out = self.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        generated = out[0, x.shape[1]:].tolist()
        return generated[:next((i for i, t in enumerate(generated) if t in self.eos), len(generated))]

    def facts(self) -> dict:
        return {"engine": "transformers generate (fp32)"}


class Takeoff:
    """takeoff's engine at one precision."""

    def __init__(self, folder: Path, precision: str):
        from takeoff.pipelines.generation.engine import Engine

        started = time.perf_counter()
        self.engine = Engine(folder, precision=precision)
        self.load_s = time.perf_counter() - started
        self.asked = precision

    def generate(self, ids: list[int], tokens: int) -> list[int]:
        request = self.engine.submit(ids, tokens)
        request.result()
        return request.tokens

    def streams(self, prompts: list[list[int]], tokens: int) -> tuple[float, float]:
        """Aggregate tokens/s and median time to first token of ``prompts`` submitted at once,
        each from its own thread."""
        done: list = [None] * len(prompts)

        def client(i: int) -> None:
            done[i] = self.engine.submit(prompts[i], tokens).result()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(prompts))]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
        return sum(c.completion_tokens for c in done) / seconds, statistics.median(c.first_token_s for c in done)

    def facts(self) -> dict:
        return {"engine": f"takeoff ({self.asked} → {self.engine.precision})", "precision": self.engine.precision,
                "load_s": round(self.load_s, 2)}


class LlamaCpp:
    """llama.cpp through ``llama-cpp-python`` on the GGUF file, fed the same prompt tokens."""

    def __init__(self, llm, gguf: Path):
        self.llm, self.file = llm, gguf.name

    @classmethod
    def open(cls, gguf: Path, threads: int):
        try:
            from llama_cpp import Llama
        except ImportError:
            return "llama-cpp-python is not installed here (pip install llama-cpp-python, a benchmark-only dependency)"
        return cls(Llama(model_path=str(gguf), n_ctx=1024, n_threads=threads, n_batch=256, verbose=False), gguf)

    def generate(self, ids: list[int], tokens: int) -> list[int]:
        self.llm.reset()
        out = self.llm.create_completion(ids, max_tokens=tokens, temperature=0.0, top_k=1)
        return [0] * out["usage"]["completion_tokens"]  # counted, not compared (another tokenizer's text)

    def facts(self) -> dict:
        return {"engine": f"llama.cpp ({self.file})"}


def report(r: dict, names: list[str]) -> None:
    print(f"\n## Generation speed — {r['model']}, {r['tokens']} new tokens, greedy, {r['threads']} threads, "
          f"{r['repeats']} rounds ({r['machine']}, torch {r['torch']})\n")
    lcpp = "llama_cpp" in names
    print("| engine | tokens/s (1 stream) | time to first token | vs transformers | vs llama.cpp | greedy = fp32 "
          "(timed prompt; 8 prompts) | streams: tokens/s in all (x one stream) |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for name in names:
        row = r[name]
        vs = f"{row['vs_llama_cpp']:.2f}x" if lcpp else "—"
        same = (f"{'yes' if row['same_greedy_tokens_as_fp32'] else 'no'}; {row['same_greedy_prompts']}"
                if "same_greedy_prompts" in row else "—")
        streams = (f"{row['streams_tokens_per_s']:.1f} ({row['streams_ratio']:.2f}x, {row['streams']} streams)"
                   if "streams_ratio" in row else "—")
        print(f"| {row['engine']} | {row['tokens_per_s']:.1f} | {row['first_token_s'] * 1000:.0f} ms | "
              f"{row['vs_transformers']:.2f}x | {vs} | {same} | {streams} |")
    if not lcpp:
        print(f"\nllama.cpp: {r['llama_cpp'].get('skipped')}")
    loads = ", ".join(f"{r[n]['precision']} {r[n]['load_s']:.1f} s" for n in names if "load_s" in r[n])
    print(f"\ntakeoff load time (with the precision probe): {loads}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
