"""Counts per layer of the lake, without Spark (object listing and Parquet metadata)."""

from __future__ import annotations

from clinops_common.lake import key
from clinops_common.lifecycle.bucket import first_versions, read_first
from clinops_common.settings import Connections
from clinops_common.storage import s3_client, s3_filesystem

SILVER = ("measurements", "medications", "admissions", "outcomes", "quarantine")


def count_lines(conns: Connections, prefix: str) -> tuple[int, int]:
    """(names, lines) under a raw layer's prefix, each name counted by its first version (the record)."""
    s3 = s3_client(conns)
    firsts = first_versions(s3, conns.lake_bucket, prefix)
    return len(firsts), sum(read_first(s3, conns.lake_bucket, v).count(b"\n") for v in firsts.values())


def silver_rows(conns: Connections, table: str) -> int:
    import pyarrow.dataset as ds
    from pyarrow import fs

    s3 = s3_filesystem(conns)
    path = f"{conns.lake_bucket}/{key('silver', table)}"
    if s3.get_file_info(path).type == fs.FileType.NotFound:
        return 0
    dataset = ds.dataset(path, filesystem=s3, format="parquet", partitioning="hive", exclude_invalid_files=True)
    return int(dataset.count_rows())


def lake_summary(conns: Connections) -> dict[str, int]:
    out: dict[str, int] = {}
    for layer in ("bronze", "deadletter"):
        objects, lines = count_lines(conns, f"{layer}/")
        out[f"{layer} objects"] = objects
        out[f"{layer} events"] = lines
    for table in SILVER:
        out[f"silver {table} rows" if table != "quarantine" else "quarantine rows"] = silver_rows(conns, table)
    return out
