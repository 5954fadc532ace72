"""One processor run: find new bronze objects, recompute the silver dates they touch, record them.

Incremental and idempotent:

- The state object (``state/processor/bronze-objects.json``) lists every bronze object processed and
  the event dates it holds. A run reads only objects not listed (new ones, including new objects in
  hours processed before), finds the event dates they touch, and recomputes those dates from every
  bronze object that holds them (so late data lands in its own date, deduplicated against what
  came before).
- Each touched date's partition of every silver table (and of quarantine) is replaced as a whole
  (dynamic partition overwrite); re-running a date gives the same rows. The state is written last:
  a crash before that repeats the same work on the next run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from clinops_common.lake import SilverTable, key, silver_path, state_key
from clinops_common.lifecycle.bucket import FirstVersion, first_versions, read_first
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_processor.config import ProcessorSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pyspark.sql import SparkSession

STATE_KEY = state_key("processor", "bronze-objects.json")
# Spark settings the processor wants on top of clinops_common.spark's, at their defaults (a run takes
# them from its ProcessorSettings; tests and benches that drive ``run`` directly use these).
SPARK_CONF = ProcessorSettings.model_construct().spark_conf()


@dataclass
class State:
    """Bronze objects already processed → the event dates (YYYY-MM-DD) each holds."""

    objects: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, s3: S3Client, bucket: str) -> State:
        try:
            body = s3.get_object(Bucket=bucket, Key=STATE_KEY)["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return cls()
            raise
        return cls(objects=json.loads(body)["objects"])

    def save(self, s3: S3Client, bucket: str) -> None:
        body = json.dumps({"version": 1, "objects": self.objects}, sort_keys=True).encode()
        s3.put_object(Bucket=bucket, Key=STATE_KEY, Body=body)


def list_bronze(s3: S3Client, bucket: str) -> dict[str, FirstVersion]:
    """Every bronze name and its first version: the record, even where a later PUT replaced the
    current version or a DELETE hid the name behind a delete marker (object lock keeps every version)."""
    return {k: v for k, v in sorted(first_versions(s3, bucket, "bronze/").items()) if k.endswith(".ndjson")}


def split_lines(body: bytes) -> list[str]:
    """An object's lines as Spark's text reader splits them (``\\n``, ``\\r\\n``; no trailing empty line)."""
    lines = body.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def plan(
    state: State, bronze: list[str], new_dates: dict[str, set[str]], only_dates: set[str] | None
) -> tuple[set[str], list[str]]:
    """(dates to recompute, bronze objects to read). Pure: ``new_dates`` maps each new object to its dates."""
    dates: set[str] = set().union(*new_dates.values()) if new_dates else set()
    if only_dates is not None:
        dates |= only_dates
    objects = [k for k in bronze if k in new_dates or set(state.objects.get(k, ())) & dates]
    return dates, objects


def nothing_new(conns: Connections) -> bool:
    """Every bronze object is in the state already: a run (without ``dates`` or ``full``) would read
    nothing, so its caller need not start Spark."""
    s3 = s3_client(conns)
    done = State.load(s3, conns.lake_bucket).objects
    return all(k in done for k in list_bronze(s3, conns.lake_bucket))


@dataclass
class RunResult:
    new_objects: int
    objects_read: int
    dates: list[str]
    seconds: float


def run(
    spark: SparkSession, conns: Connections, *, only_dates: set[date] | None = None, full: bool = False
) -> RunResult:
    """Process what is new (or ``only_dates`` again, or everything with ``full``)."""
    from pyspark.sql import functions as F

    from clinops_processor import core

    t0 = time.monotonic()
    s3 = s3_client(conns)
    bucket = conns.lake_bucket
    state = State() if full else State.load(s3, bucket)
    firsts = list_bronze(s3, bucket)
    bronze = list(firsts)
    new = [k for k in bronze if k not in state.objects]

    def uri(k: str) -> str:
        return f"s3a://{bucket}/{key(k)}"

    def read(keys: list[str]) -> Any:
        # The first version of each name is the record. Where it is still the current one (always, but
        # for a name someone rewrote or deleted), s3a reads it: listing folders is one request each,
        # naming hundreds of objects costs a few each, so read the (topic, date) folders that hold
        # them and keep the objects asked for. A replaced name's first version is read by its id.
        plain = [k for k in keys if firsts[k].current]
        replaced = [k for k in keys if not firsts[k].current]
        parts = []
        if plain:
            folders = sorted({k.rsplit("/", 2)[0] for k in plain})
            lines = spark.read.text([uri(f) for f in folders], recursiveFileLookup=True, pathGlobFilter="*.ndjson")
            lines = lines.withColumn("file", F.input_file_name())
            if set(plain) != {k for k in bronze if k.rsplit("/", 2)[0] in folders}:
                lines = lines.where(F.col("file").isin([uri(k) for k in plain]))
            parts.append(lines)
        if replaced:
            rows = [(line, uri(k)) for k in replaced for line in split_lines(read_first(s3, bucket, firsts[k]))]
            parts.append(spark.createDataFrame(rows, "value STRING, file STRING"))
        lines = parts[0]
        for part in parts[1:]:
            lines = lines.unionByName(part)
        return core.parse_bronze(lines)

    new_dates: dict[str, set[str]] = {k: set() for k in new}
    if new and (state.objects or only_dates):
        # Which dates do the new objects touch? (Skipped on a first run: everything is read anyway.)
        for row in read(new).select("file", F.date_format("date", "yyyy-MM-dd").alias("d")).distinct().collect():
            new_dates[_key_of(row["file"], bucket)].add(row["d"] or "")
    wanted = {d.isoformat() for d in only_dates} if only_dates else None
    first_run = bool(new) and not state.objects and not only_dates
    dates, objects = plan(state, bronze, new_dates, wanted)
    if not objects:
        return RunResult(0, 0, [], time.monotonic() - t0)
    events = read(objects)
    if not first_run:
        events = events.where(F.date_format("date", "yyyy-MM-dd").isin(sorted(dates)) | F.col("date").isNull())
    events = events.persist()
    persisted: list[Any] = [events]

    def cache(df: Any) -> Any:
        persisted.append(df.persist())
        return df

    silver, quarantine = core.silver_tables(events, F.current_timestamp(), cache)
    for table, df in [*silver.items(), ("quarantine", quarantine)]:
        # One file per date and table; only the dates in the data are replaced.
        df.repartition("date").write.mode("overwrite").partitionBy("date").parquet(silver_path(bucket, table))
    # Bookkeeping: the dates each object read holds.
    held: dict[str, set[str]] = {k: set() for k in objects}
    for row in events.select("file", F.date_format("date", "yyyy-MM-dd").alias("d")).distinct().collect():
        held.setdefault(_key_of(row["file"], bucket), set()).add(row["d"] or "")
    # "" stands for rows without an event date (unparseable time: quarantined under the ingest date)
    touched = sorted(d for d in (set().union(*held.values()) if first_run else dates) if d)
    for df in persisted:
        df.unpersist()
    for k in objects:
        state.objects[k] = sorted(set(state.objects.get(k, [])) | held.get(k, set()) | new_dates.get(k, set()))
    state.save(s3, bucket)
    return RunResult(len(new), len(objects), touched, time.monotonic() - t0)


def _key_of(file_uri: str, bucket: str) -> str:
    return file_uri.split(f"{bucket}/", 1)[1]


def count_rows(spark: SparkSession, bucket: str, table: SilverTable) -> int:
    """Rows of a silver table; 0 when none is written yet."""
    from pyspark.errors import AnalysisException

    try:
        return int(spark.read.parquet(silver_path(bucket, table)).count())
    except AnalysisException as err:
        if "PATH_NOT_FOUND" not in str(err):
            raise
        return 0
