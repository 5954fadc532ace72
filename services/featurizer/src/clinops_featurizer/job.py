"""The featurizer's stages, one function each: arguments (the contract) in, a result out.

``featurize``: silver -> the streaming feature views and the label -> an offline-store snapshot
(``reusable`` first: the latest snapshot, when it was made from the same inputs);
``stroke``: the five batch tables -> verified stroke features -> Parquet, a CSV sample, a snapshot;
``materialize``: an offline snapshot -> Redis, every key expiring after the pipeline's key TTL.
The caller (``__main__``) builds the SparkSession; these functions do not print.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from clinops_common.contracts import (
    FeaturizeArgs,
    FeaturizeResult,
    MaterializeArgs,
    MaterializeResult,
    StrokeArgs,
    StrokeResult,
)
from clinops_common.features.definitions import LABEL_HORIZON_HOURS, LABEL_VIEW, STREAMING_VIEWS, WINDOWS
from clinops_common.features.offline import OfflineStore, Snapshot, SnapshotNotFound
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_featurizer import adapters, inputs
from clinops_featurizer.config import FeaturizerSettings
from clinops_featurizer.session import Stop, sql_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class ArgumentsError(ValueError):
    """The stage was asked for something its feature definitions do not compute (permanent)."""


def check_definitions(args: FeaturizeArgs) -> None:
    """The windows and label horizon are the feature definitions'; another set needs a new service version."""
    if set(args.windows) != set(WINDOWS):
        raise ArgumentsError(f"--windows {list(args.windows)}: the feature definitions compute {list(WINDOWS)}")
    if args.label_horizon_hours != LABEL_HORIZON_HOURS:
        raise ArgumentsError(
            f"--label-horizon-hours {args.label_horizon_hours}: the label view's is {LABEL_HORIZON_HOURS}"
        )


def whole_days(start: datetime | None, end: datetime | None) -> tuple[str | None, str | None]:
    """``start`` rounded down and ``end`` rounded up to whole days (naive UTC ISO strings)."""

    def day(t: datetime) -> datetime:
        return _naive(t).replace(hour=0, minute=0, second=0, microsecond=0)

    lo = day(start).isoformat() if start else None
    hi = None
    if end:
        hi = (day(end) + (timedelta(days=1) if _naive(end) != day(end) else timedelta(0))).isoformat()
    return lo, hi


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


# The views a featurize run writes (``core.streaming_features``' keys).
FEATURIZED = tuple(v.name for v in (*STREAMING_VIEWS, LABEL_VIEW))


def input_fingerprint(conns: Connections, args: FeaturizeArgs) -> str:
    """The fingerprint of what a featurize run with ``args`` would read now (a listing; no Spark)."""
    return inputs.fingerprint(args, inputs.lake_objects(s3_client(conns), conns.lake_bucket), inputs.code_identity())


def reusable(conns: Connections, args: FeaturizeArgs, fingerprint: str) -> FeaturizeResult | None:
    """The latest snapshot as this run's result when it was made from the same inputs, else None
    (also with ``args.recompute``)."""
    if args.recompute:
        return None
    try:
        snap = OfflineStore.for_lake(conns).snapshot()  # the latest
    except SnapshotNotFound:
        return None
    return _result(args, snap, reused=True) if snap.inputs == fingerprint else None


def _result(args: FeaturizeArgs, snap: Snapshot, *, reused: bool = False) -> FeaturizeResult:
    return FeaturizeResult(
        pipeline=args.pipeline,
        run_id=args.run_id,
        snapshot_id=snap.snapshot_id,
        files={v: len(snap.files(v)) for v in FEATURIZED},
        bytes=sum(f.size for v in FEATURIZED for f in snap.files(v)),
        reused=reused,
    )


def featurize(
    spark: SparkSession,
    conns: Connections,
    args: FeaturizeArgs,
    stop: Stop,
    settings: FeaturizerSettings | None = None,
    *,
    fingerprint: str = "",
) -> FeaturizeResult:
    """A snapshot replaces whole date partitions, so ``start``/``end`` are rounded out to whole days
    (an hourly run recomputes its day so far). The plans run under the featurizer's SQL settings
    (``settings``, default from the environment), whoever built the session. The snapshot records
    ``fingerprint`` (``input_fingerprint``, taken before anything was read) so a later run of the
    same inputs can reuse it."""
    check_definitions(args)
    with sql_conf(spark, (settings or FeaturizerSettings()).sql_conf()):
        return _featurize(spark, conns, args, stop, fingerprint)


def _featurize(
    spark: SparkSession, conns: Connections, args: FeaturizeArgs, stop: Stop, fingerprint: str
) -> FeaturizeResult:
    from clinops_featurizer import core

    b = conns.lake_bucket
    start, end = whole_days(args.start, args.end)
    # steps from ``start`` need 24h of history before it (and admissions from the start of the stay)
    since = (datetime.fromisoformat(start) - timedelta(days=1)).date().isoformat() if start else None
    silver = {
        t: adapters.read_silver(spark, b, t, from_date=since if t != "admissions" else None)
        for t in inputs.SILVER_TABLES  # what the input fingerprint lists
    }
    views = core.streaming_features(
        silver["measurements"],
        silver["medications"],
        silver["admissions"],
        silver["outcomes"],
        adapters.read_batch_if_present(spark, b, inputs.BATCH_TABLE),  # no batch cohort: demographics stay null
        start=start,
        end=end,
        all_measurements=adapters.read_silver(spark, b, "measurements").select("patient_id", "event_time"),
    )
    stop.check()
    assert set(views) == set(FEATURIZED), list(views)
    snap = adapters.write_views(OfflineStore.for_lake(conns), views, before_commit=stop.check, inputs=fingerprint)
    return _result(args, snap)


def stroke_output_uri(bucket: str, pipeline: str, run_id: str, write_id: str) -> str:
    """The folder of one stroke run's output (``parquet/``, ``sample_csv/``, ``quarantine/``):
    ``features/stroke/<pipeline>/run=<run id>/write=<write id>/``, written once. The write id makes
    it new even when a run id comes again (a retried stage), so Hadoop's plain committer is safe in
    it (``OfflineStore.write_uri`` says why); the lake's ``clinops-stroke`` rule expires it by age.
    Readers find a run's folder in its result (``StrokeResult.output``), never by listing."""
    for part, what in ((pipeline, "pipeline"), (run_id, "run id")):
        if not part or "/" in part:
            raise ArgumentsError(f"{what} {part!r} cannot name a lake folder")
    from clinops_common.lake import features_path

    return features_path(bucket, "stroke", pipeline, f"run={run_id}", f"write={write_id}") + "/"


def stroke(spark: SparkSession, conns: Connections, args: StrokeArgs, stop: Stop) -> StrokeResult:
    """Raises ``SourceError`` naming an unreadable source, ``StrokeVerificationError`` with every failed
    check; writes nothing then (quarantined rows are written only with a snapshot). The run's Parquet,
    CSV sample and quarantine go to a folder of its own (``stroke_output_uri``)."""
    from pyspark.sql import functions as F

    from clinops_common.features.definitions import STROKE_LABEL_VIEW, STROKE_VIEW
    from clinops_common.features.offline import new_snapshot_id
    from clinops_common.sources import lake_sources
    from clinops_featurizer.sources import read_source
    from clinops_featurizer.stroke import clean, stroke_views, verify_stroke

    ref = args.as_of or datetime.now(UTC).date()
    out = stroke_output_uri(conns.lake_bucket, args.pipeline, args.run_id, new_snapshot_id())
    sources = {s.table: s for s in (args.sources or lake_sources(conns.lake_bucket))}
    missing = sorted(
        {"demographics", "clinical_measurements", "hospital_admin", "lifestyle", "conditions"} - set(sources)
    )
    if missing:
        raise ArgumentsError(f"--sources names no source for {missing}")
    cleaned = {}
    for table, source in sources.items():
        df, _ = read_source(spark, source)
        cleaned[table] = clean(table, df)
        stop.check()
    tables = {t: c.rows for t, c in cleaned.items()}
    views = {name: df.cache() for name, df in stroke_views(tables, as_of=ref).items()}
    checks = verify_stroke(views, tables["demographics"].select("patient_id").distinct().count())
    stop.check()
    risk = views[STROKE_VIEW.name]
    latest = risk.filter(F.col("event_timestamp") == F.lit(ref).cast("timestamp"))
    latest.write.mode("errorifexists").parquet(f"{out}parquet")
    (
        latest.orderBy("patient_id")
        .limit(args.sample_rows)
        .coalesce(1)
        .write.mode("errorifexists")
        .option("header", True)
        .csv(f"{out}sample_csv")
    )
    quarantine = None
    for c in cleaned.values():
        quarantine = c.quarantine if quarantine is None else quarantine.unionByName(c.quarantine)
    if quarantine is not None:
        quarantine.withColumn("run_id", F.lit(args.run_id)).write.mode("errorifexists").parquet(f"{out}quarantine")
    snap = adapters.write_views(OfflineStore.for_lake(conns), views, before_commit=stop.check, whole=True)
    return StrokeResult(
        pipeline=args.pipeline,
        run_id=args.run_id,
        snapshot_id=snap.snapshot_id,
        output=out,
        patients=latest.count(),
        high_risk=latest.filter(F.col("risk_category") == "high").count(),
        checks=len(checks),
        sources={t: c.counts for t, c in cleaned.items()},
        training_rows=views[STROKE_LABEL_VIEW.name].count(),
    )


def materialize(conns: Connections, args: MaterializeArgs) -> MaterializeResult:
    """The latest row per patient and online view into Redis; each key expires ``key_ttl_hours`` after its write."""
    from clinops_common.features.materialize import materialize as run
    from clinops_common.features.online import OnlineStore

    offline = OfflineStore.for_lake(conns)
    as_of: datetime | None = None
    if args.end == "data":
        snap = offline.snapshot(args.snapshot_id)
        as_of = max(offline.read(v, snap, [])["event_timestamp"].max() for v in STREAMING_VIEWS).to_pydatetime()
    elif isinstance(args.end, datetime):
        as_of = args.end
    online = OnlineStore.from_url(conns.redis_url.get_secret_value(), key_ttl=timedelta(hours=args.key_ttl_hours))
    done = run(offline, online, snapshot=args.snapshot_id, end=as_of, incremental=args.incremental)
    return MaterializeResult(
        pipeline=args.pipeline,
        run_id=args.run_id,
        snapshot_id=done.snapshot_id,
        as_of=done.end,
        rows=done.rows,
        patients=done.patients,
        key_ttl_hours=args.key_ttl_hours,
        incremental=done.incremental,
    )
