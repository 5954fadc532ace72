"""A demo's history: the older days written straight to silver, the last hours left to stream.

Streaming days of history through Kafka, ingest and the processor costs minutes per day on a small
machine without showing anything the last hours do not. So the demo splits the generated events at
a UTC midnight (``split_at``): events before it are written to silver directly, through the
processor's own rules (``clinops_processor.core``: the same parsing, deduplication, unit
standardisation and quarantine, in one Spark job, without Kafka or bronze); events from it on are
produced to Kafka, ingested to bronze and processed by the pipeline's processor stage. The split is
by event time and falls on a date boundary, so the processor (which replaces whole silver dates
touched by new bronze objects) never replaces a date written here.

``python -m clinops_devstack.history <bronze-lines.ndjson>`` writes the silver tables of the lake
``CLINOPS_S3_*`` / ``CLINOPS_LAKE_BUCKET`` name and prints their row counts as JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clinops_common.events import utc_iso
from clinops_common.synthetic.stream import Message


def split_at(end: datetime, min_streamed_hours: int) -> datetime:
    """The latest UTC midnight at least ``min_streamed_hours`` before ``end``."""
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    while end - midnight < timedelta(hours=min_streamed_hours):
        midnight -= timedelta(days=1)
    return midnight


def event_time(m: Message) -> datetime:
    raw = json.loads(m.value)["event_time"]
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


def split(messages: Iterable[Message], at: datetime) -> tuple[list[Message], list[Message]]:
    """(events before ``at``, events from ``at`` on), each in send order."""
    before: list[Message] = []
    after: list[Message] = []
    for m in messages:
        (before if event_time(m) < at else after).append(m)
    return before, after


def bronze_lines(messages: Iterable[Message]) -> Iterator[bytes]:
    """Each message in ingest's bronze envelope, as if ingested when it was sent (offsets in send order)."""
    for offset, m in enumerate(messages):
        sent = utc_iso(datetime.fromtimestamp(m.timestamp_ms / 1000, UTC))
        head = json.dumps({"topic": m.topic, "partition": 0, "offset": offset, "timestamp": sent,
                           "key": m.key.decode(), "ingested_at": sent})  # fmt: skip
        yield head[:-1].encode() + b',"event":' + m.value + b"}\n"


def write_silver(lines: Path) -> dict[str, int]:
    """Bronze-format lines (a local file) → every silver table and quarantine; rows written per table."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    from clinops_common.lake import silver_path
    from clinops_common.settings import Connections
    from clinops_common.spark import spark_session
    from clinops_processor import core
    from clinops_processor.job import SPARK_CONF

    conns = Connections()
    spark = spark_session("clinops-demo-history", conns, extra_conf=SPARK_CONF)
    try:
        text = spark.read.text(str(lines.resolve())).withColumn("file", F.lit("history"))
        events = core.parse_bronze(text).persist()
        silver, quarantine = core.silver_tables(events, F.current_timestamp())
        counts: dict[str, int] = {}
        for table, df in [*silver.items(), ("quarantine", quarantine)]:
            path = silver_path(conns.lake_bucket, table)
            df.repartition("date").write.mode("overwrite").partitionBy("date").parquet(path)
            try:
                counts[table] = int(spark.read.parquet(path).count())
            except AnalysisException:  # nothing written (no quarantined rows): no schema to read
                counts[table] = 0
        events.unpersist()
        return counts
    finally:
        spark.stop()


if __name__ == "__main__":
    print(json.dumps(write_silver(Path(sys.argv[1]))))
