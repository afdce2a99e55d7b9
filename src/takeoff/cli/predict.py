"""`takeoff predict`: every row of a table predicted into a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from takeoff.cli.guards import is_recommender, refuse_search_index
from takeoff.cli.options import Data, DecimalOpt, EncodingOpt, SepOpt, SqlOpt, TableOpt
from takeoff.cli.output import emit_json, err, fail, out, run, stdout_to_stderr


def predict(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    data: Data,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (.csv, .tsv or .parquet).")],
    id_column: Annotated[Optional[str], typer.Option("--id", help="Column of DATA to copy into the output.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on values that do not parse.")] = False,
    table: TableOpt = None,
    sql: SqlOpt = None,
    encoding: EncodingOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary (rows, output, notes) as one JSON object to stdout.")] = False,
    sep: SepOpt = None,
    decimal: DecimalOpt = None,
) -> None:
    """Predict every row of DATA (streamed in chunks) into OUTPUT."""
    from takeoff import api
    from takeoff.pipelines.prediction.batch import predict_file

    refuse_search_index(bundle, "predict")
    model = run(api.load, bundle)
    if is_recommender(model):
        fail(f"{bundle} is a recommender, which ranks items for users rather than predicting rows. "
             f"Fix: use `takeoff recommend {bundle} --user ID` (or --item ID for similar items).")
    with stdout_to_stderr(as_json):
        result = run(predict_file, model, data, output, id_column=id_column, table=table, sql=sql, encoding=encoding,
                     strict=strict, sep=sep, decimal=decimal)
    if as_json:
        emit_json({"output": str(output), **result})
        return
    for note in result["notes"]:
        err.print(f"note: {note}", highlight=False)
    out.print(f"{result['rows']} predictions written to {output} ({result['rows_per_second']:,.0f} rows/s)")
