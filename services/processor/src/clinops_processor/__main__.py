"""``python -m clinops_processor``: the processor service's command line.

The same entry point runs locally (``--master local[2]``) and in a spark-operator SparkApplication
(``mainApplicationFile`` = this module's file, ``arguments: [process]``, ``--master ""`` so that
spark-submit decides).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated

import typer

from clinops_common.cli import service_app
from clinops_common.logs import configure
from clinops_common.settings import Connections

app = service_app(
    "clinops-processor",
    "Bronze to silver with PySpark: deduplicate, validate physiological ranges, standardise units, quarantine.",
    needs=["s3"],
)

Master = Annotated[str, typer.Option(help='Spark master; "" lets spark-submit decide (on a cluster).')]


@app.command()
def process(
    dates: Annotated[
        list[datetime] | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="Recompute this event date (repeatable)."),
    ] = None,
    full: Annotated[bool, typer.Option(help="Ignore the state: recompute every date from all of bronze.")] = False,
    master: Master = "local[2]",
) -> None:
    """Process bronze objects not yet processed (and any --date again) into silver and quarantine."""
    from clinops_common.spark import spark_session
    from clinops_processor import job

    log = configure("processor")
    conns = Connections()
    spark = spark_session("clinops-processor", conns, master=master or None, extra_conf=job.SPARK_CONF)
    only: set[date] | None = {d.date() for d in dates} if dates else None
    try:
        result = job.run(spark, conns, only_dates=only, full=full)
    finally:
        spark.stop()
    log.info(
        "processed",
        new_objects=result.new_objects,
        objects_read=result.objects_read,
        dates=result.dates,
        seconds=round(result.seconds, 1),
    )
    typer.echo(
        json.dumps({"new_objects": result.new_objects, "objects_read": result.objects_read, "dates": result.dates})
    )


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
