"""Generation speed: takeoff's engine against plain ``transformers.generate`` and llama.cpp on the
same model, in the same run.

Measured, for a support-style chat prompt and ``--tokens`` new tokens (greedy):

* one stream: tokens/s and time to first token, for takeoff (the precision it chooses), plain
  ``transformers`` ``generate`` in float32 (what a user gets from the model card), and llama.cpp
  (``llama-cpp-python``, a benchmark-only dependency) on the GGUF file the model came from;
* whether takeoff's greedy tokens equal plain transformers' float32 tokens;
* ``--streams`` concurrent streams through takeoff's engine (batched decoding): their aggregate
  tokens/s against one stream's.

Usage (llama.cpp is optional: without ``llama_cpp`` importable its rows say so)::

    python benchmarks/generate.py --model smollm2 --tokens 64 --streams 8
    python benchmarks/generate.py --model gemma3-270m --accept-terms

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
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per engine (the median is reported)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precision", default="auto", help="takeoff's precision: auto, fp32 or bf16")
    parser.add_argument("--accept-terms", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from takeoff.pipelines.generation.base_models import PACKAGED, packaged_gguf, resolve_base

    folder = resolve_base(args.model, accept_terms=args.accept_terms)
    gguf = Path(args.model) if args.model.endswith(".gguf") else (
        packaged_gguf(PACKAGED[args.model]) if args.model in PACKAGED else None)
    results = {"model": args.model, "tokens": args.tokens, "threads": args.threads, "machine": machine(),
               "torch": torch.__version__}

    prompt = PROMPTS[0]
    hf = plain_transformers(folder, prompt, args.tokens, args.repeats)
    results["transformers_fp32"] = hf
    ours = takeoff_engine(folder, prompt, args.tokens, args.repeats, args.precision, args.streams)
    results["takeoff"] = ours
    results["takeoff"]["same_greedy_tokens_as_fp32"] = ours.pop("tokens_list") == hf.pop("tokens_list")
    results["llama_cpp"] = llama_cpp(gguf, folder, prompt, args.tokens, args.repeats, args.threads) if gguf else {
        "skipped": "no GGUF file for this model"}
    report(results)
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


def plain_transformers(folder: Path, prompt: str, tokens: int, repeats: int) -> dict:
    """``AutoModelForCausalLM.generate`` as the model card shows it: float32, greedy."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    ids = torch.tensor([chat_ids(tokenizer, prompt)])
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, do_sample=False)  # warm-up
        speeds, generated = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, do_sample=False)
            seconds = time.perf_counter() - start
            generated = out[0, ids.shape[1]:].tolist()
            speeds.append(len(generated) / seconds)
        start = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, do_sample=False)
        first = time.perf_counter() - start
    eos = model.generation_config.eos_token_id
    eos = {eos} if isinstance(eos, int) else set(eos or [])
    cut = next((i for i, t in enumerate(generated) if t in eos), len(generated))
    return {"tokens_per_s": statistics.median(speeds), "first_token_s": first, "tokens_list": generated[:cut]}


def takeoff_engine(folder: Path, prompt: str, tokens: int, repeats: int, precision: str, streams: int) -> dict:
    from takeoff.pipelines.generation.engine import Engine

    started = time.perf_counter()
    engine = Engine(folder, precision=precision)
    load_s = time.perf_counter() - started
    ids = chat_ids(engine.tokenizer, prompt)
    engine.submit(ids, 4).result()  # warm-up
    speeds, firsts, completion = [], [], None
    for _ in range(repeats):
        request = engine.submit(ids, tokens)
        start = time.perf_counter()
        completion = request.result()
        seconds = time.perf_counter() - start
        speeds.append(completion.completion_tokens / seconds)
        firsts.append(completion.first_token_s)
    one = statistics.median(speeds)
    # concurrent streams: each its own prompt, submitted from its own thread at once
    prompts = [chat_ids(engine.tokenizer, PROMPTS[i % len(PROMPTS)]) for i in range(streams)]
    done: list = [None] * streams

    def client(i: int) -> None:
        done[i] = engine.submit(prompts[i], tokens).result()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    total = sum(c.completion_tokens for c in done)
    return {"precision": engine.precision, "load_s": load_s, "tokens_per_s": one,
            "first_token_s": statistics.median(firsts), "streams": streams, "streams_tokens_per_s": total / seconds,
            "streams_ratio": (total / seconds) / one, "streams_first_token_s": statistics.median(c.first_token_s for c in done),
            "tokens_list": request.tokens}


def llama_cpp(gguf: Path, folder: Path, prompt: str, tokens: int, repeats: int, threads: int) -> dict:
    try:
        from llama_cpp import Llama
    except ImportError:
        return {"skipped": "llama-cpp-python is not installed here (pip install llama-cpp-python, a benchmark-only dependency)"}
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    ids = chat_ids(tokenizer, prompt)  # the same prompt tokens as the other engines
    llm = Llama(model_path=str(gguf), n_ctx=1024, n_threads=threads, n_batch=256, verbose=False)
    llm.create_completion(ids, max_tokens=4, temperature=0.0)  # warm-up
    speeds = []
    for _ in range(repeats):
        llm.reset()
        start = time.perf_counter()
        out = llm.create_completion(ids, max_tokens=tokens, temperature=0.0, top_k=1)
        seconds = time.perf_counter() - start
        speeds.append(out["usage"]["completion_tokens"] / seconds)
    llm.reset()
    start = time.perf_counter()
    for _ in llm.create_completion(ids, max_tokens=tokens, temperature=0.0, top_k=1, stream=True):
        first = time.perf_counter() - start
        break
    return {"tokens_per_s": statistics.median(speeds), "first_token_s": first, "file": gguf.name}


def report(r: dict) -> None:
    lcpp, hf, ours = r["llama_cpp"], r["transformers_fp32"], r["takeoff"]
    print(f"\n## Generation speed — {r['model']}, {r['tokens']} new tokens, greedy, {r['threads']} threads "
          f"({r['machine']}, torch {r['torch']})\n")
    print("| engine | tokens/s (1 stream) | time to first token | vs transformers | vs llama.cpp |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base = hf["tokens_per_s"]
    ref = lcpp.get("tokens_per_s")
    rows = [("transformers generate (fp32)", hf), (f"takeoff ({ours['precision']})", ours)]
    if ref:
        rows.append((f"llama.cpp ({lcpp['file']})", lcpp))
    for name, row in rows:
        vs = f"{row['tokens_per_s'] / ref:.2f}x" if ref else "—"
        print(f"| {name} | {row['tokens_per_s']:.1f} | {row['first_token_s'] * 1000:.0f} ms | "
              f"{row['tokens_per_s'] / base:.2f}x | {vs} |")
    if not ref:
        print(f"\nllama.cpp: {lcpp.get('skipped')}")
    print(f"\ntakeoff greedy tokens equal transformers fp32: {ours['same_greedy_tokens_as_fp32']}")
    print(f"{ours['streams']} concurrent streams through takeoff: {ours['streams_tokens_per_s']:.1f} tokens/s in all "
          f"= {ours['streams_ratio']:.2f}x one stream (median time to first token {ours['streams_first_token_s'] * 1000:.0f} ms)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
