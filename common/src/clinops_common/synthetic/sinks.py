"""Where a data set goes: local files, the lake (batch tables, oracle, ledger) and Kafka."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinops_common.lake import BATCH_SCHEMAS, BATCH_TABLES, BatchTable, batch_object_key, ddl_columns, synthetic_key
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_common.synthetic.generator import Dataset
from clinops_common.synthetic.stream import Message

if TYPE_CHECKING:
    import pyarrow as pa

MESSAGES_FILE = "messages.ndjson"
LEDGER_FILE = "ledger.json"
ORACLE_FILE = "oracle.parquet"


def arrow_schema(ddl: str) -> pa.Schema:
    """A pyarrow schema from the Spark DDL of lake.py (STRING, DOUBLE, BOOLEAN, DATE, TIMESTAMP)."""
    import pyarrow as pa

    types = {
        "STRING": pa.string(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "BIGINT": pa.int64(),
    }
    return pa.schema([pa.field(name, types[kind], nullable=nullable) for name, kind, nullable in ddl_columns(ddl)])


def _json_default(v: Any) -> str:
    if isinstance(v, datetime | date):
        return v.isoformat()
    raise TypeError(type(v))


def batch_table_bytes(table: BatchTable, rows: list[dict[str, Any]], *, force_parquet: bool = False) -> bytes:
    """The file for a batch table: NDJSON for demographics (a document-store export), else Parquet."""
    if table == "demographics" and not force_parquet:
        return b"".join(json.dumps(r, default=_json_default).encode() + b"\n" for r in rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(BATCH_SCHEMAS[table])), buf)
    return buf.getvalue()


def oracle_bytes(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            pa.field("patient_id", pa.string(), nullable=False),
            pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("p_adverse_event_24h", pa.float64(), nullable=False),
            pa.field("severity", pa.float64(), nullable=False),
            pa.field("hazard_per_hour", pa.float64(), nullable=False),
        ]
    )
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue()


def ledger_bytes(ds: Dataset) -> bytes:
    doc = {"config": json.loads(ds.config.model_dump_json()), **ds.ledger.to_dict()}
    return json.dumps(doc, indent=2).encode()


def message_line(m: Message) -> bytes:
    return (
        json.dumps(
            {
                "topic": m.topic,
                "key": m.key.decode(),
                "timestamp_ms": m.timestamp_ms,
                "value": m.value.decode("utf-8", errors="surrogateescape"),
            }
        ).encode()
        + b"\n"
    )


def write_files(ds: Dataset, out: Path) -> dict[str, Path]:
    """messages.ndjson (wire messages in send order), ledger.json, oracle.parquet, batch/<table>/."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    with (out / MESSAGES_FILE).open("wb") as f:
        for m in ds.messages:
            f.write(message_line(m))
    written["messages"] = out / MESSAGES_FILE
    (out / LEDGER_FILE).write_bytes(ledger_bytes(ds))
    written["ledger"] = out / LEDGER_FILE
    (out / ORACLE_FILE).write_bytes(oracle_bytes(ds.oracle))
    written["oracle"] = out / ORACLE_FILE
    for table in BATCH_TABLES:
        path = out / batch_object_key(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(batch_table_bytes(table, ds.batch[table]))
        written[table] = path
    return written


def read_messages(path: Path) -> Iterator[Message]:
    with path.open("rb") as f:
        for line in f:
            d = json.loads(line)
            yield Message(
                d["topic"], d["key"].encode(), d["value"].encode("utf-8", "surrogateescape"), d["timestamp_ms"]
            )


def upload(ds: Dataset, conns: Connections) -> list[str]:
    """Write the batch tables (at lake.batch_path), the oracle and the ledger to the lake."""
    s3 = s3_client(conns)
    keys = []
    for table in BATCH_TABLES:
        k = batch_object_key(table)
        s3.put_object(Bucket=conns.lake_bucket, Key=k, Body=batch_table_bytes(table, ds.batch[table]))
        keys.append(k)
    for k, body in (
        (synthetic_key("oracle", ORACLE_FILE), oracle_bytes(ds.oracle)),
        (synthetic_key(LEDGER_FILE), ledger_bytes(ds)),
    ):
        s3.put_object(Bucket=conns.lake_bucket, Key=k, Body=body)
        keys.append(k)
    return keys


async def produce(
    messages: Iterable[Message],
    conns: Connections,
    *,
    rate: float | None = None,
    topic_prefix: str = "",
    progress: Callable[[int], None] | None = None,
    linger_ms: int = 20,
) -> int:
    """Send messages in order (key = patient id, record timestamp = simulated send time), at most
    ``rate`` per second; returns how many were acknowledged."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=conns.kafka_bootstrap_servers,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        compression_type=None,
        enable_idempotence=True,
    )
    await producer.start()
    sent = 0
    pending: list[asyncio.Future[Any]] = []
    t0 = time.monotonic()
    try:
        for m in messages:
            pending.append(
                await producer.send(f"{topic_prefix}{m.topic}", m.value, key=m.key, timestamp_ms=m.timestamp_ms)
            )
            sent += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
                if progress:
                    progress(sent)
            if rate and sent % 100 == 0:
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
        if progress:
            progress(sent)
    finally:
        await producer.stop()
    return sent
