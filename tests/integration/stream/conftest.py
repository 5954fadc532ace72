"""Fixtures for the streaming path (the SparkSession is ``tests/integration/conftest.py``'s): a fresh lake
bucket and topic prefix per test, and a ``Pipeline`` that drives the real CLIs and reads back every layer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from clinops_common.lake import SilverTable, silver_path
from clinops_common.lifecycle.bucket import create_lake_bucket
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_common.synthetic import Message
from clinops_common.synthetic.sinks import produce


class Pipeline:
    """Generator → Kafka → ingest (the real CLI, as a subprocess) → bronze → processor → silver."""

    def __init__(self, conns: Connections, prefix: str, log: Path) -> None:
        self.log = log
        self.log.touch()
        self.conns = conns
        self.prefix = prefix
        self.group = f"{prefix}ingest"
        self.s3 = s3_client(conns)

    def produce(self, messages: Iterable[Message], rate: float | None = None) -> int:
        return asyncio.run(produce(messages, self.conns, topic_prefix=self.prefix, rate=rate))

    def ingest(self, *args: str, s3_endpoint: str | None = None, **settings: Any) -> subprocess.Popen[bytes]:
        """Start ``python -m clinops_ingest run`` (its log goes to ``self.log``), writing to S3 at
        ``s3_endpoint`` when given (a proxy in front of the lake's server)."""
        conns = self.conns.model_copy(update={"s3_endpoint_url": s3_endpoint}) if s3_endpoint else self.conns
        env = {**os.environ, **conns.as_env()}
        env.update({f"CLINOPS_INGEST_{k.upper()}": str(v) for k, v in settings.items()})
        argv = [sys.executable, "-m", "clinops_ingest", "run", "--topic-prefix", self.prefix, "--group-id", self.group]
        self.started_seen = self.log.read_text().count('"consuming"')  # before the child can log it
        with self.log.open("ab") as log:
            return subprocess.Popen([*argv, *args], env=env, stdout=subprocess.DEVNULL, stderr=log)

    def wait_consuming(self, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
        """Wait until a consumer has started and subscribed (its signal handlers are in place)."""
        deadline = time.monotonic() + timeout_s
        seen = getattr(self, "started_seen", self.log.read_text().count('"consuming"'))
        while time.monotonic() < deadline and proc.poll() is None:
            if self.log.read_text().count('"consuming"') > seen:
                return
            time.sleep(0.1)
        raise AssertionError(f"consumer did not start: {self.log.read_text()[-2000:]}")

    def ingest_until_idle(self, idle_s: float = 3.0, **settings: Any) -> None:
        proc = self.ingest("--idle-exit", str(idle_s), **settings)
        proc.wait(timeout=180)
        assert proc.returncode == 0, self.log.read_text()[-3000:]

    def lines(self, layer: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        bucket = self.conns.lake_bucket
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{layer}/"):
            for o in page.get("Contents", []):
                body = self.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                out.extend({**json.loads(x), "_key": o["Key"]} for x in body.splitlines())
        return out

    def objects(self) -> int:
        """How many objects bronze and dead letter hold."""
        bucket = self.conns.lake_bucket
        return sum(
            page.get("KeyCount", 0)
            for layer in ("bronze/", "deadletter/")
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=layer)
        )

    def distinct_deadletters(self) -> Counter[str]:
        seen = {(d["topic"], d["partition"], d["offset"]): d["reason"] for d in self.lines("deadletter")}
        return Counter(seen.values())

    def silver(self, spark: Any, table: SilverTable) -> list[dict[str, Any]]:
        return [r.asDict() for r in spark.read.parquet(silver_path(self.conns.lake_bucket, table)).collect()]


@pytest.fixture(scope="session")
def make_pipeline(
    kafka: Connections, s3: Connections, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], Pipeline]:
    """A new pipeline: its own lake bucket, topic prefix and consumer group."""
    tmp = tmp_path_factory.mktemp("ingest-logs")

    def make() -> Pipeline:
        bucket = f"lake-{uuid.uuid4().hex[:10]}"
        create_lake_bucket(s3_client(s3), bucket)  # object lock: ingest writes bronze immutably
        conns = s3.model_copy(update={"lake_bucket": bucket, "kafka_bootstrap_servers": kafka.kafka_bootstrap_servers})
        return Pipeline(conns, prefix=f"t{uuid.uuid4().hex[:8]}-", log=tmp / f"{bucket}-ingest.log")

    return make
