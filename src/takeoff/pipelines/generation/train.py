"""The generate pipeline: read pairs → split → resolve the base model → score the base →
fine-tune (LoRA by default) → score the fine-tuned model → report → bundle.

The time budget covers everything; about a fifth of it is kept for the two evaluations (the
base model's and the fine-tuned one's: perplexity on the validation pairs and answers
generated for up to ``generate.eval_samples`` of them). A run directory holds ``run.json`` and
the trainer's checkpoints while it runs, so a Ctrl-C'd run continues with ``--resume``; a run
that fails leaves nothing behind.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from takeoff import bundle
from takeoff._version import __version__
from takeoff.errors import BudgetError
from takeoff.pipelines.generation.data import Pairs, read_pairs
from takeoff.pipelines.generation.model import GenerativeModel
from takeoff.pipelines.run_dir import new_output_dir, read_data, remove_unfinished, rereadable

log = logging.getLogger("takeoff")

DEFAULT_BUDGET = 900.0  # seconds, when the run was not given one: 15 minutes
EVAL_SHARE = 0.2
MAX_VALID = 200


def budget_of(cfg) -> float:
    """The run's time budget: the configured one, else :data:`DEFAULT_BUDGET` (the tables'
    default of 120 s is too short to fine-tune a language model on a CPU)."""
    return float(cfg.time_budget) if "time_budget" in cfg.model_fields_set else DEFAULT_BUDGET


def train(data, cfg, out=None, table=None, sql=None, encoding=None, state: dict[str, Any] | None = None, *,
          sep=None, decimal=None, accept_terms: bool = False, progress: bool = True) -> GenerativeModel:
    """Fine-tune a causal language model on the pairs of ``data``; see the module doc.

    Raises:
        ConfigError, DataError: bad options or data (nothing is written then).
        BaseModelNotFoundError: the base model is not on this machine.
    """
    from takeoff.pipelines.generation.base_models import resolve_base

    state = state or {}
    resume = bool(state)
    params = cfg.generate
    started = time.monotonic()
    budget = budget_of(cfg)
    cfg = cfg.model_copy(update={"time_budget": budget})  # a resumed run reads the budget it had
    deadline = started + budget - state.get("elapsed", 0.0)
    df, name = read_data(data, table, sql, encoding, sep, decimal)
    pairs = read_pairs(df, name, params.prompt, cfg.target if isinstance(cfg.target, str) else None)
    del df
    folder = resolve_base(params.base_model, accept_terms=accept_terms)  # fails before anything is written

    run_dir = Path(out) if out is not None else None
    created = False
    if run_dir is not None and not resume:
        new_output_dir(run_dir)
        created = True
        state = {"status": "running", "task": "generate",
                 "source": {"data": rereadable(data), "table": table, "sql": sql, "encoding": encoding, "sep": sep,
                            "decimal": decimal},
                 "config": cfg.model_dump(mode="json"), "elapsed": 0.0}
        bundle.write_json(run_dir / bundle.RUN_STATE, state)
    work = Path(tempfile.mkdtemp(prefix="takeoff-generate-"))
    try:
        model = _run(pairs, name, cfg, folder, run_dir, work, started, deadline, progress)
        if run_dir is not None:
            model.save(run_dir)
    except KeyboardInterrupt:
        shutil.rmtree(work, ignore_errors=True)
        if run_dir is not None and run_dir.exists():
            state.update(status="interrupted", elapsed=state.get("elapsed", 0.0) + time.monotonic() - started)
            bundle.write_json(run_dir / bundle.RUN_STATE, state)
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if created:
            remove_unfinished(run_dir)
        raise
    if run_dir is not None:  # the bundle holds the weights now; unsaved, they stay in the work folder
        shutil.rmtree(work, ignore_errors=True)
    return model


def _run(pairs: Pairs, name: str, cfg, folder: Path, run_dir: Path | None, work: Path, started: float,
         deadline: float, progress: bool) -> GenerativeModel:
    import torch
    from transformers import AutoModelForCausalLM

    from takeoff.pipelines.generation.sft import encode_pairs, fine_tune, save_merged
    from takeoff.pipelines.generation.template import Template
    from takeoff.training.context import FitContext

    params = cfg.generate
    train_pairs, valid_pairs = _split(pairs, cfg.valid_fraction, cfg.seed)
    base = GenerativeModel.from_folder(folder, name=params.base_model, system=params.system, device=cfg.device)
    base.manifest["generate"]["on_long"] = params.on_long
    template = Template(base.engine.tokenizer, params.system)
    max_length = min(params.max_length, base.context_length)
    train_ex, notes = encode_pairs(template, train_pairs.conversations, train_pairs.answers, max_length, params.on_long)
    valid_ex, valid_notes = encode_pairs(template, valid_pairs.conversations, valid_pairs.answers, max_length, "truncate")
    notes = [*pairs.notes, *notes, *(f"validation: {n}" for n in valid_notes)]
    budget = deadline - started
    eval_deadline_share = EVAL_SHARE * budget / 2

    before = _evaluate(base, valid_pairs, valid_ex, params, time.monotonic() + eval_deadline_share)
    history: dict[str, list[float]] = {}
    info: dict[str, Any] = {"method": params.method, "train_pairs": len(train_pairs), "valid_pairs": len(valid_pairs)}
    if params.method == "none":
        model_folder = folder
    else:
        fit_deadline = deadline - eval_deadline_share
        if fit_deadline - time.monotonic() < 5:
            raise BudgetError(f"the time budget of {budget:.0f} s leaves no time to fine-tune after loading and "
                              "scoring the base model. Fix: raise --time-budget (15 minutes suits a few hundred pairs "
                              "on a CPU).")
        lm = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, use_safetensors=True)
        ctx = FitContext(deadline=fit_deadline, seed=cfg.seed, progress=progress, device=cfg.device,
                         checkpoint_dir=(run_dir / ".checkpoints") if run_dir is not None else None,
                         warn=lambda message: log.warning("%s", message))
        meta = {"base": str(folder.name), "pairs": len(train_ex), "method": params.method, "rank": params.lora_rank,
                "seed": cfg.seed, "max_length": max_length, "batch_size": params.batch_size}
        tuned = fine_tune(lm, train_ex, valid_ex, params, ctx, base.engine.tokenizer.pad_token_id, meta)
        model_folder = work / "model"
        save_merged(tuned.model, base.engine.tokenizer, model_folder)
        history = tuned.history
        info.update(stop_reason=tuned.stop_reason, epochs=tuned.epochs, seconds=round(tuned.seconds, 1),
                    trainable_parameters=tuned.trainable, parameters=tuned.total,
                    steps=tuned.steps, samples_seen=tuned.samples,
                    samples_per_second=round(tuned.samples / max(tuned.seconds, 1e-9), 3))
        if params.method == "lora":
            info.update(lora_rank=params.lora_rank, lora_alpha=params.lora_alpha)
        del lm, tuned
    manifest = {
        "takeoff_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": {"kind": "generate", "target": pairs.target, "classes": []},
        "generate": {"base_model": params.base_model, "base_folder": folder.name, "method": params.method,
                     "template": template.kind, "system": params.system, "prompt": pairs.prompt,
                     "max_length": max_length, "on_long": params.on_long, "precision": params.precision, "device": cfg.device},
        "metrics": {},
        "training": {"source": name, "pairs": len(pairs), "notes": notes, **info},
    }
    model = base if params.method == "none" else GenerativeModel(manifest, model_folder)
    if params.method == "none":
        model.manifest = {**manifest, "generate": {**manifest["generate"]}}
    remaining = max(1.0, deadline - time.monotonic())
    after = before if params.method == "none" else _evaluate(model, valid_pairs, valid_ex, params,
                                                             time.monotonic() + remaining)
    model.manifest["metrics"] = {k: v for k, v in after["metrics"].items()}
    model.manifest["base_metrics"] = before["metrics"]
    model.manifest["training"]["seconds"] = round(time.monotonic() - started, 1)
    if run_dir is not None:
        from takeoff.evaluation.report import write_generate_report

        report = run_dir / "report.html"
        write_generate_report(report, title=f"{pairs.target or 'answers'} — generation report", data_name=name,
                              base=before, tuned=after, references=[valid_pairs.answers[i] for i in range(len(after["samples"]))],
                              prompts=[valid_pairs.prompts[i] for i in range(len(after["samples"]))],
                              history=history, info={"training": info, "model": {
                                  "base model": params.base_model, "template": template.kind,
                                  "max length": max_length}}, notes=notes, method=params.method)
        model.attach("report.html", report)
    return model


def _split(pairs: Pairs, fraction: float, seed: int) -> tuple[Pairs, Pairs]:
    """Train and validation pairs (validation: ``fraction`` of them, at least 1 and at most
    :data:`MAX_VALID`; none when there are fewer than 5 pairs)."""
    import numpy as np

    n = len(pairs)
    if n < 5:
        return pairs, pairs.take([])
    order = np.random.default_rng(seed).permutation(n).tolist()
    k = min(MAX_VALID, max(1, round(n * fraction)))
    return pairs.take(sorted(order[k:])), pairs.take(sorted(order[:k]))


def _evaluate(model: GenerativeModel, pairs: Pairs, examples, params, deadline: float) -> dict[str, Any]:
    """Perplexity on the validation pairs and, while time allows, answers generated for up to
    ``eval_samples`` of them, scored by exact match, token F1 and ROUGE-L."""
    from takeoff.evaluation.generation import text_scores
    from takeoff.pipelines.generation.sft import token_losses

    metrics: dict[str, Any] = {}
    samples: list[str] = []
    if examples:
        metrics["perplexity"] = round(token_losses(model.engine.model, examples, 8, model.engine.device), 4)
    n = min(params.eval_samples, len(pairs))
    if n and time.monotonic() < deadline:
        requests = [model.stream_chat(pairs.conversations[i], max_new_tokens=params.max_new_tokens) for i in range(n)]
        for request in requests:  # the batch decodes together; past the deadline every unfinished answer is cut
            while not request.done and time.monotonic() < deadline:
                time.sleep(0.05)
            if not request.done:
                for late in requests:
                    late.cancel()
            request.result()
        done = [r for r in requests if r.completion.finish_reason != "cancelled"]
        samples = [r.completion.text.strip() for r in done]
        if samples:
            metrics.update({k: round(v, 4) for k, v in text_scores(samples, pairs.answers[:len(samples)]).items()})
        metrics["scored_answers"] = len(samples)
    return {"metrics": metrics, "samples": samples}
