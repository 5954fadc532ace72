"""``python -m clinops_featurizer``: the featurizer's command line, locally and in a SparkApplication
(``spark-submit .../clinops_featurizer/__main__.py featurize``: the same entry point).

Settings come from ``CLINOPS_*`` variables (``Connections``); ``make env`` prints the local stack's.
"""

from __future__ import annotations

import signal
import sys
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import structlog
import typer
from rich.console import Console
from rich.table import Table

from clinops_common.cli import service_app
from clinops_common.features.definitions import FEATURE_SERVICES, FEATURE_VIEWS, PATIENT, feature_service
from clinops_common.settings import Connections

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

app = service_app(
    "clinops-featurizer",
    "Silver to features: offline store on S3, point-in-time training sets, Redis online store.",
    needs=["s3", "redis"],
)
console = Console(width=None if sys.stdout.isatty() else 160)
log = structlog.get_logger("clinops.featurizer")


def _session(conns: Connections, name: str) -> SparkSession:
    from clinops_common.spark import spark_session

    spark = spark_session(name, conns, extra_conf={"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"})
    spark.sparkContext.setLogLevel("ERROR")

    def stop(signum: int, _frame: FrameType | None) -> None:
        # The snapshot is published last (LATEST), so a run stopped here leaves only unlisted files.
        log.warning("stopping on signal", signal=signum)
        spark.stop()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    return spark


@app.command()
def catalogue(
    features: Annotated[
        bool, typer.Option("--features", help="List every feature with dtype and description.")
    ] = False,
) -> None:
    """Print the feature catalogue: the entity, the feature views and the feature services."""
    console.print(f"[bold]entity[/] {PATIENT.name} (join key {PATIENT.join_key}): {PATIENT.description}")
    views = Table("view", "source", "ttl", "features", "online", "schema", "description", title="feature views")
    for v in FEATURE_VIEWS.values():
        views.add_row(v.name, v.source, str(v.ttl), str(len(v.features)), str(v.online), v.schema_id, v.description)
    console.print(views)
    services = Table("service", "features", "views", "description", title="feature services")
    for s in FEATURE_SERVICES.values():
        services.add_row(s.name, str(len(s.refs)), ", ".join(s.views_used), s.description)
    console.print(services)
    if features:
        table = Table("view", "feature", "dtype", "description")
        for v in FEATURE_VIEWS.values():
            for f in v.features:
                table.add_row(v.name, f.name, f.dtype, f.description)
        console.print(table)


@app.command()
def featurize(
    start: Annotated[str | None, typer.Option(help="First day to featurize (ISO date or time; whole days).")] = None,
    end: Annotated[str | None, typer.Option(help="Featurize up to this day, exclusive (rounded up to a day).")] = None,
) -> None:
    """Silver -> the streaming feature views (and the label) -> a new offline-store snapshot.

    A snapshot replaces whole date partitions, so ``--start``/``--end`` are rounded out to whole days
    (an hourly run recomputes its day so far)."""
    from clinops_common.features.offline import OfflineStore
    from clinops_featurizer import adapters, core

    conns = Connections()
    spark = _session(conns, "clinops-featurize")
    b = conns.lake_bucket
    start, end = _whole_days(start, end)
    # steps from ``start`` need 24h of history before it (and admissions from the start of the stay)
    since = (datetime.fromisoformat(start) - timedelta(days=1)).date().isoformat() if start else None
    silver = {
        t: adapters.read_silver(spark, b, t, from_date=since if t != "admissions" else None)
        for t in ("measurements", "medications", "admissions", "outcomes")
    }
    try:
        demographics = adapters.read_batch(spark, b, "demographics")
        demographics.schema  # noqa: B018 - resolves the path now
    except Exception:  # no batch cohort: demographics stay null
        demographics = None
    views = core.streaming_features(
        silver["measurements"],
        silver["medications"],
        silver["admissions"],
        silver["outcomes"],
        demographics,
        start=start,
        end=end,
        all_measurements=adapters.read_silver(spark, b, "measurements").select("patient_id", "event_time"),
    )
    snap = adapters.write_views(OfflineStore.for_lake(conns), views)
    rows = sum(f.size for v in views for f in snap.files(v))
    log.info("featurized", snapshot=snap.snapshot_id, views=len(views))
    console.print(
        f"featurized {len(views)} views -> snapshot [bold]{snap.snapshot_id}[/] ({rows / 1e6:.2f} MB of files)"
    )


def _whole_days(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    def day(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)

    lo = day(start).isoformat() if start else None
    hi = None
    if end:
        t = datetime.fromisoformat(end).replace(tzinfo=None)
        hi = (day(end) + (timedelta(days=1) if t != day(end) else timedelta(0))).isoformat()
    return lo, hi


@app.command()
def stroke(
    as_of: Annotated[str | None, typer.Option(help="Reference date for ages and day counts (default: today).")] = None,
    sample_rows: Annotated[int, typer.Option(help="Rows in the CSV sample.")] = 100,
) -> None:
    """The stroke cohort: join the five batch tables, compute, verify (fails loudly), write Parquet,
    a CSV sample and a snapshot of the ``stroke_risk`` view."""
    from pyspark.sql import functions as F

    from clinops_common.features.offline import OfflineStore
    from clinops_common.lake import BATCH_TABLES, features_path
    from clinops_featurizer import adapters
    from clinops_featurizer.stroke import StrokeVerificationError, stroke_features, verify_stroke

    conns = Connections()
    spark = _session(conns, "clinops-stroke")
    ref = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
    tables = {t: adapters.read_batch(spark, conns.lake_bucket, t) for t in BATCH_TABLES}
    feats = stroke_features(tables, as_of=ref).cache()
    try:
        checks = verify_stroke(feats, tables["demographics"].select("patient_id").distinct().count())
    except StrokeVerificationError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from err
    feats.write.mode("overwrite").parquet(features_path(conns.lake_bucket, "stroke", "parquet"))
    (
        feats.orderBy("patient_id")
        .limit(sample_rows)
        .coalesce(1)
        .write.mode("overwrite")
        .option("header", True)
        .csv(features_path(conns.lake_bucket, "stroke", "sample_csv"))
    )
    snap = adapters.write_views(OfflineStore.for_lake(conns), {"stroke_risk": feats})
    n = feats.count()
    high = feats.filter(F.col("risk_category") == "high").count()
    console.print(
        f"stroke cohort: {n} patients ({high} high risk), {len(checks)} checks passed -> snapshot {snap.snapshot_id}"
    )


@app.command()
def materialize(
    incremental: Annotated[bool, typer.Option(help="Only files added since the last run.")] = False,
    snapshot: Annotated[str | None, typer.Option(help="Offline snapshot (default: latest).")] = None,
    end: Annotated[
        str | None, typer.Option(help="As-of time, ISO; 'data' = the latest step in the snapshot (default: now).")
    ] = None,
) -> None:
    """Offline store -> Redis: the latest row per patient and online view (TTL 48h on each key)."""
    from clinops_common.features.definitions import STREAMING_VIEWS
    from clinops_common.features.materialize import materialize as run
    from clinops_common.features.offline import OfflineStore
    from clinops_common.features.online import OnlineStore

    conns = Connections()
    offline = OfflineStore.for_lake(conns)
    as_of = None
    if end == "data":
        snap = offline.snapshot(snapshot)
        as_of = max(offline.read(v, snap, [])["event_timestamp"].max() for v in STREAMING_VIEWS).to_pydatetime()
    elif end:
        as_of = datetime.fromisoformat(end)
    result = run(
        offline,
        OnlineStore.from_url(conns.redis_url.get_secret_value()),
        snapshot=snapshot,
        end=as_of,
        incremental=incremental,
    )
    console.print(
        f"materialized snapshot {result.snapshot_id} as of {result.end:%Y-%m-%d %H:%M:%S}Z: {result.rows} rows, "
        f"{result.patients} patients in {result.seconds:.2f}s{' (incremental)' if result.incremental else ''}"
    )


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

    conns = Connections()
    store = OnlineStore.from_url(conns.redis_url.get_secret_value())
    if at:
        when = datetime.fromisoformat(store.state()["end"] if at == "materialized" else at).timestamp()
        store = OnlineStore(store.client, clock=lambda: when)
    if patient_id is None:
        keys = sorted(k.decode() for k in store.client.scan_iter(f"{store.prefix}:patient:*", count=1000))
        if not keys:
            console.print("[red]nothing materialized yet: run `python -m clinops_featurizer materialize`[/]")
            raise typer.Exit(1)
        patient_id = keys[0].rsplit(":", 1)[1]
    vec = store.get_online_features(feature_service(service), [patient_id])[0]
    present = {k: v for k, v in vec.features.items() if v is not None}
    console.print(f"[bold]{service}[/] for {patient_id}: {len(present)}/{len(vec.features)} features present")
    for k, v in list(present.items())[:show]:
        console.print(f"  {k} = {v}")
    for view, f in vec.freshness.items():
        state = "missing" if f.missing else "STALE (nulled)" if f.stale else "fresh"
        age = f"{f.age_s / 60:.0f} min old" if f.age_s is not None else "-"
        console.print(f"  freshness {view}: {state}, step {f.event_timestamp}, {age}")


@app.command("training-set")
def training_set(
    service: Annotated[str, typer.Option(help="Feature service.")] = "adverse_event_v1",
    snapshot: Annotated[str | None, typer.Option(help="Offline snapshot (default: latest).")] = None,
) -> None:
    """Build a point-in-time training set (every labelled step) and print its shape and snapshot id."""
    from clinops_common.features.definitions import LABEL_VIEW
    from clinops_common.features.offline import OfflineStore
    from clinops_common.features.training import build_training_set

    store = OfflineStore.for_lake(Connections())
    snap = store.snapshot(snapshot)
    entity = store.read(LABEL_VIEW, snap, [])[["patient_id", "event_timestamp"]]
    ts = build_training_set(entity, service, snap.snapshot_id, store=store, labels=("adverse_event_24h",))
    rate = ts.frame["adverse_event_24h"].mean() if len(ts.frame) else float("nan")
    console.print(
        f"training set {service}: {ts.shape[0]} rows x {ts.shape[1]} columns, snapshot {ts.snapshot_id}, "
        f"label rate {rate:.3f}"
    )


@app.command("sample-data")
def sample_data(
    if_missing: Annotated[bool, typer.Option(help="Only where no silver/batch data is there yet.")] = True,
) -> None:
    """Write the small hand-built silver and batch tables to the lake (a demo input before ingest runs)."""
    from clinops_common.lake import BATCH_SCHEMAS, SILVER_SCHEMAS, batch_path, silver_path
    from clinops_common.storage import s3_client
    from clinops_featurizer import sample

    conns = Connections()
    s3 = s3_client(conns)

    def exists(prefix: str) -> bool:
        return bool(s3.list_objects_v2(Bucket=conns.lake_bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"))

    todo = [
        (layer, table, rows)
        for layer, tables in (("silver", sample.tables()), ("batch", sample.batch_tables()))
        for table, rows in tables.items()
        if not (if_missing and exists(f"{layer}/{table}/"))
    ]
    if not todo:
        console.print("silver and batch tables present: kept")
        return
    from pyspark.sql import functions as F

    spark = _session(conns, "clinops-sample-data")
    for layer, table, rows in todo:
        ddl = (SILVER_SCHEMAS if layer == "silver" else BATCH_SCHEMAS)[table].replace(" NOT NULL", "")  # type: ignore[index]
        df = spark.createDataFrame(rows, ddl)
        if layer == "silver":
            path = silver_path(conns.lake_bucket, table)  # type: ignore[arg-type]
            df.withColumn("date", F.to_date("event_time")).write.mode("overwrite").partitionBy("date").parquet(path)
        elif table == "demographics":
            df.write.mode("overwrite").json(batch_path(conns.lake_bucket, table))  # type: ignore[arg-type]
        else:
            df.write.mode("overwrite").parquet(batch_path(conns.lake_bucket, table))  # type: ignore[arg-type]
        console.print(f"{layer}/{table}: wrote {len(rows)} sample rows")


if __name__ == "__main__":
    app()
