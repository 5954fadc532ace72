"""Spark I/O of the featurizer: silver and batch tables in, offline-store snapshots out."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from clinops_common.features.definitions import EVENT_TIMESTAMP
from clinops_common.features.offline import WHOLE_VIEW, DataFile, OfflineStore, Snapshot, new_snapshot_id
from clinops_common.lake import BATCH_SCHEMAS, SILVER_SCHEMAS, BatchTable, SilverTable, batch_path, silver_path


def _ddl(ddl: str) -> str:
    return ddl.replace(" NOT NULL", "")


def read_silver(spark: SparkSession, bucket: str, table: SilverTable, *, from_date: str | None = None) -> DataFrame:
    """A silver table (its date partitions from ``from_date`` on, or all); empty, with the contract's
    columns, if none is written yet."""
    try:
        df = spark.read.schema(_ddl(SILVER_SCHEMAS[table]) + ", date DATE").parquet(silver_path(bucket, table))
    except AnalysisException as err:
        if "PATH_NOT_FOUND" not in str(err):
            raise
        return spark.createDataFrame([], _ddl(SILVER_SCHEMAS[table]))
    if from_date:
        df = df.filter(F.col("date") >= F.lit(from_date).cast("date"))  # partition pruning
    return df.drop("date")


def read_batch(spark: SparkSession, bucket: str, table: BatchTable) -> DataFrame:
    """A batch table of the stroke cohort: demographics as NDJSON, the others as Parquet."""
    path = batch_path(bucket, table)
    reader = spark.read.schema(_ddl(BATCH_SCHEMAS[table]))
    return reader.json(path) if table == "demographics" else reader.parquet(path)


def read_batch_if_present(spark: SparkSession, bucket: str, table: BatchTable) -> DataFrame | None:
    """A batch table, or None when the lake has none (a streaming-only deployment)."""
    try:
        df = read_batch(spark, bucket, table)
        df.schema  # noqa: B018 - resolves the path now
    except AnalysisException as err:
        if "PATH_NOT_FOUND" not in str(err):
            raise
        return None
    return df


# Batch views (the stroke cohort) are recomputed whole by each run: one partition, ``date=all``
# (offline.WHOLE_VIEW), so a snapshot's files replace all of the view's earlier ones (and a view
# spanning years is a few files, not one per day).


def write_views(
    store: OfflineStore,
    views: dict[str, DataFrame],
    *,
    before_commit: Callable[[], None] = lambda: None,
    whole: bool = False,
    inputs: str = "",
) -> Snapshot:
    """Write each view's rows as new files under ``<view>/write=<new id>/date=...`` (``date=all`` with
    ``whole``) and commit one snapshot in which they replace the earlier files of the same dates
    (``before_commit`` may still refuse), recording ``inputs`` (the fingerprint of what was read).
    The write's folder is new (``OfflineStore.write_uri``: why the plain committer is safe there),
    and its files are the ones listed under it."""
    write_id = new_snapshot_id()
    added: dict[str, list[DataFile]] = {}
    for name, df in views.items():
        part = F.lit(WHOLE_VIEW) if whole else F.date_format(EVENT_TIMESTAMP, "yyyy-MM-dd")
        (
            df.withColumn("date", part)
            .repartition("date")
            .write.mode("errorifexists")
            .partitionBy("date")
            .parquet(store.write_uri(name, write_id))
        )
        added[name] = list(store.list_files(name, write_id).values())
    before_commit()
    return store.commit(added, inputs=inputs)
