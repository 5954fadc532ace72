"""``python -m clinops_featurizer``: the featurizer's command line, locally and in a SparkApplication
(``mainApplicationFile`` = this module's file in the image: the same entry point).

Wiring only. The stage commands ``featurize``, ``stroke`` and ``materialize`` parse exactly their
contract models (``clinops_common.contracts``) and write their results to the lake; the work is in
``job``, the Spark session and SIGTERM in ``session``, what the inspection commands print in ``report``.
Endpoints come from ``CLINOPS_*`` variables (``Connections``); ``make env`` prints the local stack's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from clinops_common.cli import service_app
from clinops_common.contracts import (
    FeaturizeArgs,
    MaterializeArgs,
    StageResult,
    StrokeArgs,
    stage_command,
    write_result,
)
from clinops_common.logs import configure
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_featurizer import job, report, session
from clinops_featurizer.config import FeaturizerSettings
from clinops_featurizer.stream import __main__ as stream_main

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

app = service_app(
    "clinops-featurizer",
    "Silver to features: offline store on S3, point-in-time training sets, Redis online store.",
    needs=["s3", "redis"],
)
console = Console(width=None if sys.stdout.isatty() else 160)
R = TypeVar("R", bound=StageResult)
EXIT_REFUSED = 1


def _spark_stage(name: str, work: Callable[[SparkSession, Connections, session.Stop], R]) -> R:
    """Run a Spark stage: a session, SIGTERM handled, the result written to the lake."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    conns = Connections()
    spark, stop = session.start(conns, name, FeaturizerSettings())
    try:
        result = work(spark, conns, stop)
    except session.StopRequested as err:
        raise typer.Exit(128 + err.signum) from err
    except (PySparkException, Py4JError):
        if stop.signum is not None:  # the signal cancelled the running Spark job
            raise typer.Exit(128 + stop.signum) from None
        raise
    finally:
        spark.stop()
    write_result(s3_client(conns), conns.lake_bucket, result)
    return result


def featurize(args: FeaturizeArgs) -> None:
    configure("featurizer", pipeline=args.pipeline, run=args.run_id)
    try:
        job.check_definitions(args)
    except job.ArgumentsError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(EXIT_REFUSED) from err
    conns = Connections()
    fingerprint = job.input_fingerprint(conns, args)
    result = job.reusable(conns, args, fingerprint)
    if result is not None:
        write_result(s3_client(conns), conns.lake_bucket, result)
        console.print(
            f"silver, arguments and code unchanged since snapshot [bold]{result.snapshot_id}[/] was made: "
            "reused it, nothing computed (--recompute true computes anyway)"
        )
        return
    result = _spark_stage(
        "clinops-featurize",
        lambda spark, conns, stop: job.featurize(spark, conns, args, stop, fingerprint=fingerprint),
    )
    console.print(
        f"featurized {len(result.files)} views -> snapshot [bold]{result.snapshot_id}[/] "
        f"({result.bytes / 1e6:.2f} MB of files)"
    )


def stroke(args: StrokeArgs) -> None:
    from clinops_featurizer.sources import SourceError
    from clinops_featurizer.stroke import StrokeVerificationError

    configure("featurizer", pipeline=args.pipeline, run=args.run_id)
    try:
        result = _spark_stage("clinops-stroke", lambda spark, conns, stop: job.stroke(spark, conns, args, stop))
    except (StrokeVerificationError, SourceError, job.ArgumentsError) as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(EXIT_REFUSED) from err
    for table, counts in result.sources.items():
        console.print(
            f"  {table:<22} read {counts['read']}, kept {counts['kept']}, quarantined {counts['quarantined']}"
            + (f", skipped {counts['skipped']} (no admission)" if counts.get("skipped") else "")
        )
    console.print(
        f"stroke cohort: {result.patients} patients ({result.high_risk} high risk), {result.training_rows} training "
        f"rows, {result.checks} checks passed -> snapshot {result.snapshot_id}"
    )


def materialize(args: MaterializeArgs) -> None:
    configure("featurizer", pipeline=args.pipeline, run=args.run_id)
    conns = Connections()
    result = job.materialize(conns, args)
    write_result(s3_client(conns), conns.lake_bucket, result)
    console.print(
        f"materialized snapshot {result.snapshot_id} as of {result.as_of:%Y-%m-%d %H:%M:%S}Z: {result.rows} rows, "
        f"{result.patients} patients, keys expire after {result.key_ttl_hours}h"
        f"{' (incremental)' if result.incremental else ''}"
    )


stage_command(app, FeaturizeArgs, featurize)
stage_command(app, StrokeArgs, stroke)
stage_command(app, MaterializeArgs, materialize)


# the streaming featurizer's own command (``python -m clinops_featurizer.stream`` starts faster: no Spark imports)
app.command("stream")(stream_main.stream)


@app.command()
def catalogue(
    features: Annotated[
        bool, typer.Option("--features", help="List every feature with dtype and description.")
    ] = False,
) -> None:
    """Print the feature catalogue: the entity, the feature views and the feature services."""
    report.catalogue(console, features=features)


@app.command()
def online(
    patient_id: Annotated[str | None, typer.Argument(help="Patient id (default: the first one stored).")] = None,
    service: Annotated[str, typer.Option(help="Feature service.")] = "adverse_event_v1",
    at: Annotated[
        str | None,
        typer.Option(
            help="Read as if at this ISO time (TTL check); 'materialized' = the last run's as-of. Default: now."
        ),
    ] = None,
    show: Annotated[int, typer.Option(help="Features to print (non-null first).")] = 12,
) -> None:
    """Print one online feature vector with per-view freshness."""
    from clinops_common.features.online import OnlineStore

    store = OnlineStore.from_url(Connections().redis_url.get_secret_value())
    try:
        report.online_vector(console, store, service, patient_id, at=at, show=show)
    except report.NothingMaterialized as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from err


@app.command("training-set")
def training_set(
    service: Annotated[str, typer.Option(help="Feature service.")] = "adverse_event_v1",
    snapshot: Annotated[str | None, typer.Option(help="Offline snapshot (default: latest).")] = None,
) -> None:
    """Build a point-in-time training set (every labelled step) and print its shape and snapshot id."""
    from clinops_common.features.offline import OfflineStore

    report.training_set_shape(console, OfflineStore.for_lake(Connections()), service, snapshot)


@app.command("sample-data")
def sample_data(
    if_missing: Annotated[bool, typer.Option(help="Only where no silver/batch data is there yet.")] = True,
) -> None:
    """Write the small hand-built silver and batch tables to the lake (a demo input before ingest runs)."""
    from clinops_featurizer import sample

    conns = Connections()
    if if_missing and not sample.needed(conns):
        console.print("silver and batch tables present: kept")
        return
    spark, _ = session.start(conns, "clinops-sample-data", FeaturizerSettings())
    try:
        for line in sample.write_to_lake(spark, conns, if_missing=if_missing):
            console.print(f"wrote {line}")
    finally:
        spark.stop()


if __name__ == "__main__":
    app()
