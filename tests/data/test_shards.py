"""Reading a Parquet dataset in shards per rank: every row once, about 1/world each."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from takeoff.data.sources.shards import parquet_row_groups, read_parquet_shard
from takeoff.errors import DataSourceError


def test_ranks_read_disjoint_row_groups_that_cover_the_dataset(credit_small, tmp_path):
    folder = tmp_path / "credit"
    folder.mkdir()
    # two files of 600 rows, 100 rows per row group: 12 groups dealt to 3 ranks
    for i in range(2):
        part = credit_small.iloc[i * 600 : (i + 1) * 600].reset_index(drop=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / f"part-{i}.parquet", row_group_size=100)
    assert len(parquet_row_groups(folder)) == 12
    shards = [read_parquet_shard(folder, rank, 3, columns=["Status", "Price", "Income"]) for rank in range(3)]
    assert [len(s) for s in shards] == [400, 400, 400]
    assert list(shards[0].columns) == ["Status", "Price", "Income"]
    together = pd.concat(shards).sort_values(["Price", "Income", "Status"]).reset_index(drop=True)
    expected = credit_small[["Status", "Price", "Income"]].sort_values(["Price", "Income", "Status"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, expected)
    # rank 1 took groups 1, 4, 7, 10: rows 100-199 first
    pd.testing.assert_frame_equal(shards[1].iloc[:100], credit_small[["Status", "Price", "Income"]].iloc[100:200].reset_index(drop=True))


def test_fewer_row_groups_than_ranks_and_missing_paths_are_named(credit_small, tmp_path):
    path = tmp_path / "one.parquet"
    pq.write_table(pa.Table.from_pandas(credit_small, preserve_index=False), path)
    with pytest.raises(DataSourceError, match=r"has 1 row group\(s\), fewer than the 2 ranks.*row_group_size"):
        read_parquet_shard(path, 0, 2)
    with pytest.raises(DataSourceError, match="no such Parquet file"):
        read_parquet_shard(tmp_path / "missing.parquet", 0, 1)
    with pytest.raises(ValueError, match=r"rank must be in 0\.\.1"):
        read_parquet_shard(path, 2, 2)
