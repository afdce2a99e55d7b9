"""`takeoff compress`: a smaller or faster bundle, measured against the original."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from takeoff.cli.guards import refuse_search_index
from takeoff.cli.options import EncodingOpt, NoTrackOpt, TrackingUriOpt, tracking_on
from takeoff.cli.output import emit_json, out, run, stdout_to_stderr


def compress(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory to compress.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory of the new bundle.")],
    data: Annotated[Optional[str], typer.Option("--data", help="Labelled rows (with the target): the training table, whose "
                                                "validation split is then used for measuring, or any labelled table. "
                                                "Not needed for --onnx and --quantize: rows are then drawn from the bundle.")] = None,
    eval_data: Annotated[Optional[str], typer.Option("--eval", help="A held-out labelled table to measure on "
                                                     "(--data is then used whole for fitting).")] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="Export the whole pipeline to one ONNX graph (runtime: onnx).")] = False,
    quantize: Annotated[Optional[str], typer.Option("--quantize", help="int8: int8 weights for network members (implies --onnx); "
                                                    "for a generate bundle, weight-only int8 linear layers, its held-out "
                                                    "perplexity and tokens/s measured on pairs given with --eval.")] = None,
    prune: Annotated[Optional[float], typer.Option("--prune", help="Share of weights (networks) or of trailing trees (LightGBM) to remove.")] = None,
    structured: Annotated[bool, typer.Option("--structured", help="With --prune: remove whole hidden units (mlp).")] = False,
    distill: Annotated[Optional[str], typer.Option("--distill", help="Train this family (e.g. lightgbm, mlp, tfidf) on the bundle's outputs.")] = None,
    unlabeled: Annotated[Optional[str], typer.Option("--unlabeled", help="Extra rows without the target for --distill.")] = None,
    time_budget: Annotated[float, typer.Option("--time-budget", min=1, help="Seconds for distillation and the fine-tune after pruning.")] = 120.0,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the comparison as one JSON object to stdout; logs stay on stderr.")] = False,
    encoding: EncodingOpt = None,
    tracking_uri: TrackingUriOpt = None,
    no_track: NoTrackOpt = False,
) -> None:
    """A smaller or faster bundle, measured against the original on the same rows (size,
    latency at batch 1 and 64, metrics); see docs/compression.md."""
    from takeoff.compression import compress as run_compress
    from takeoff.compression.report import comparison_rows

    refuse_search_index(bundle, "compress")
    with stdout_to_stderr(json_output):
        result = run(run_compress, bundle, data, out_dir, onnx=onnx, quantize=quantize, prune=prune, structured=structured,
                     distill=distill, unlabeled=unlabeled, eval_data=eval_data, time_budget=time_budget, seed=seed,
                     encoding=encoding)
    if tracking_on(no_track, tracking_uri):
        from takeoff.tracking import log_compress

        log_compress(result, bundle, {"onnx": onnx, "quantize": quantize, "prune": prune, "structured": structured,
                                      "distill": distill, "time_budget": time_budget, "seed": seed}, uri=tracking_uri)
    if json_output:
        emit_json(result.to_json())
        return
    table = Table(title=f"{bundle} → {out_dir}", title_justify="left")
    for name, justify in (("", "left"), ("original", "right"), ("compressed", "right"), ("change", "right")):
        table.add_column(name, justify=justify)
    for cells in comparison_rows(result):
        table.add_row(*cells)
    out.print(table)
    out.print(f"measured on {result.rows}", highlight=False)
    out.print(f"report: {out_dir / 'compression.html'}")
