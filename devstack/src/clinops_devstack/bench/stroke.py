"""``make bench-stroke``: the stroke job end to end from its real sources, beside a plain Parquet read.

A throwaway stack (MinIO, PostgreSQL, FerretDB on free ports); the generator's cohort (default
100,000 patients) is written to each source as in the local stack (demographics to FerretDB, clinical
measurements and hospital administration to PostgreSQL, lifestyle and conditions as Parquet to MinIO)
and, for the reference, all five tables as Parquet to MinIO. Prints one ``name=value`` per line:

- ``rows``: source rows read (all five tables); ``load_s``: the generator's upload to the sources;
- ``sources_read_s``: Spark reads every table through its connector (MongoDB Spark connector,
  JDBC, s3a Parquet) and counts it; ``parquet_only_s``: the same tables from Parquet, same session;
  ``sources_vs_parquet_ratio`` (goal <= 3);
- ``stroke_job_s``: the stroke job end to end (read, clean, the seven views, verification, Parquet,
  CSV sample, snapshot); ``rows_per_s`` = rows / stroke_job_s.
"""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from clinops_common.contracts import StrokeArgs
from clinops_common.sources import BatchSource
from clinops_common.spark import spark_session
from clinops_common.synthetic.config import FaultRates, GeneratorConfig
from clinops_common.synthetic.generator import generate
from clinops_common.synthetic.source_sinks import upload_sources
from clinops_devstack.scratch import scratch_stack

app = typer.Typer(add_completion=False, help=__doc__)


def say(name: str, value: float | int | str) -> None:
    print(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}", flush=True)


@app.command()
def main(
    patients: Annotated[int, typer.Option(help="Stroke cohort size.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 3,
) -> None:
    from clinops_featurizer import job
    from clinops_featurizer.config import FeaturizerSettings
    from clinops_featurizer.session import Stop
    from clinops_featurizer.sources import read_source

    with scratch_stack(["minio", "postgres", "ferretdb"]) as s:
        conns = s.connections()
        pg = f"{s.host}:{s.ports.postgres}"
        auth = f"{s.user}:{s.password.get_secret_value()}"
        os.environ["CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL"] = f"postgresql://{auth}@{pg}/cohort?table=clinical"
        os.environ["CLINOPS_SOURCE_HOSPITAL_ADMIN_URL"] = f"postgresql://{auth}@{pg}/hospital?table=administration"
        lake = f"s3a://{s.lake_bucket}"
        sources = (
            BatchSource(
                table="demographics",
                uri=f"{s.mongodb_url()}cohort/demographics",
                format="mongodb",
                timestamp_column="registration_date",
            ),
            BatchSource(
                table="clinical_measurements",
                uri=f"postgresql://{pg}/cohort?table=clinical",
                format="postgres",
                timestamp_column="visit_date",
                credentials_env="CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL",
            ),
            BatchSource(
                table="hospital_admin",
                uri=f"postgresql://{pg}/hospital?table=administration",
                format="postgres",
                timestamp_column="admission_date",
                credentials_env="CLINOPS_SOURCE_HOSPITAL_ADMIN_URL",
            ),
            BatchSource(
                table="lifestyle", uri=f"{lake}/batch/lifestyle/", format="parquet", timestamp_column="survey_date"
            ),
            BatchSource(
                table="conditions", uri=f"{lake}/batch/conditions/", format="parquet", timestamp_column="recorded_at"
            ),
        )
        parquet = tuple(
            BatchSource(
                table=x.table, uri=f"{lake}/reference/{x.table}/", format="parquet", timestamp_column=x.timestamp_column
            )
            for x in sources
        )
        print(f"# generating a cohort of {patients} patients", flush=True)
        ds = generate(GeneratorConfig(patients=1, cohort=patients, days=1, seed=seed, faults=FaultRates.none()))
        rows = sum(len(r) for r in ds.batch.values())
        t0 = time.perf_counter()
        for line in upload_sources(ds.batch, sources, conns):
            print(f"# {line}", flush=True)
        say("load_s", time.perf_counter() - t0)
        upload_sources(ds.batch, parquet, conns)
        spark = spark_session(
            "clinops-bench-stroke", conns, settings=s.spark("local[2]"), extra_conf=FeaturizerSettings().spark_conf()
        )
        spark.sparkContext.setLogLevel("ERROR")
        try:
            read_source(spark, parquet[0])  # warm the session (JVM, s3a) before timing
            spark.catalog.clearCache()
            t0 = time.perf_counter()
            for x in parquet:
                read_source(spark, x)
            parquet_s = time.perf_counter() - t0
            spark.catalog.clearCache()
            t0 = time.perf_counter()
            for x in sources:
                read_source(spark, x)
            sources_s = time.perf_counter() - t0
            spark.catalog.clearCache()
            t0 = time.perf_counter()
            result = job.stroke(spark, conns, StrokeArgs(pipeline="bench", run_id="bench", sources=sources), Stop())
            job_s = time.perf_counter() - t0
        finally:
            spark.stop()
    say("rows", rows)
    say("patients", result.patients)
    say("training_rows", result.training_rows)
    say("sources_read_s", sources_s)
    say("parquet_only_s", parquet_s)
    say("sources_vs_parquet_ratio", sources_s / parquet_s)
    say("stroke_job_s", job_s)
    say("rows_per_s", rows / job_s)


if __name__ == "__main__":
    app()
