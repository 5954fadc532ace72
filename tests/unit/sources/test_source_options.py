"""What each batch source's URI turns into: Spark reader options, credentials kept out of URLs and messages."""

from __future__ import annotations

import pytest

from clinops_common.sources import (
    BatchSource,
    SourceConfigError,
    credentials_env_name,
    jdbc_options,
    lake_sources,
    mongodb_options,
    parquet_path,
    redact,
)
from clinops_devstack import components as comps
from clinops_devstack.settings import StackSettings


def source(uri: str, fmt: str, table: str = "hospital_admin", **kw: object) -> BatchSource:
    return BatchSource.model_validate(
        {"table": table, "uri": uri, "format": fmt, "timestamp_column": "admission_date", **kw}
    )


def test_sqlserver_uri_builds_the_microsoft_driver_options_with_tls_on_by_default() -> None:
    s = source("sqlserver://mssql.clinops:1433/hospital?table=dbo.administration", "sqlserver")
    opts = jdbc_options(s, "sqlserver://reader:p%40ss@mssql.clinops:1433/hospital?table=dbo.administration")
    assert opts == {
        "url": "jdbc:sqlserver://mssql.clinops:1433;databaseName=hospital;encrypt=true;trustServerCertificate=false",
        "dbtable": "dbo.administration",
        "driver": "com.microsoft.sqlserver.jdbc.SQLServerDriver",
        "fetchsize": "10000",
        "user": "reader",
        "password": "p@ss",
    }


def test_sqlserver_properties_pass_through_and_unknown_ones_are_refused() -> None:
    uri = "sqlserver://db:14330/h?table=adm&encrypt=false&trustServerCertificate=true&loginTimeout=5"
    opts = jdbc_options(source(uri, "sqlserver"), uri)
    assert opts["url"] == (
        "jdbc:sqlserver://db:14330;databaseName=h;encrypt=false;trustServerCertificate=true;loginTimeout=5"
    )
    assert not {"user", "password"} & set(opts)
    bad = "sqlserver://db/h?table=adm&integratedSecurity=true"
    with pytest.raises(SourceConfigError, match="integratedSecurity"):
        jdbc_options(source(bad, "sqlserver"), bad)
    with pytest.raises(SourceConfigError, match=r"hospital_admin \(sqlserver://db:1433/h\): the URI needs"):
        jdbc_options(source("sqlserver://db:1433/h", "sqlserver"), "sqlserver://db:1433/h")


def test_postgres_uri_builds_the_postgresql_driver_options() -> None:
    uri = "postgresql://127.0.0.1:15432/cohort?table=clinical_measurements"
    opts = jdbc_options(
        source(uri, "postgres", "clinical_measurements"),
        "postgresql://u:pw@127.0.0.1:15432/cohort?table=clinical_measurements",
    )
    assert opts["url"] == "jdbc:postgresql://127.0.0.1:15432/cohort"
    assert (opts["dbtable"], opts["driver"], opts["user"], opts["password"]) == (
        "clinical_measurements",
        "org.postgresql.Driver",
        "u",
        "pw",
    )


def test_a_jdbc_format_needs_its_own_scheme() -> None:
    uri = "postgresql://h:5432/db?table=t"
    with pytest.raises(SourceConfigError, match="sqlserver://"):
        jdbc_options(source(uri, "sqlserver"), uri)


def test_mongodb_uri_names_database_and_collection_and_reads_in_one_partition() -> None:
    s = source("mongodb://documents:27017/cohort/demographics", "mongodb", "demographics")
    opts = mongodb_options(s, "mongodb://app:secret@documents:27017/cohort/demographics?authSource=admin")
    assert opts["connection.uri"] == "mongodb://app:secret@documents:27017/?authSource=admin"
    assert (opts["database"], opts["collection"]) == ("cohort", "demographics")
    assert opts["partitioner"].endswith("SinglePartitionPartitioner")
    with pytest.raises(SourceConfigError, match="/<database>/<collection>"):
        mongodb_options(s, "mongodb://documents:27017/cohort")


def test_credentials_come_from_the_named_variable_and_never_reach_a_message() -> None:
    s = source("sqlserver://db:1433/h?table=a", "sqlserver", credentials_env=credentials_env_name("hospital_admin"))
    assert s.credentials_env == "CLINOPS_SOURCE_HOSPITAL_ADMIN_URL"
    assert s.connection_url({"CLINOPS_SOURCE_HOSPITAL_ADMIN_URL": "sqlserver://u:pw@db:1433/h?table=a"}).startswith(
        "sqlserver://u:pw@"
    )
    with pytest.raises(SourceConfigError, match="CLINOPS_SOURCE_HOSPITAL_ADMIN_URL is not set"):
        s.connection_url({})
    assert redact("postgresql://u:pw@h:5432/db?table=t") == "postgresql://h:5432/db?table=t"
    assert "pw" not in source("mongodb://u:pw@h:1/a/b", "mongodb").describe()


def test_lake_sources_are_the_generator_files_and_parquet_paths_read_as_s3a() -> None:
    srcs = {s.table: s for s in lake_sources("lake")}
    assert srcs["conditions"].timestamp_column == "recorded_at"
    assert parquet_path(srcs["lifestyle"], "s3://lake/batch/lifestyle/") == "s3a://lake/batch/lifestyle/"


def test_ferretdb_component_serves_the_mongodb_wire_protocol_on_its_port() -> None:
    s = StackSettings()
    comp = comps.BUILDERS["ferretdb"](s)
    assert comp.argv[0].endswith("ferretdb-v1.24.2/bin/ferretdb")
    assert comp.argv[comp.argv.index("--listen-addr") + 1] == f"127.0.0.1:{s.ports.ferretdb}"
    assert comp.argv[comp.argv.index("--handler") + 1] == "sqlite"
    assert comp.url == f"mongodb://127.0.0.1:{s.ports.ferretdb}"
