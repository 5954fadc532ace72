"""``python -m clinops_processor``: the processor service's command line.

The same entry point runs locally and in a spark-operator SparkApplication (``mainApplicationFile``
= this module's file in the image). ``process`` parses exactly ``clinops_common.contracts.ProcessArgs``
and writes a ``ProcessResult`` to the lake; where Spark runs is ``CLINOPS_SPARK_MASTER`` (unset on a
cluster: spark-submit decides).
"""

from __future__ import annotations

import typer

from clinops_common.cli import service_app
from clinops_common.contracts import ProcessArgs, ProcessResult, stage_command, write_result
from clinops_common.logs import configure
from clinops_common.settings import Connections
from clinops_common.storage import s3_client

app = service_app(
    "clinops-processor",
    "Bronze to silver with PySpark: deduplicate, validate physiological ranges, standardise units, quarantine.",
    needs=["s3"],
)


def process(args: ProcessArgs) -> None:
    import time

    from clinops_common.spark import spark_session
    from clinops_processor import job
    from clinops_processor.config import ProcessorSettings
    from clinops_processor.metrics import ProcessorMetrics

    log = configure("processor", pipeline=args.pipeline, run=args.run_id)
    conns = Connections()
    settings = ProcessorSettings()
    metrics = ProcessorMetrics()
    started = time.monotonic()
    try:
        if not args.full and not args.dates and job.nothing_new(conns):
            result = job.RunResult(0, 0, [], time.monotonic() - started)  # no Spark for nothing
        else:
            spark = spark_session("clinops-processor", conns, extra_conf=settings.spark_conf())
            try:
                result = job.run(spark, conns, only_dates=set(args.dates) or None, full=args.full)
            finally:
                spark.stop()
    except BaseException:
        metrics.record_failure(time.monotonic() - started)
        if settings.metrics_file:
            metrics.write(settings.metrics_file)
        raise
    metrics.record(
        new_objects=result.new_objects,
        objects_read=result.objects_read,
        dates=len(result.dates),
        seconds=result.seconds,
    )
    if settings.metrics_file:
        metrics.write(settings.metrics_file)
    log.info(
        "processed",
        new_objects=result.new_objects,
        objects_read=result.objects_read,
        dates=result.dates,
        seconds=round(result.seconds, 1),
    )
    out = ProcessResult(
        pipeline=args.pipeline,
        run_id=args.run_id,
        new_objects=result.new_objects,
        objects_read=result.objects_read,
        dates=tuple(result.dates),
    )
    write_result(s3_client(conns), conns.lake_bucket, out)
    typer.echo(out.model_dump_json())


stage_command(app, ProcessArgs, process)


@app.command()
def summary() -> None:
    """Count what each layer of the lake holds: bronze and dead-letter lines, silver and quarantine rows."""
    from clinops_processor.summary import lake_summary

    conns = Connections()
    counts = lake_summary(conns)
    for layer, value in counts.items():
        typer.echo(f"{layer:<24} {value}")
    typer.echo(f"look at them: s3://{conns.lake_bucket}/{{bronze,deadletter,silver}}/ on {conns.s3_endpoint_url}")


if __name__ == "__main__":
    app()
