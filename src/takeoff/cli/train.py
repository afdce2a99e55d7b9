"""`takeoff train`: a model (or a recommender, with --user and --item; a grounded answerer, with
--task answer) written as a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from takeoff.cli.guards import is_recommender
from takeoff.cli.options import (DecimalOpt, EncodingOpt, FamilyChoice, MetricChoice, NoTrackOpt, SepOpt, SqlOpt, TableOpt,
                                 TaskChoice, TrackingUriOpt, default_run_dir, tracking_on)
from takeoff.cli.output import emit_json, err, metrics_table, out, run, stdout_to_stderr


def train(
    data: Annotated[Optional[str], typer.Argument(help="Training data (file or SQLAlchemy URL; a folder of documents with --task answer).")] = None,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict (not for recommend); several 0/1 label columns as a,b,c make a multilabel task.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Bundle directory (default takeoff-runs/<time>-<name>).")] = None,
    time_budget: Annotated[Optional[float], typer.Option("--time-budget", help="Seconds the whole run may take (default 120).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed.")] = None,
    drop: Annotated[Optional[list[str]], typer.Option("--drop", help="Column to ignore (repeat, or comma-separate).")] = None,
    task: Annotated[Optional[str], TaskChoice.option("--task", help="binary, multiclass, multilabel, regression, recommend, generate or answer (default: inferred; recommend when --user and --item are given; answer: grounded answers from a folder of documents).")] = None,
    family: Annotated[Optional[str], FamilyChoice.option("--family", help="Model family, or auto (default).")] = None,
    metric: Annotated[Optional[str], MetricChoice.option("--metric", help="What the run is judged by: it picks the models, the blend and the decision rule (e.g. roc_auc, log_loss, accuracy, balanced_accuracy, macro_f1, f1, rmse, mae, mape, r2; default roc_auc / log_loss / rmse by task).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Finish an interrupted run directory.")] = None,
    strict: Annotated[Optional[bool], typer.Option("--strict", help="Fail on data-check errors (e.g. leakage) instead of warning.")] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="Recommend: the column of user IDs.")] = None,
    item: Annotated[Optional[str], typer.Option("--item", help="Recommend: the column of item IDs.")] = None,
    rating: Annotated[Optional[str], typer.Option("--rating", help="Recommend: a column weighting each interaction (optional).")] = None,
    time_column: Annotated[Optional[str], typer.Option("--time", help="Recommend: the column of interaction times (optional; the latest are held out).")] = None,
    items: Annotated[Optional[str], typer.Option("--items", help="Recommend: a table of item features (title, genres, ...) joined on the item column.")] = None,
    users: Annotated[Optional[str], typer.Option("--users", help="Recommend: a table of user features (age band, country, ...) joined on the user column.")] = None,
    embed_encoder: Annotated[Optional[bool], typer.Option("--embed-encoder/--no-embed-encoder", help="Text: copy the encoder into the bundle (default), or keep its name and sha256 only.")] = None,
    dp_epsilon: Annotated[Optional[float], typer.Option("--dp-epsilon", help="Train with differential privacy (DP-SGD) to this ε; network families only (mlp). See docs/privacy.md.")] = None,
    dp_delta: Annotated[Optional[float], typer.Option("--dp-delta", help="δ of (ε, δ)-DP (default min(1e-5, 0.1 / rows)).")] = None,
    sensitive: Annotated[Optional[str], typer.Option("--sensitive", help="Column(s) to audit fairness by, comma-separated; not used as features (fairness.keep_as_features keeps them).")] = None,
    mitigate: Annotated[Optional[str], typer.Option("--mitigate", help="'threshold': per-group decision thresholds (fairlearn's ThresholdOptimizer), stored in the bundle.")] = None,
    redact_pii: Annotated[Optional[str], typer.Option("--redact-pii", metavar="KINDS", help="Replace personal data by type tokens (<EMAIL>) before training and at prediction time: 'all', or some of email,phone,card,iban,ip,ssn.")] = None,
    intended_use: Annotated[Optional[str], typer.Option("--intended-use", help="What the model is for, who uses it, what is out of scope (the model card's intended use).")] = None,
    generator: Annotated[Optional[str], typer.Option("--generator", help="Answer: the model that writes the answers: a bundle of --task generate, or a base model (default smollm2).")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Answer: the column of passages when DATA is a table (default 'text').")] = None,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (metrics, members, bundle) to stdout; logs stay on stderr.")] = False,
    devices: Annotated[Optional[int], typer.Option("--devices", help="Processes training a torch family data-parallel: one per GPU (NCCL) or CPU core (gloo); several machines: torchrun. See docs/distributed.md.")] = None,
    tracking_uri: TrackingUriOpt = None,
    no_track: NoTrackOpt = False,
    sep: SepOpt = None,
    decimal: DecimalOpt = None,
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="Generate: the column of prompts (the answers are --target); chat JSON lines with a 'messages' column need neither.")] = None,
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="Generate: the causal language model to fine-tune: smollm2 (default), gemma3-270m, a Hugging Face folder, a .gguf file or a cached org/name. See docs/generate.md.")] = None,
    accept_terms: Annotated[bool, typer.Option("--accept-terms", help="Accept the terms of use of a base model that has them (Gemma); recorded once.")] = False,
) -> None:
    """Train a model and write it as a bundle directory (a recommender with --user and --item)."""
    from takeoff import api

    if resume is None and data is None:
        err.print("[bold red]error:[/] give the training DATA (or --resume DIR)")
        raise typer.Exit(2)
    if resume is None and out_dir is None:
        out_dir = default_run_dir(data, table, "run")
    drops = [c.strip() for item in (drop or []) for c in item.split(",") if c.strip()] or None
    try:
        with stdout_to_stderr(as_json):
            model = run(
                api.train, data, target, time_budget=time_budget, config=config, out=out_dir, seed=seed,
                drop=drops, task=task, family=family, metric=metric, table=table, sql=sql, encoding=encoding, resume=resume,
                strict=strict, user=user, item=item, rating=rating, time_column=time_column, items=items,
                users=users, embed_encoder=embed_encoder, redact_pii=redact_pii, intended_use=intended_use, devices=devices,
                dp_epsilon=dp_epsilon, dp_delta=dp_delta, sensitive=sensitive, mitigate=mitigate,
                track=tracking_on(no_track, tracking_uri), tracking_uri=tracking_uri, sep=sep, decimal=decimal,
                prompt=prompt, base_model=base_model, accept_terms=accept_terms, generator=generator, text=text,
            )
    except KeyboardInterrupt:
        where = resume or out_dir
        err.print(f"\ninterrupted. The run directory is intact; resume with:\n  takeoff train --resume {where}")
        raise typer.Exit(130) from None
    from takeoff.training.distributed import launched_rank

    if launched_rank() != 0:  # under torchrun: rank 0 reports
        return
    if as_json:
        emit_json(train_summary(model))
        return
    if is_recommender(model):
        _print_recommender(model)
    elif model.kind == "generate":
        _print_generative(model)
    elif model.kind == "answer":
        _print_answerer(model)
    else:
        _print_model(model)


def train_summary(model) -> dict:
    """What `train --json` prints: the task, the metrics, the members, the candidates tried
    and where the bundle is."""
    m, training = model.manifest, model.manifest.get("training", {})
    task = m.get("task", {})
    summary = {"bundle": str(model.path) if model.path is not None else None, "task": task.get("kind"),
               "target": task.get("target"), "metric": training.get("metric"), "metrics": model.metrics,
               "seconds": training.get("seconds")}
    if model.kind == "generate":
        return {**summary, "base_metrics": m.get("base_metrics", {}), "generate": m.get("generate", {}),
                "training": {k: v for k, v in training.items() if k != "notes"}, "notes": training.get("notes", [])}
    if is_recommender(model):
        return {**summary, "family": m.get("family"), "leaderboard": m.get("leaderboard", {}),
                "interactions": training.get("interactions")}
    report = model.path / "report.html" if model.path is not None else None
    if model.kind == "answer":
        return {**summary, "files": training.get("files"), "passages": training.get("passages"),
                "skipped": m["answer"]["documents"]["skipped"], "generator": m["answer"]["generator"]["name"],
                "report": str(report) if report is not None and report.exists() else None}
    return {**summary, "rows_train": training.get("rows_train"), "rows_valid": training.get("rows_valid"),
            "members": [{"id": x.get("id", x["family"]), "family": x["family"], "weight": x["weight"]} for x in m["members"]],
            "leaderboard": model.leaderboard().to_dict(orient="records") if hasattr(model, "leaderboard") else None,
            "report": str(report) if report is not None and report.exists() else None}


def _print_model(model) -> None:
    training = model.manifest["training"]
    judged = f"{training['folds']}-fold out-of-fold" if training.get("folds", 1) > 1 else "validation"
    out.print(metrics_table(f"{judged} metrics ({model.task.kind}, target '{model.task.target}', judged by "
                            f"{training.get('metric', '?')})", model.metrics))
    members = ", ".join(f"{m.get('id', m['family'])} ({m['weight']:.2f})" for m in model.manifest["members"])
    out.print(f"model: {members}; trained in {training['seconds']:.1f}s on {training['rows_train']} rows")
    _print_trust(model.manifest)
    out.print(f"bundle: {model.path}")
    out.print(f"report: {model.path / 'report.html'}")


def _print_generative(model) -> None:
    m, training = model.manifest, model.manifest.get("training", {})
    spec, base = m["generate"], m.get("base_metrics", {})
    table = Table(title=f"validation metrics (generate, base model '{spec['base_model']}', {spec['method']})",
                  title_justify="left")
    for col in ("metric", "base model", "fine-tuned"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, value in model.metrics.items():
        before = base.get(name)
        table.add_row(name, "—" if before is None else f"{before:.4f}", f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(table)
    if "epochs" in training:
        out.print(f"fine-tuned {training.get('trainable_parameters', 0):,} of {training.get('parameters', 0):,} weights "
                  f"for {training['epochs']} epoch(s) ({training.get('stop_reason')}) on {training['train_pairs']} pairs "
                  f"in {training['seconds']:.1f}s")
    for note in training.get("notes", []):
        err.print(f"[yellow]note:[/] {note}")
    out.print(f"bundle: {model.path}")
    if model.path is not None and (model.path / "report.html").exists():
        out.print(f"report: {model.path / 'report.html'}")
    out.print(f'next: takeoff generate {model.path} --prompt "..."  ·  takeoff serve {model.path}')


def _print_trust(manifest: dict) -> None:
    """The ε spent and the fairness audit's verdict, under the metrics."""
    dp = manifest.get("privacy", {}).get("dp")
    if dp:
        out.print(f"differential privacy: ε = {dp['epsilon']:.3f} spent (target {dp['target_epsilon']:g}), δ = "
                  f"{dp['delta']:.1e}, {dp['accountant']} accountant, noise multiplier {dp['noise_multiplier']:.3f}, "
                  f"clipping {dp['max_grad_norm']:g}, {dp['steps']} steps")
    fairness = manifest.get("fairness")
    if fairness:
        for column, ratios in fairness.get("ratios", {}).items():
            shown = ", ".join(f"{k.replace('_', ' ')} ratio {v:.2f}" for k, v in ratios.items() if v is not None)
            out.print(f"fairness by '{column}': {shown}")
        for warning in fairness.get("warnings", []):
            err.print(f"[yellow]fairness warning:[/] {warning}")
        cost = fairness.get("mitigation", {}).get("cost")
        if cost:
            out.print(f"threshold mitigation: balanced accuracy {cost['before']['balanced_accuracy']:.4f} → "
                      f"{cost['after']['balanced_accuracy']:.4f}, demographic parity ratio "
                      f"{cost['before']['demographic_parity_ratio'] or 0:.2f} → {cost['after']['demographic_parity_ratio'] or 0:.2f}")


def _print_answerer(model) -> None:
    training, spec = model.manifest["training"], model.spec
    for note in model.notes:
        err.print(f"note: {note}", highlight=False)
    if model.metrics:
        out.print(metrics_table("evaluation questions (retrieval and refusal)", model.metrics))
    out.print(f"indexed {training['passages']:,} passages from {training['files']:,} file(s) of {training['source']} in "
              f"{training['seconds']:.1f}s; answers by {spec['generator']['name']}, refusing below cosine "
              f"{spec['min_score']:g}", highlight=False)
    out.print(f"bundle: {model.path}", highlight=False)
    if model.path is not None and (model.path / "report.html").exists():
        out.print(f"report: {model.path / 'report.html'}", highlight=False)
    out.print(f'next: python -c "import takeoff; print(takeoff.load(\'{model.path}\').answer(\'a question\').text)"',
              highlight=False)


def _print_recommender(model) -> None:
    m, training, rc = model.manifest, model.manifest["training"], model.manifest["recommend"]
    out.print(metrics_table(f"validation metrics (recommend, user '{rc['user']}' → item '{rc['item']}', "
                            "each user's last interaction held out)", model.metrics))
    if len(m.get("leaderboard", {})) > 1:
        board = Table(title="families tried", title_justify="left")
        k = rc["k"]
        for col in ("family", f"ndcg@{k}", f"hr@{k}", "seconds"):
            board.add_column(col, justify="left" if col == "family" else "right")
        for name, row in m["leaderboard"].items():
            board.add_row(name + (" (chosen)" if name == m["family"] else ""), f"{row[f'ndcg@{k}']:.4f}",
                          f"{row[f'hr@{k}']:.4f}", f"{row.get('fit_seconds', 0):.1f}")
        out.print(board)
    refit = ", refitted on every interaction" if training.get("refit") else ""
    out.print(f"model: {m['family']}; trained in {training['seconds']:.1f}s on {training['interactions']:,} interactions "
              f"({model.n_users:,} users, {model.n_items:,} items{refit})")
    out.print(f"bundle: {model.path}")
    if model.path is not None and (model.path / "report.html").exists():
        out.print(f"report: {model.path / 'report.html'}")
    first = model.log.users[0] if model.n_users else "USER"
    out.print(f"next: takeoff recommend {model.path} --user {first}")
