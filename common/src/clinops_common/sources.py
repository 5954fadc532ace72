"""Where each batch table of the stroke cohort lives, and how to reach it (pure: no client imported).

A ``BatchSource`` names the table, its URI (never with credentials), its format, the column that holds
each row's time, and optionally the environment variable that holds the full connection URL with
credentials (on a cluster it comes from the pipeline's ``credentialsSecretRef``). The generator
writes to these places (``synthetic.source_sinks``) and the stroke job reads them through Spark
(``clinops_featurizer.sources``), both from the options built here.

URI forms:

- ``mongodb://host:port/<database>/<collection>`` (the document store; MongoDB or FerretDB);
- ``postgresql://host:port/<database>?table=<table>`` (read through the PostgreSQL JDBC driver);
- ``sqlserver://host:port/<database>?table=<schema.table>[&encrypt=true&trustServerCertificate=false]``
  (read through the Microsoft JDBC driver);
- ``s3a://bucket/prefix/`` (Parquet in the lake; ``s3://`` is accepted and read as ``s3a://``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from clinops_common.lake import BATCH_TIMESTAMPS, BatchTable, batch_path

# ndjson: the generator's export of the document store in the lake (the default source of demographics)
SourceFormat = Literal["mongodb", "postgres", "sqlserver", "parquet", "ndjson"]
JDBC_DRIVERS: dict[str, str] = {
    "postgres": "org.postgresql.Driver",
    "sqlserver": "com.microsoft.sqlserver.jdbc.SQLServerDriver",
}
# SQL Server connection properties passed through from the URI's query (anything else is refused).
SQLSERVER_PROPERTIES = ("encrypt", "trustServerCertificate", "hostNameInCertificate", "loginTimeout", "applicationName")


class SourceConfigError(ValueError):
    """A source's URI or format cannot be used (permanent: the spec is wrong)."""


class BatchSource(BaseModel):
    """One batch table of the stroke cohort and where it lives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: BatchTable = Field(description="Which table of the cohort this is.")
    uri: str = Field(min_length=1, description="Where the table lives, without credentials.")
    format: SourceFormat = Field(description="mongodb, postgres, sqlserver or parquet.")
    timestamp_column: str = Field(min_length=1, description="The column holding each row's time.")
    credentials_env: str | None = Field(
        None, description="Environment variable holding the full connection URL with credentials."
    )

    def connection_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The URL to connect with: the credentials variable's value if one is named, else ``uri``."""
        env = os.environ if environ is None else environ
        if self.credentials_env:
            value = env.get(self.credentials_env)
            if not value:
                raise SourceConfigError(
                    f"source {self.table} ({redact(self.uri)}): {self.credentials_env} is not set "
                    "(it holds the connection URL with credentials)"
                )
            return value
        return self.uri

    def describe(self) -> str:
        """``<table> (<uri without credentials>)``: what error messages name."""
        return f"{self.table} ({redact(self.uri)})"


def credentials_env_name(table: str) -> str:
    """``CLINOPS_SOURCE_<TABLE>_URL``: the variable the operator fills from a source's Secret."""
    return f"CLINOPS_SOURCE_{table.upper()}_URL"


def redact(uri: str) -> str:
    """The URI without user name or password (safe to log and to put in an error message)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def lake_sources(bucket: str) -> tuple[BatchSource, ...]:
    """The five tables as the generator's files in the lake (``batch/<table>/``): the default."""
    out = []
    for table, ts in BATCH_TIMESTAMPS.items():
        fmt: SourceFormat = "ndjson" if table == "demographics" else "parquet"
        out.append(BatchSource(table=table, uri=batch_path(bucket, table) + "/", format=fmt, timestamp_column=ts))
    return tuple(out)


def _expect_scheme(source: BatchSource, url: str, schemes: tuple[str, ...]) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        raise SourceConfigError(
            f"source {source.describe()}: format {source.format} needs a {' or '.join(schemes)}:// URI, got {scheme}://"
        )


def mongodb_location(source: BatchSource, url: str) -> tuple[str, str, str]:
    """``(connection URI, database, collection)`` from ``mongodb://[user:pw@]host:port/<db>/<collection>``."""
    _expect_scheme(source, url, ("mongodb", "mongodb+srv"))
    parts = urlsplit(url)
    path = [unquote(p) for p in parts.path.split("/") if p]
    if len(path) != 2:
        raise SourceConfigError(f"source {source.describe()}: a mongodb URI ends in /<database>/<collection>")
    connection = urlunsplit((parts.scheme, parts.netloc, "/", parts.query, ""))
    return connection, path[0], path[1]


def mongodb_options(source: BatchSource, url: str) -> dict[str, str]:
    """Options of the MongoDB Spark connector (format ``mongodb``).

    One partition: the default partitioner samples with ``$sample`` and ``$collStats``, which a
    MongoDB-compatible server (FerretDB) may not implement.
    """
    connection, database, collection = mongodb_location(source, url)
    return {
        "connection.uri": connection,
        "database": database,
        "collection": collection,
        "partitioner": "com.mongodb.spark.sql.connector.read.partitioner.SinglePartitionPartitioner",
    }


def jdbc_options(source: BatchSource, url: str) -> dict[str, str]:
    """Options of Spark's JDBC source for a ``postgresql://`` or ``sqlserver://`` URL (credentials as
    ``user``/``password`` options, never inside the JDBC URL)."""
    if source.format not in JDBC_DRIVERS:
        raise SourceConfigError(f"source {source.describe()}: format {source.format} is not read over JDBC")
    _expect_scheme(source, url, ("postgresql", "postgres") if source.format == "postgres" else ("sqlserver",))
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    table = query.pop("table", "")
    database = unquote(parts.path.strip("/"))
    if not table or not database or "/" in database:
        raise SourceConfigError(f"source {source.describe()}: the URI needs /<database>?table=<table>")
    host = parts.hostname or ""
    if not host:
        raise SourceConfigError(f"source {source.describe()}: the URI has no host")
    if source.format == "postgres":
        port = parts.port or 5432
        if query:
            raise SourceConfigError(f"source {source.describe()}: unknown URI parameters {sorted(query)}")
        jdbc_url = f"jdbc:postgresql://{host}:{port}/{database}"
    else:
        port = parts.port or 1433
        unknown = sorted(set(query) - set(SQLSERVER_PROPERTIES))
        if unknown:
            raise SourceConfigError(
                f"source {source.describe()}: unknown URI parameters {unknown}; allowed: {list(SQLSERVER_PROPERTIES)}"
            )
        props = {"databaseName": database, "encrypt": "true", "trustServerCertificate": "false", **query}
        jdbc_url = f"jdbc:sqlserver://{host}:{port};" + ";".join(f"{k}={v}" for k, v in props.items())
    options = {"url": jdbc_url, "dbtable": table, "driver": JDBC_DRIVERS[source.format], "fetchsize": "10000"}
    if parts.username:
        options["user"] = unquote(parts.username)
    if parts.password:
        options["password"] = unquote(parts.password)
    return options


def parquet_path(source: BatchSource, url: str) -> str:
    """The ``s3a://`` path of a Parquet (or NDJSON) source in S3."""
    _expect_scheme(source, url, ("s3a", "s3"))
    return "s3a://" + url.split("://", 1)[1]


# The names a FeaturePipeline's ``spec.sources.batch`` uses for the cohort's tables (the CRD's enum).
MANIFEST_TABLES: dict[str, BatchTable] = {
    "demographics": "demographics",
    "clinical_measurements": "clinical_measurements",
    "hospital_administration": "hospital_admin",
    "lifestyle": "lifestyle",
    "conditions_outcomes": "conditions",
}


def from_manifest(batch: Sequence[Mapping[str, object]]) -> tuple[BatchSource, ...]:
    """``spec.sources.batch`` entries -> sources; an entry with ``credentialsSecretRef`` reads its
    connection URL from ``CLINOPS_SOURCE_<TABLE>_URL`` (the operator fills it from the Secret)."""
    out = []
    for entry in batch:
        name = str(entry["name"])
        if name not in MANIFEST_TABLES:
            raise SourceConfigError(f"unknown batch source {name!r}; known: {sorted(MANIFEST_TABLES)}")
        table = MANIFEST_TABLES[name]
        fmt = str(entry["format"])
        if fmt not in ("mongodb", "postgres", "sqlserver", "parquet"):
            raise SourceConfigError(f"batch source {name}: format {fmt!r} is not read by the stroke job")
        out.append(
            BatchSource.model_validate(
                {
                    "table": table,
                    "uri": entry["uri"],
                    "format": fmt,
                    "timestamp_column": entry["timestampColumn"],
                    "credentials_env": credentials_env_name(table) if entry.get("credentialsSecretRef") else None,
                }
            )
        )
    return tuple(out)
