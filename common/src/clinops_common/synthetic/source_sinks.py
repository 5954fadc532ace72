"""``generate --upload --sources``: each batch table to its own system (document store, PostgreSQL, S3).

Each writer replaces the table (a re-run of the generator gives the same tables). SQL Server cannot
be written from here (no TDS server or driver on the development machines); point the hospital
administration source at PostgreSQL locally, where the stroke job reads it over the same JDBC path.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlsplit

from clinops_common.lake import BATCH_SCHEMAS, BatchTable, ddl_columns
from clinops_common.settings import Connections
from clinops_common.sources import BatchSource, SourceConfigError, jdbc_options, mongodb_location, parquet_path
from clinops_common.storage import s3_client
from clinops_common.synthetic.sinks import batch_table_bytes

SQL_TYPES = {"STRING": "TEXT", "DOUBLE": "DOUBLE PRECISION", "BOOLEAN": "BOOLEAN", "DATE": "DATE", "BIGINT": "BIGINT"}


def _bson_value(v: Any) -> Any:
    if isinstance(v, date) and not isinstance(v, datetime):
        return datetime.combine(v, time(), tzinfo=UTC)  # BSON has no date type
    return v


def write_mongodb(source: BatchSource, rows: list[dict[str, Any]]) -> str:
    import pymongo

    url = source.connection_url()
    connection, database, collection = mongodb_location(source, url)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(connection, serverSelectionTimeoutMS=10_000)
    try:
        coll = client[database][collection]
        coll.drop()
        if rows:
            coll.insert_many([{k: _bson_value(v) for k, v in r.items()} for r in rows], ordered=False)
    finally:
        client.close()
    return f"{len(rows)} documents -> {source.describe()}"


def _sqlalchemy_url(source: BatchSource, url: str) -> tuple[str, str]:
    opts = jdbc_options(source, url)
    parts = urlsplit(url)
    auth = f"{parts.username}:{parts.password}@" if parts.username else ""
    database = parts.path.strip("/")
    return f"postgresql+psycopg://{auth}{parts.hostname}:{parts.port or 5432}/{database}", opts["dbtable"]


def write_postgres(source: BatchSource, table: BatchTable, rows: list[dict[str, Any]]) -> str:
    import sqlalchemy as sa

    if source.format != "postgres":
        raise SourceConfigError(
            f"source {source.describe()}: the generator writes PostgreSQL only; a SQL Server table is loaded "
            "by the hospital's own tooling (the stroke job reads it over JDBC)"
        )
    sa_url, name = _sqlalchemy_url(source, source.connection_url())
    cols = ddl_columns(BATCH_SCHEMAS[table])
    ddl = ", ".join(f'"{c}" {SQL_TYPES[k]}{"" if nullable else " NOT NULL"}' for c, k, nullable in cols)
    engine = sa.create_engine(sa_url, poolclass=sa.NullPool)
    quoted = ".".join(f'"{p}"' for p in name.split("."))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {quoted}"))
            conn.execute(sa.text(f"CREATE TABLE {quoted} ({ddl})"))
            if rows:
                names = [c for c, _, _ in cols]
                columns = ", ".join(f'"{c}"' for c in names)
                params = ", ".join(f":{c}" for c in names)
                # identifiers from the contract's DDL; values are bound parameters
                insert = sa.text(f"INSERT INTO {quoted} ({columns}) VALUES ({params})")  # noqa: S608
                conn.execute(insert, [{c: r.get(c) for c in names} for r in rows])
    finally:
        engine.dispose()
    return f"{len(rows)} rows -> {source.describe()}"


def write_parquet(source: BatchSource, table: BatchTable, rows: list[dict[str, Any]], conns: Connections) -> str:
    path = parquet_path(source, source.connection_url()).removeprefix("s3a://")
    bucket, _, prefix = path.partition("/")
    key = f"{prefix.rstrip('/')}/part-00000.parquet".lstrip("/")
    if source.format == "ndjson":
        key = key.removesuffix(".parquet") + ".ndjson"
    body = batch_table_bytes(table, rows, force_parquet=source.format == "parquet")
    s3_client(conns).put_object(Bucket=bucket, Key=key, Body=body)
    return f"{len(rows)} rows -> {source.describe()}"


def upload_sources(
    batch: dict[BatchTable, list[dict[str, Any]]], sources: tuple[BatchSource, ...], conns: Connections
) -> list[str]:
    """Write every table that has a source to it; returns one line per table."""
    done = []
    for source in sources:
        rows = batch[source.table]
        if source.format == "mongodb":
            done.append(write_mongodb(source, rows))
        elif source.format in ("parquet", "ndjson"):
            done.append(write_parquet(source, source.table, rows, conns))
        else:
            done.append(write_postgres(source, source.table, rows))
    return done
