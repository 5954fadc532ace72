"""A round trip through each component of the stack, each returning what it did.

``make demo`` prints these; the integration tests call them and check the effects through a second
client. Heavy clients (PySpark, MLflow) are imported inside the functions that need them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import port_for
import redis as redis_lib
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, start_http_server

from clinops_common import db
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_devstack.settings import StackSettings


@dataclass(frozen=True)
class Result:
    component: str
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)


def kafka_roundtrip(conns: Connections, n: int = 10) -> Result:
    """Produce ``n`` keyed JSON messages to a fresh topic and consume them back."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    sent: list[dict[str, Any]] = [{"seq": i, "patient_id": f"SMOKE{i % 3}"} for i in range(n)]

    async def run() -> list[dict[str, Any]]:
        producer = AIOKafkaProducer(bootstrap_servers=conns.kafka_bootstrap_servers, acks="all")
        await producer.start()
        try:
            for msg in sent:
                await producer.send_and_wait(topic, json.dumps(msg).encode(), key=msg["patient_id"].encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=conns.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=f"{topic}-reader",
        )
        await consumer.start()
        got: list[dict[str, Any]] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < n and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    got.extend(json.loads(r.value) for r in records)
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(run())
    return Result(
        "kafka",
        f"produced {n} messages to {topic}, consumed {len(got)} back",
        {"topic": topic, "sent": sent, "received": got},
    )


def s3_roundtrip(conns: Connections) -> Result:
    """Put an object in the lake bucket, list its prefix, get it back."""
    s3 = s3_client(conns)
    key = f"smoke/{uuid.uuid4().hex}/hello.json"
    body = json.dumps({"hello": "lake"}).encode()
    s3.put_object(Bucket=conns.lake_bucket, Key=key, Body=body)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=conns.lake_bucket, Prefix=key.rsplit("/", 1)[0])["Contents"]]
    got = s3.get_object(Bucket=conns.lake_bucket, Key=key)["Body"].read()
    return Result(
        "minio",
        f"put, listed and got s3://{conns.lake_bucket}/{key}",
        {"key": key, "listed": listed, "body": got, "sent": body},
    )


def spark_s3a_roundtrip(conns: Connections, rows: int = 1000) -> Result:
    """Write a partitioned Parquet dataset through ``s3a://`` with PySpark and read it back."""
    from pyspark.sql import functions as F

    from clinops_common.spark import spark_session

    spark = spark_session("clinops-smoke", conns, settings=StackSettings().spark("local[1]"))
    path = f"s3a://{conns.lake_bucket}/smoke/spark-{uuid.uuid4().hex[:8]}"
    df = spark.range(rows).withColumn("part", F.col("id") % 4).withColumn("value", F.col("id") * 2)
    df.write.mode("overwrite").partitionBy("part").parquet(path)
    back = spark.read.parquet(path)
    count = back.count()
    total = back.agg(F.sum("value")).first()[0]  # type: ignore[index]
    return Result(
        "spark",
        f"wrote and read {count} rows of Parquet at {path}",
        {
            "path": path,
            "rows": count,
            "sum": total,
            "partitions": back.select("part").distinct().count(),
        },
    )


def redis_roundtrip(conns: Connections) -> Result:
    """Write a hash with a TTL and read it back in one round trip."""
    client = redis_lib.Redis.from_url(conns.redis_url.get_secret_value())
    key = f"smoke:{uuid.uuid4().hex[:8]}"
    try:
        with client.pipeline() as pipe:
            pipe.hset(key, mapping={"heart_rate": "72", "spo2": "98"})
            pipe.expire(key, 60)
            pipe.execute()
        value = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}  # type: ignore[union-attr]
        ttl = client.ttl(key)
    finally:
        client.close()
    return Result("redis", f"wrote and read hash {key} (ttl {ttl}s)", {"key": key, "value": value, "ttl": ttl})


def postgres_migrate(conns: Connections) -> Result:
    """Apply the Alembic migrations and insert then read one audited prediction row."""
    url = conns.database_url.get_secret_value()
    db.upgrade(url)
    revision = db.current_revision(url)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    row = sample_prediction()
    row_id = row["id"]
    try:
        with engine.begin() as conn:
            conn.execute(db.predictions.insert().values(**row))
            back = conn.execute(sa.select(db.predictions).where(db.predictions.c.id == row_id)).one()._asdict()
            conn.execute(db.predictions.delete().where(db.predictions.c.id == row_id))
            tables = sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
    return Result(
        "postgres",
        f"migrated to revision {revision}; wrote and read one predictions row",
        {"revision": revision, "tables": tables, "row": back},
    )


def sample_prediction(**overrides: Any) -> dict[str, Any]:
    """A well-formed ``predictions`` row (with a fresh id); ``overrides`` replace fields."""
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "patient_id": "SMOKE",
        "predicted_at": sa.func.now(),
        "score": 0.5,
        "risk_level": "MEDIUM",
        "model_name": "smoke",
        "model_version": "0",
        "latency_ms": 1.0,
        "features": {"heart_rate": 72.0},
    }
    return {**row, **overrides}


def mlflow_run(conns: Connections, workdir: Path) -> Result:
    """Log a run with a parameter, a metric and an artifact through the tracking server."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(conns.mlflow_tracking_uri)
    mlflow.set_experiment("clinops-smoke")
    artifact = workdir / "smoke.txt"
    artifact.write_text("artifacts land in the lake's mlflow bucket\n")
    with mlflow.start_run() as run:
        mlflow.log_param("component", "smoke")
        mlflow.log_metric("auroc", 0.5)
        mlflow.log_artifact(str(artifact))
    fetched = MlflowClient().get_run(run.info.run_id)
    return Result(
        "mlflow",
        f"logged run {run.info.run_id} with an artifact at {run.info.artifact_uri}",
        {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "params": fetched.data.params,
            "metrics": fetched.data.metrics,
        },
    )


def prometheus_scrape(prometheus_url: str, targets_dir: Path, timeout_s: float = 60.0) -> Result:
    """Expose a counter on a free port, register it for scraping, wait until Prometheus has it."""
    registry = CollectorRegistry()
    job = f"smoke_{uuid.uuid4().hex[:8]}"
    counter = Counter("clinops_smoke_events", "Smoke-test events.", registry=registry)
    counter.inc(3)
    port = port_for.select_random()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    target = targets_dir / f"{job}.json"
    target.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"smoke": job}}]))
    try:
        value = _poll(
            lambda: _query(prometheus_url, f'clinops_smoke_events_total{{smoke="{job}"}}'),
            timeout_s,
        )
    finally:
        target.unlink(missing_ok=True)
        server.shutdown()
        thread.join(5)
    return Result(
        "prometheus",
        f"scraped a target on port {port}: clinops_smoke_events_total={value:g}",
        {"job": job, "value": value},
    )


def _query(prometheus_url: str, promql: str) -> float | None:
    data = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=5).json()
    results = data["data"]["result"]
    return float(results[0]["value"][1]) if results else None


def _poll(fn: Callable[[], float | None], timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fn()
        if value is not None:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"no result within {timeout_s:.0f}s")
