"""One rank's share of a Parquet dataset, for data larger than one machine's memory.

Under ``torch.distributed`` each rank reads only its row groups: the dataset's row groups (over
all its files, in path order, then in file order) are dealt out round-robin, group ``i`` to rank
``i % world``. Nothing is read twice and no rank holds more than about ``1 / world`` of the rows.
Row groups are Parquet's unit of reading; write the data with several per rank (e.g.
``pyarrow.parquet.write_table(table, path, row_group_size=100_000)``) so the shares are even.

Example (inside a process of ``torchrun --nproc-per-node 4 train.py``)::

    from takeoff.data.sources.shards import read_parquet_shard
    from takeoff.training.distributed import rank_and_world

    rank, world = rank_and_world()
    frame = read_parquet_shard("data/events/", rank, world, columns=["user", "amount", "label"])
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from takeoff.errors import DataSourceError


def parquet_row_groups(path: str | Path) -> list[tuple[str, int, int]]:
    """(file, row group index, rows) of every row group of the Parquet file or folder ``path``,
    in the order shards deal them out.

    Raises:
        DataSourceError: ``path`` is missing or holds no readable Parquet file.
    """
    import pyarrow.dataset as ds

    source = Path(path)
    if not source.exists():
        raise DataSourceError(str(source), "no such Parquet file or folder", "check the path")
    try:
        dataset = ds.dataset(str(source), format="parquet")
        fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
        return [(f.path, g.id, g.num_rows) for f in fragments for g in f.row_groups]
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DataSourceError(str(source), f"cannot read it as Parquet ({error})", "give a Parquet file or a folder of them") from None


def read_parquet_shard(path: str | Path, rank: int, world: int, columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of rank ``rank``'s row groups (``i % world == rank``) of the Parquet file or
    folder ``path``, as a DataFrame with a fresh index.

    Args:
        path: a Parquet file, or a folder of them (read as one dataset).
        rank: this process's rank, 0 to ``world - 1``.
        world: the number of processes.
        columns: the columns to read; None reads them all.

    Raises:
        DataSourceError: unreadable ``path``, or fewer row groups than ranks (some rank would
            get no rows; the message says how many there are).
        ValueError: ``rank`` outside ``0..world-1``.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not 0 <= rank < world:
        raise ValueError(f"rank must be in 0..{world - 1}; received {rank}")
    groups = parquet_row_groups(path)
    if len(groups) < world:
        raise DataSourceError(str(path), f"has {len(groups)} row group(s), fewer than the {world} ranks reading it",
                              "write it with smaller row groups (row_group_size=...) or more files")
    mine = groups[rank::world]
    fragments = {f.path: f for f in ds.dataset(str(path), format="parquet").get_fragments()}
    tables = []
    for file in dict.fromkeys(p for p, _, _ in mine):  # each file once, its groups in order
        ids = [g for p, g, _ in mine if p == file]
        tables.append(fragments[file].subset(row_group_ids=ids).to_table(columns=columns))
    return pa.concat_tables(tables).to_pandas().reset_index(drop=True)
