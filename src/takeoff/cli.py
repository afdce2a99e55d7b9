"""The `takeoff` command: a thin Typer layer over :mod:`takeoff.api`.

Each command parses its options, calls the API, and prints. Results go to stdout; progress,
warnings and errors go to stderr (``--quiet`` keeps only warnings and errors), so `--json`
output can be piped.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from takeoff._version import __version__
from takeoff.errors import TakeoffError

app = typer.Typer(
    name="takeoff",
    help="From a table to a trained, evaluated model bundle in a few commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show the configuration schema and defaults.", no_args_is_help=True)
app.add_typer(config_app, name="config")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Data = Annotated[str, typer.Argument(help="CSV, TSV, Parquet, JSON lines or Excel file, or a SQLAlchemy URL.")]
TableOpt = Annotated[Optional[str], typer.Option("--table", help="Database table (with a SQLAlchemy URL).")]
SqlOpt = Annotated[Optional[str], typer.Option("--sql", help="SQL query (with a SQLAlchemy URL).")]
EncodingOpt = Annotated[Optional[str], typer.Option("--encoding", help="Text encoding of CSV/TSV files (default UTF-8).")]


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    logger = logging.getLogger("takeoff")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


def _run(fn, *args, **kwargs):
    """Call the API; turn our errors into one clear line and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except TakeoffError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"takeoff {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show warnings and errors.")] = False,
) -> None:
    _setup_logging(not quiet)


def _metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def _per_class_table(metrics: dict) -> Table | None:
    per_class = metrics.get("per_class")
    if not per_class:
        return None
    table = Table(title="per class", title_justify="left")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for label, row in per_class.items():
        table.add_row(str(label), *(f"{row[k]:.3f}" if k != "support" else str(row[k]) for k in ("precision", "recall", "f1", "support")))
    return table


@app.command()
def train(
    data: Annotated[Optional[str], typer.Argument(help="Training data (file or SQLAlchemy URL).")] = None,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict (not for recommend); several 0/1 label columns as a,b,c make a multilabel task.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Bundle directory (default takeoff-runs/<time>-<name>).")] = None,
    time_budget: Annotated[Optional[float], typer.Option("--time-budget", help="Seconds the whole run may take (default 120).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed.")] = None,
    drop: Annotated[Optional[list[str]], typer.Option("--drop", help="Column to ignore (repeat, or comma-separate).")] = None,
    task: Annotated[Optional[str], typer.Option("--task", help="binary, multiclass, multilabel, regression or recommend (default: inferred; recommend when --user and --item are given).")] = None,
    family: Annotated[Optional[str], typer.Option("--family", help="Model family, or auto (default).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Finish an interrupted run directory.")] = None,
    strict: Annotated[Optional[bool], typer.Option("--strict", help="Fail on data-check errors (e.g. leakage) instead of warning.")] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="Recommend: the column of user IDs.")] = None,
    item: Annotated[Optional[str], typer.Option("--item", help="Recommend: the column of item IDs.")] = None,
    rating: Annotated[Optional[str], typer.Option("--rating", help="Recommend: a column weighting each interaction (optional).")] = None,
    time_column: Annotated[Optional[str], typer.Option("--time", help="Recommend: the column of interaction times (optional; the latest are held out).")] = None,
    items: Annotated[Optional[str], typer.Option("--items", help="Recommend: a table of item features (title, genres, ...) joined on the item column.")] = None,
    users: Annotated[Optional[str], typer.Option("--users", help="Recommend: a table of user features (age band, country, ...) joined on the user column.")] = None,
    embed_encoder: Annotated[Optional[bool], typer.Option("--embed-encoder/--no-embed-encoder", help="Text: copy the encoder into the bundle (default), or keep its name and sha256 only.")] = None,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Train a model and write it as a bundle directory (a recommender with --user and --item)."""
    from takeoff import api

    if resume is None and data is None:
        err.print("[bold red]error:[/] give the training DATA (or --resume DIR)")
        raise typer.Exit(2)
    if resume is None and out_dir is None:
        stem = Path(table or (data.rsplit("/", 1)[-1] if "://" in data else Path(data).stem) or "run").stem
        out_dir = Path("takeoff-runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{stem}"
    drops = [c.strip() for item in (drop or []) for c in item.split(",") if c.strip()] or None
    try:
        model = _run(
            api.train, data, target, time_budget=time_budget, config=config, out=out_dir, seed=seed,
            drop=drops, task=task, family=family, table=table, sql=sql, encoding=encoding, resume=resume,
            strict=strict, user=user, item=item, rating=rating, time_column=time_column, items=items,
            users=users, embed_encoder=embed_encoder,
        )
    except KeyboardInterrupt:
        where = resume or out_dir
        err.print(f"\ninterrupted. The run directory is intact; resume with:\n  takeoff train --resume {where}")
        raise typer.Exit(130) from None
    _print_trained(model)


def _is_recommender(model) -> bool:
    return model.manifest.get("task", {}).get("kind") == "recommend"


def _refuse_search_index(bundle: Path, command: str) -> None:
    """`evaluate` and `predict` on a search index: exit 2 pointing to `takeoff search` (read from
    the manifest alone, before loading the encoder)."""
    from takeoff.bundle import MANIFEST, read_manifest

    if not (Path(bundle) / MANIFEST).is_file():
        return  # not a bundle: loading it says why
    if _run(read_manifest, bundle, verify=False).get("task", {}).get("kind") == "search":
        _fail(f"{bundle} is a search index, which finds the texts closest to a query; it has nothing to {command}. "
              f'Fix: use `takeoff search {bundle} "a question"` (or POST /v1/models/NAME/search under `takeoff serve`).')


def _print_trained(model) -> None:
    if _is_recommender(model):
        _print_recommender(model)
        return
    training = model.manifest["training"]
    out.print(_metrics_table(f"validation metrics ({model.task.kind}, target '{model.task.target}')", model.metrics))
    members = ", ".join(f"{m['family']} ({m['weight']:.2f})" for m in model.manifest["members"])
    out.print(f"model: {members}; trained in {training['seconds']:.1f}s on {training['rows_train']} rows")
    out.print(f"bundle: {model.path}")
    out.print(f"report: {model.path / 'report.html'}")


def _print_recommender(model) -> None:
    m, training, rc = model.manifest, model.manifest["training"], model.manifest["recommend"]
    out.print(_metrics_table(f"validation metrics (recommend, user '{rc['user']}' → item '{rc['item']}', "
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


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    data: Data,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout and nothing else.")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write an HTML report here.")] = None,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Metrics of a bundle on DATA (which holds the target column; for a recommender, the
    user and item columns of held-out interactions: ranking metrics)."""
    from takeoff import api

    _refuse_search_index(bundle, "evaluate")
    model = _run(api.load, bundle)
    if _is_recommender(model):
        if table or sql or encoding:
            from takeoff.data.sources import read_table

            data_in = _run(read_table, data, table=table, sql=sql, encoding=encoding)
        else:
            data_in = data
        metrics = _run(model.evaluate, data_in, report=report)
    else:
        metrics = _run(model.evaluate, data, table=table, sql=sql, encoding=encoding, report=report)
    if as_json:
        sys.stdout.write(json.dumps({"task": model.task.kind, "metrics": metrics}) + "\n")
        return
    out.print(_metrics_table(f"metrics on {data}", metrics))
    per_class = _per_class_table(metrics)
    if per_class is not None:
        out.print(per_class)
    if report:
        out.print(f"report: {report}")


@app.command()
def predict(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    data: Data,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (.csv, .tsv or .parquet).")],
    id_column: Annotated[Optional[str], typer.Option("--id", help="Column of DATA to copy into the output.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on values that do not parse.")] = False,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Predict every row of DATA (streamed in chunks) into OUTPUT."""
    from takeoff import api
    from takeoff.pipelines.prediction.batch import predict_file

    _refuse_search_index(bundle, "predict")
    model = _run(api.load, bundle)
    if _is_recommender(model):
        _fail(f"{bundle} is a recommender, which ranks items for users rather than predicting rows. "
              f"Fix: use `takeoff recommend {bundle} --user ID` (or --item ID for similar items).")
    result = _run(predict_file, model, data, output, id_column=id_column, table=table, sql=sql, encoding=encoding, strict=strict)
    for note in result["notes"]:
        err.print(f"note: {note}", highlight=False)
    out.print(f"{result['rows']} predictions written to {output} ({result['rows_per_second']:,.0f} rows/s)")


@app.command()
def explain(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    data: Data,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Rows explained one by one: the first N of DATA.")] = 5,
    report: Annotated[Path, typer.Option("--out", "-o", help="The HTML report to write.")] = Path("explanation.html"),
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the explanation as JSON here.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the row sample and the shuffles.")] = 0,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Why a bundle predicts what it does on DATA: global importance of each column and
    attributions of the first rows (see docs/explain.md)."""
    from takeoff import api
    from takeoff.explain import explain as explain_model

    _refuse_search_index(bundle, "explain")
    model = _run(api.load, bundle)
    if _is_recommender(model):
        _fail(f"{bundle} is a recommender, which ranks items for users; it has no per-column predictions to explain. "
              f"Fix: use `takeoff evaluate {bundle} DATA` for its ranking metrics.")
    explanation = _run(explain_model, model, data, rows=rows, seed=seed, table=table, sql=sql, encoding=encoding)
    explanation.write_html(report)
    if json_path is not None:
        explanation.write_json(json_path)
    ranking = Table(title="global importance (top 5)", title_justify="left")
    ranking.add_column("#", justify="right")
    for method in explanation.global_:
        ranking.add_column(method)
    for k in range(min(5, len(model.schema.names()))):
        ranking.add_row(str(k + 1), *(explanation.top(method, 5)[k] for method in explanation.global_))
    out.print(ranking)
    out.print(f"per row, the largest attributions (in the {explanation.explained}):", highlight=False)
    for entry in explanation.local:
        top = ", ".join(f"{a['column']} {a['attribution']:+.3g}" for a in entry["attributions"][:3] if a["attribution"] is not None)
        out.print(f"row {entry['row']}: predicted {entry['prediction']!r}; {top}", highlight=False)
    out.print(f"report: {report}")
    if json_path is not None:
        out.print(f"json: {json_path}")


@app.command()
def compress(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory to compress.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory of the new bundle.")],
    data: Annotated[str, typer.Option("--data", help="Labelled rows (with the target): the training table, whose "
                                      "validation split is then used for measuring, or any labelled table.")],
    eval_data: Annotated[Optional[str], typer.Option("--eval", help="A held-out labelled table to measure on "
                                                     "(--data is then used whole for fitting).")] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="Export the whole pipeline to one ONNX graph (runtime: onnx).")] = False,
    quantize: Annotated[Optional[str], typer.Option("--quantize", help="int8: int8 weights for network members (implies --onnx).")] = None,
    prune: Annotated[Optional[float], typer.Option("--prune", help="Share of weights (networks) or of trailing trees (LightGBM) to remove.")] = None,
    structured: Annotated[bool, typer.Option("--structured", help="With --prune: remove whole hidden units (mlp).")] = False,
    distill: Annotated[Optional[str], typer.Option("--distill", help="Train this family (e.g. lightgbm, mlp, tfidf) on the bundle's outputs.")] = None,
    unlabeled: Annotated[Optional[str], typer.Option("--unlabeled", help="Extra rows without the target for --distill.")] = None,
    time_budget: Annotated[float, typer.Option("--time-budget", min=1, help="Seconds for distillation and the fine-tune after pruning.")] = 120.0,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    encoding: EncodingOpt = None,
) -> None:
    """A smaller or faster bundle, measured against the original on the same rows (size,
    latency at batch 1 and 64, metrics); see docs/compression.md."""
    from takeoff.compression import compress as run_compress
    from takeoff.compression.report import comparison_rows

    _refuse_search_index(bundle, "compress")
    result = _run(run_compress, bundle, data, out_dir, onnx=onnx, quantize=quantize, prune=prune, structured=structured,
                  distill=distill, unlabeled=unlabeled, eval_data=eval_data, time_budget=time_budget, seed=seed,
                  encoding=encoding)
    if json_output:
        out.print_json(json.dumps(result.to_json()))
        return
    table = Table(title=f"{bundle} → {out_dir}", title_justify="left")
    for name, justify in (("", "left"), ("original", "right"), ("compressed", "right"), ("change", "right")):
        table.add_column(name, justify=justify)
    for cells in comparison_rows(result):
        table.add_row(*cells)
    out.print(table)
    out.print(f"measured on {result.rows}", highlight=False)
    out.print(f"report: {out_dir / 'compression.html'}")


@app.command()
def recommend(
    bundle: Annotated[Path, typer.Argument(help="Recommender bundle directory (from `takeoff train --task recommend`).")],
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="Recommend items for this user ID.")] = None,
    item: Annotated[Optional[str], typer.Option("--item", "-i", help="Show the items most like this item ID.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="How many items.")] = 10,
    include_seen: Annotated[bool, typer.Option("--include-seen", help="Also rank the items the user already interacted with.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout and nothing else.")] = False,
) -> None:
    """Recommendations for a user (--user), or the items most like an item (--item)."""
    from takeoff import api
    from takeoff.bundle import read_manifest
    from takeoff.serving.items import item_labels

    if (user is None) == (item is None):
        given = "both were given" if user is not None else "neither was given"
        _fail(f"give --user ID (recommendations for a user) or --item ID (similar items); {given}")
    task = _run(read_manifest, bundle, verify=False).get("task", {})  # a table model may take seconds to load
    if task.get("kind") != "recommend":
        _fail(f"{bundle} is a {task.get('kind')} model (target '{task.get('target')}'), not a recommender. "
              f"Fix: use `takeoff predict {bundle} DATA -o OUT`, or train a recommender with --task recommend --user COL --item COL.")
    model = _run(api.load, bundle)
    if user is not None:
        result = _run(model.recommend, user, k=k, exclude_seen=not include_seen)
        asked = {"user": _id(user)}
    else:
        result = _run(model.similar_items, item, k=k)
        asked = {"item": _id(item)}
    column, labels = item_labels(model)
    rows = result.to_json()["items"]
    if labels is not None:
        for row, code in zip(rows, model.log.codes_of_items(result.items).tolist()):
            row["label"] = labels[code] if code >= 0 else None
    if as_json:
        sys.stdout.write(json.dumps({**asked, "items": rows, "notes": result.notes}) + "\n")
        return
    for note in result.notes:
        err.print(f"note: {note}", highlight=False)
    title = f"top {k} for user {user}" if user is not None else f"{k} items most like item {item}"
    if item is not None and labels is not None:
        code = model.log.codes_of_items([item])[0]
        title += f" ({labels[code]})" if code >= 0 and labels[code] else ""
    table = Table(title=Text(title), title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column(model.manifest["recommend"]["item"])
    table.add_column("score", justify="right")
    if column is not None:
        table.add_column(column)
    for rank, row in enumerate(rows, 1):
        labelled = [Text(row["label"] or "")] if column is not None else []
        table.add_row(str(rank), Text(str(row["item"])), f"{row['score']:.4f}", *labelled)
    out.print(table)


@app.command()
def index(
    data: Data,
    text: Annotated[str, typer.Option("--text", help="The column searched (e.g. the FAQ question).")],
    answer: Annotated[Optional[str], typer.Option("--answer", help="A column returned with each hit (e.g. the FAQ answer).")] = None,
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="Encoder name, alias or local folder (default all-MiniLM-L6-v2; never downloaded).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Bundle directory (default takeoff-runs/<time>-<name>-index).")] = None,
    embed_encoder: Annotated[bool, typer.Option("--embed-encoder/--reference-encoder", help="Copy the encoder into the bundle, or keep only its name and sha256.")] = True,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Build a semantic search index of a text column (a bundle that `takeoff search` and `takeoff serve` answer)."""
    from takeoff.pipelines.search import build_index

    if out_dir is None:
        stem = Path(table or (data.rsplit("/", 1)[-1] if "://" in data else Path(data).stem) or "index").stem
        out_dir = Path("takeoff-runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{stem}-index"
    source = data
    if table or sql or encoding:
        from takeoff.data.sources import read_table

        source = _run(read_table, data, table=table, sql=sql, encoding=encoding)
    result = _run(build_index, source, text, answer, encoder=encoder, out=out_dir, embed_encoder=embed_encoder)
    for note in result.notes:
        err.print(f"note: {note}", highlight=False)
    training, enc = result.manifest["training"], result.manifest["encoder"]
    out.print(f"indexed {len(result):,} texts of '{text}' with {enc['name']} ({result.manifest['search']['dim']} dims) "
              f"in {training['seconds']:.1f}s", highlight=False)
    out.print(f"bundle: {result.path}", highlight=False)
    out.print(f'next: takeoff search {result.path} "a question"', highlight=False)


@app.command()
def search(
    bundle: Annotated[Path, typer.Argument(help="Search index bundle directory (from `takeoff index`).")],
    query: Annotated[str, typer.Argument(help="The text to search for.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="How many hits.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout and nothing else.")] = False,
) -> None:
    """The indexed texts closest in meaning to QUERY, with their answers."""
    from takeoff import api
    from takeoff.bundle import read_manifest

    task = _run(read_manifest, bundle, verify=False).get("task", {})
    if task.get("kind") != "search":
        _fail(f"{bundle} is a {task.get('kind')} model, not a search index. "
              "Fix: build one with `takeoff index DATA --text COLUMN [--answer COLUMN]`.")
    model = _run(api.load, bundle)
    hits = _run(model.search, query, k=k)
    if as_json:
        sys.stdout.write(json.dumps({"query": query, "hits": hits}) + "\n")
        return
    table = Table(title=Text(f"top {k} for {query!r}"), title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column(model.manifest["search"]["text"])
    if model.answers is not None:
        table.add_column(model.manifest["search"]["answer"])
    for rank, hit in enumerate(hits, 1):
        answer_cell = [Text(str(hit["answer"]) if hit["answer"] is not None else "")] if model.answers is not None else []
        table.add_row(str(rank), f"{hit['score']:.3f}", Text(hit["text"]), *answer_cell)
    out.print(table)


def _id(text: str):
    """An ID from the command line as the model returns IDs: a number when it looks like one."""
    return int(text) if text.lstrip("-").isdigit() and len(text) < 19 else text


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def inspect(
    data: Data,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 1 when a check finds an error.")] = False,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Show the schema takeoff infers and the data findings."""
    from takeoff import api

    result = _run(api.inspect, data, target, table=table, sql=sql, encoding=encoding)
    failed = strict and any(f["severity"] == "error" for f in result["findings"])
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        raise typer.Exit(1 if failed else 0)
    task = result["task"]
    title = f"{result['source']}: {result['rows']} rows"
    if task:
        title += f", target '{task['target']}' → {task['kind']}" + (f" {task['classes']}" if task["classes"] else "")
    schema = Table(title=title, title_justify="left")
    for col in ("column", "kind", "dtype", "missing", "unique", "note"):
        schema.add_column(col, justify="right" if col in ("missing", "unique") else "left")
    for c in result["columns"]:
        note = "dropped" if c["kind"] in ("identifier", "constant", "empty") else ""
        if c["bad_values"]:
            note = f"{c['bad_values']} unparseable"
        schema.add_row(c["name"], c["kind"], c["dtype"], str(c["n_missing"]), str(c["n_unique"]), note)
    out.print(schema)
    if result["findings"]:
        findings = Table(title="findings", title_justify="left")
        for col in ("severity", "check", "column", "finding", "fix"):
            findings.add_column(col)
        colours = {"error": "red", "warning": "yellow", "info": "cyan"}
        for f in result["findings"]:
            findings.add_row(f"[{colours.get(f['severity'], 'white')}]{f['severity']}[/]", f["check"], f["column"] or "", f["message"], f["fix"])
        out.print(findings)
    else:
        out.print("no findings")
    if failed:
        raise typer.Exit(1)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where runs are written.")] = Path("takeoff-runs"),
    time_budget: Annotated[float, typer.Option("--time-budget", help="Seconds for training.")] = 60.0,
) -> None:
    """Train, evaluate and report on the credit-risk table shipped with takeoff."""
    from takeoff.demo import DEMO_TARGET, demo_data, run_demo

    err.print(f"demo: credit risk ({demo_data().name}), target '{DEMO_TARGET}'; training on 80%, testing on 20%")
    result = _run(run_demo, out_dir, time_budget)
    out.print(_metrics_table("held-out test metrics (credit risk, 20% of rows)", result["metrics"]))
    out.print(f"bundle: {result['bundle']}")
    out.print(f"report: {result['report']}")
    out.print(f"next: takeoff predict {result['bundle']} new_rows.csv -o predictions.csv")


@app.command()
def serve(
    source: Annotated[Path, typer.Argument(help="A bundle directory, or a directory of bundles (each served under its name).")],
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (0.0.0.0 for all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="TAKEOFF_API_KEY", show_envvar=True, help="Require 'Authorization: Bearer KEY'.")] = None,
    default: Annotated[Optional[str], typer.Option("--default", help="Model answering /v1/predict (default: the only one).")] = None,
    max_records: Annotated[Optional[int], typer.Option("--max-records", min=1, help="Most records per request (default 10000).")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.001, help="Seconds per request (default 30).")] = None,
    cors_origin: Annotated[Optional[list[str]], typer.Option("--cors-origin", help="Origin allowed by CORS (repeat).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log a line per request.")] = True,
) -> None:
    """Serve bundles over HTTP: a REST API (docs at /docs) and a page at /."""
    from takeoff.serving import ServeSettings
    from takeoff.serving import serve as run_server

    given = {"max_records": max_records, "timeout_s": timeout, "api_key": api_key, "default_model": default}
    settings = ServeSettings(host=host, port=port, workers=workers, cors_origins=cors_origin or [], access_log=access_log,
                             **{k: v for k, v in given.items() if v is not None})

    def ready(url: str) -> None:
        out.print(f"page: {url}/   API docs: {url}/docs   (Ctrl-C to stop)", highlight=False)

    _run(run_server, source, settings, on_ready=ready)


@config_app.command("show")
def config_show(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A YAML config to resolve against the defaults.")] = None,
) -> None:
    """Print the resolved configuration (defaults included) as YAML."""
    from takeoff.config import load_config, to_yaml

    sys.stdout.write(to_yaml(_run(load_config, config)))


@config_app.command("schema")
def config_schema() -> None:
    """Print the configuration's JSON Schema."""
    from takeoff.config import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=1) + "\n")


if __name__ == "__main__":
    app()
