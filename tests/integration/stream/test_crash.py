"""Crash the ingest consumer with SIGKILL at random points while producing: silver still holds every
valid event exactly once. Then SIGTERM: it flushes, commits what it wrote, and exits cleanly."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from clinops_common.synthetic import FaultRates, GeneratorConfig, generate
from clinops_processor import job

FAST_RESTART = {"session_timeout_ms": 6000, "max_batch_records": 150, "max_batch_age_s": 0.3}


def committed_and_end_offsets(conns: Any, prefix: str, group: str) -> tuple[dict[Any, int], dict[Any, int]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> tuple[dict[Any, int], dict[Any, int]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=conns.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [
                TopicPartition(t, p)
                for t in await consumer.topics()
                if t.startswith(prefix)
                for p in consumer.partitions_for_topic(t) or ()
            ]
            end = await consumer.end_offsets(tps)
            committed = {tp: (await consumer.committed(tp)) or 0 for tp in tps}
        finally:
            await consumer.stop()
        return committed, end

    return asyncio.run(read())


def test_sigkill_at_random_points_loses_and_duplicates_nothing(make_pipeline: Callable[[], Any], spark: Any) -> None:
    ds = generate(
        GeneratorConfig(patients=3, days=0.5, seed=23, faults=FaultRates(duplicate=0.02, late=0.02)), keep_truth=True
    )
    p = make_pipeline()
    producer = threading.Thread(target=p.produce, args=(ds.messages,), kwargs={"rate": len(ds.messages) / 10})
    producer.start()
    rng = random.Random(4)  # noqa: S311
    kills = 0
    while producer.is_alive() or kills < 4:
        proc = p.ingest(**FAST_RESTART)
        before = p.objects()
        deadline = time.monotonic() + 30
        while p.objects() == before and time.monotonic() < deadline:  # wait until it is writing
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.kill()
        proc.wait()
        kills += 1
    producer.join()

    # A last consumer catches up, then SIGTERM: it must flush, commit and exit 0.
    proc = p.ingest(**FAST_RESTART)
    p.wait_consuming(proc)
    expected = len(ds.messages)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        written = {(d["topic"], d["partition"], d["offset"]) for d in p.lines("bronze") + p.lines("deadletter")}
        if len(written) >= expected:
            break
        time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0, p.log.read_text()[-2000:]
    assert len(written) == expected, "every message reached bronze or dead letter"
    committed, end = committed_and_end_offsets(p.conns, p.prefix, p.group)
    assert committed == end

    bronze = p.lines("bronze")
    replayed = len(bronze) - len({(b["topic"], b["partition"], b["offset"]) for b in bronze})
    job.run(spark, p.conns)
    silver_ids = [r["event_id"] for r in p.silver(spark, "measurements")]
    assert sorted(silver_ids) == sorted(t.event_id for t in ds.truths if t.status == "silver" and t.measurement)
    for table in ("medications", "admissions", "outcomes"):
        assert len({r["event_id"] for r in p.silver(spark, table)}) == ds.ledger.silver_rows()[table]
        assert len(p.silver(spark, table)) == ds.ledger.silver_rows()[table]
    assert p.distinct_deadletters() == ds.ledger.deadletter
    print(f"kills={kills} replayed_bronze_lines={replayed}")
