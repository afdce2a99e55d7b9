"""`takeoff generate`: answers of a generative bundle, streamed as they are written; an answer
bundle's grounded answers with their sources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from takeoff.cli.output import emit_json, fail, out, run, stdout_to_stderr


def generate(
    bundle: Annotated[Path, typer.Argument(help="Generative bundle directory (from `takeoff train --task generate`).")],
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="A prompt (repeat for several, generated together). Default: one prompt per line of standard input.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Most tokens per answer.")] = 256,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="0 = greedy (the same answer every time); above 0 samples.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0, help="Nucleus sampling's probability mass (with --temperature above 0).")] = 1.0,
    stop: Annotated[Optional[list[str]], typer.Option("--stop", help="A text that ends an answer (repeat for several).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Makes sampling repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (answers, token counts, seconds) to stdout and nothing else.")] = False,
) -> None:
    """Generate answers with a fine-tuned (or base) language model: one prompt streams its answer."""
    from takeoff import api
    from takeoff.bundle import read_manifest

    kind = run(read_manifest, bundle, verify=False).get("task", {}).get("kind")
    if kind not in ("generate", "answer"):
        fail(f"{bundle} is a {kind} model, not a generative one. Fix: train one with "
             "`takeoff train PAIRS --task generate --prompt COLUMN --target COLUMN` (or `--task answer` on a folder of documents).")
    prompts = list(prompt or [])
    if not prompts:
        if sys.stdin is None or sys.stdin.isatty():
            fail("give a prompt with --prompt TEXT (or pipe prompts, one per line, on standard input)")
        prompts = [line.strip() for line in sys.stdin if line.strip()]
        if not prompts:
            fail("standard input held no prompt")
    options = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "stop": stop or None,
               "seed": seed}
    if kind == "answer":
        _answer(bundle, prompts, options, as_json)
        return
    with stdout_to_stderr(as_json):
        model = run(api.load, bundle)
        if as_json or len(prompts) > 1:
            requests = run(lambda: [model.stream(p, **options) for p in prompts])
            done = [run(r.result) for r in requests]
    if as_json:
        emit_json({"bundle": str(bundle), "answers": [{"prompt": p, **c.to_dict()} for p, c in zip(prompts, done)]})
        return
    if len(prompts) > 1:
        for p, c in zip(prompts, done):
            out.print(f"[bold]> {p}[/]", highlight=False)
            out.print(c.text.strip(), markup=False, highlight=False)
            out.print()
        return
    request = run(model.stream, prompts[0], **options)
    try:
        for piece in request:
            sys.stdout.write(piece)
            sys.stdout.flush()
    except KeyboardInterrupt:
        request.cancel()
        raise typer.Exit(130) from None
    sys.stdout.write("\n")


def _answer(bundle: Path, questions: list[str], options: dict, as_json: bool) -> None:
    """Grounded answers: each question's answer (or refusal) and the passages it rests on."""
    from takeoff import api

    options = {k: v for k, v in options.items() if k != "stop"}
    with stdout_to_stderr(as_json):
        model = run(api.load, bundle)
        answers = run(model.answer_batch, questions, **options)
    if as_json:
        emit_json({"bundle": str(bundle), "answers": [{"question": q, **a.to_dict()} for q, a in zip(questions, answers)]})
        return
    for question, answer in zip(questions, answers):
        if len(questions) > 1:
            out.print(f"[bold]> {question}[/]", highlight=False)
        out.print(answer.text.strip(), markup=False, highlight=False)
        for i, citation in enumerate(answer.citations, 1):
            out.print(f"  [{i}] {citation.source} — {citation.section} (score {citation.score:.2f})", markup=False,
                      highlight=False)
        out.print()
