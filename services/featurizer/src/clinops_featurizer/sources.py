"""Spark reads of the stroke cohort's sources: the MongoDB Spark connector, JDBC (PostgreSQL, SQL
Server), Parquet on S3. Every source comes back with the contract's columns (lake.BATCH_SCHEMAS) and
types; a value of the wrong type becomes null and its row is marked in ``_bad_type`` (quarantined by
the job). A source that cannot be reached or lacks a column fails with ``SourceError`` naming the
source and its URI without credentials.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from clinops_common.lake import BATCH_SCHEMAS, BATCH_TIMESTAMPS, ddl_columns
from clinops_common.sources import BatchSource, SourceConfigError, jdbc_options, mongodb_options, parquet_path

BAD_TYPE = "_bad_type"
SPARK_TYPES = {"STRING": "string", "DOUBLE": "double", "BOOLEAN": "boolean", "DATE": "date", "BIGINT": "bigint"}


class SourceError(RuntimeError):
    """A source could not be read (unreachable, missing table or column); the message names it."""


def _scrub(message: str, url: str) -> str:
    """The first lines of an error, with the connection URL's password taken out."""
    password = urlsplit(url).password
    text = "\n".join(message.strip().splitlines()[:3])
    return text.replace(password, "***") if password else text


def _raw(spark: SparkSession, source: BatchSource, url: str) -> DataFrame:
    ddl = BATCH_SCHEMAS[source.table].replace(" NOT NULL", "")
    if source.format == "mongodb":
        # An explicit schema: inference samples with $sample, which FerretDB may lack.
        ts = BATCH_TIMESTAMPS[source.table]
        schema = ddl if source.timestamp_column == ts else ddl.replace(f"{ts} ", f"{source.timestamp_column} ", 1)
        return spark.read.format("mongodb").schema(schema).options(**mongodb_options(source, url)).load()
    if source.format == "parquet":
        return spark.read.parquet(parquet_path(source, url))
    if source.format == "ndjson":
        return spark.read.schema(ddl).json(parquet_path(source, url))
    return spark.read.format("jdbc").options(**jdbc_options(source, url)).load()


def conform(source: BatchSource, raw: DataFrame) -> DataFrame:
    """The contract's columns and types; wrong-typed values -> null, named in ``_bad_type``."""
    ts = BATCH_TIMESTAMPS[source.table]
    df = raw
    if source.timestamp_column not in df.columns:
        raise SourceError(
            f"source {source.describe()}: missing timestamp column {source.timestamp_column!r}; "
            f"it has {sorted(df.columns)}"
        )
    if source.timestamp_column != ts:
        df = df.withColumnRenamed(source.timestamp_column, ts)
    cols = ddl_columns(BATCH_SCHEMAS[source.table])
    missing = [c for c, _, _ in cols if c not in df.columns]
    if ts in missing and source.timestamp_column != ts:
        missing = [source.timestamp_column if c == ts else c for c in missing]
    if missing:
        what = ", ".join(f"timestamp column {c!r}" if c in (ts, source.timestamp_column) else repr(c) for c in missing)
        raise SourceError(f"source {source.describe()}: missing {what}; it has {sorted(df.columns)}")
    typed = [F.col(c).try_cast(SPARK_TYPES[k]).alias(c) for c, k, _ in cols]
    bad = [F.when(F.col(c).isNotNull() & F.col(c).try_cast(SPARK_TYPES[k]).isNull(), F.lit(c)) for c, k, _ in cols]
    return df.select(*typed, F.concat_ws(",", *bad).alias(BAD_TYPE))


def read_source(spark: SparkSession, source: BatchSource) -> tuple[DataFrame, int]:
    """The source's rows (cached) and their count; errors name the source."""
    try:
        url = source.connection_url()
        df = conform(source, _raw(spark, source, url)).cache()
        rows = df.count()
    except SourceConfigError as err:
        raise SourceError(str(err)) from None
    except (PySparkException, Py4JError) as err:
        raise SourceError(
            f"source {source.describe()} could not be read ({source.format}): {_scrub(str(err), url)}"
        ) from None
    return df, rows
