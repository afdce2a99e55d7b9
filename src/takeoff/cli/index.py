"""`takeoff index`: a semantic search index of a text column, written as a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from takeoff.cli.options import Data, EncodingOpt, SqlOpt, TableOpt, default_run_dir
from takeoff.cli.output import err, out, run


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
        out_dir = default_run_dir(data, table, "index", "-index")
    source = data
    if table or sql or encoding:
        from takeoff.data.sources import read_table

        source = run(read_table, data, table=table, sql=sql, encoding=encoding)
    result = run(build_index, source, text, answer, encoder=encoder, out=out_dir, embed_encoder=embed_encoder)
    for note in result.notes:
        err.print(f"note: {note}", highlight=False)
    training, enc = result.manifest["training"], result.manifest["encoder"]
    out.print(f"indexed {len(result):,} texts of '{text}' with {enc['name']} ({result.manifest['search']['dim']} dims) "
              f"in {training['seconds']:.1f}s", highlight=False)
    out.print(f"bundle: {result.path}", highlight=False)
    out.print(f'next: takeoff search {result.path} "a question"', highlight=False)
