"""Crash the ingest consumer with SIGKILL while producing, at random points and between an object's
write and its commit: records are written again (asserted) and silver still holds every valid event
exactly once. SIGTERM, at the end and in the middle of open batches: it flushes, commits, exits 0."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

from s3_hold import HoldingProxy

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


def replayed_offsets(puts: list[str]) -> int:
    """Records written to the lake more than once: offsets covered by two or more PUT objects."""
    seen: Counter[tuple[str, str, int, int]] = Counter()
    for path in puts:
        m = OBJECT.search(path)
        if m:
            layer, topic, part, first, last = m["layer"], m["topic"], int(m["part"]), int(m["first"]), int(m["last"])
            seen.update((layer, topic, part, o) for o in range(first, last + 1))
    return sum(1 for n in seen.values() if n > 1)


OBJECT = re.compile(
    r"/(?P<layer>bronze|deadletter)/(?P<topic>[a-z]+)/date=[^/]+/hour=\d+/(?P<part>\d+)-(?P<first>\d+)-(?P<last>\d+)\.ndjson$"
)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(make_pipeline: Callable[[], Any], spark: Any) -> None:
    ds = generate(
        GeneratorConfig(patients=3, days=0.5, seed=23, faults=FaultRates(duplicate=0.02, late=0.02)), keep_truth=True
    )
    p = make_pipeline()
    proxy = HoldingProxy(p.conns.s3_endpoint_url)
    producer = threading.Thread(target=p.produce, args=(ds.messages,), kwargs={"rate": len(ds.messages) / 30})
    producer.start()
    rng = random.Random(4)  # noqa: S311
    kills = held_kills = 0
    try:
        while producer.is_alive() or kills < 4:
            proc = p.ingest(s3_endpoint=proxy.url, **FAST_RESTART)
            before = p.objects()
            deadline = time.monotonic() + 30
            if kills % 2 == 0:
                # (first, while the producer surely still sends: a held kill needs new records to write)
                # Crash between "object stored" and "offsets committed": hold S3's answers, wait until
                # the server holds a new object, kill. Those records are in the lake, not committed.
                p.wait_consuming(proc)
                proxy.hold()
                while p.objects() == before and time.monotonic() < deadline:
                    time.sleep(0.1)
                held_kills += p.objects() > before
            else:
                while p.objects() == before and time.monotonic() < deadline:  # wait until it is writing
                    time.sleep(0.2)
                time.sleep(rng.uniform(0.0, 1.0))
            proc.kill()
            proc.wait()
            proxy.release()
            kills += 1
        producer.join()

        # A last consumer catches up, then SIGTERM: it must flush, commit and exit 0.
        proc = p.ingest(s3_endpoint=proxy.url, **FAST_RESTART)
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
    finally:
        proxy.close()
    assert proc.returncode == 0, p.log.read_text()[-2000:]
    assert len(written) == expected, "every message reached bronze or dead letter"
    committed, end = committed_and_end_offsets(p.conns, p.prefix, p.group)
    assert committed == end
    # The crashes did what this test is about: records reached the lake, were not committed, and the
    # next consumer wrote them again (else exactly-once below would prove nothing about crashes).
    assert held_kills >= 2, "a kill landed between an object's write and its commit"
    assert replayed_offsets(proxy.puts) > 0, "no record was written twice: no replay happened"

    job.run(spark, p.conns)
    silver_ids = [r["event_id"] for r in p.silver(spark, "measurements")]
    assert sorted(silver_ids) == sorted(t.event_id for t in ds.truths if t.status == "silver" and t.measurement)
    for table in ("medications", "admissions", "outcomes"):
        assert len({r["event_id"] for r in p.silver(spark, table)}) == ds.ledger.silver_rows()[table]
        assert len(p.silver(spark, table)) == ds.ledger.silver_rows()[table]
    assert p.distinct_deadletters() == ds.ledger.deadletter
    print(f"kills={kills} held_kills={held_kills} replayed_offsets={replayed_offsets(proxy.puts)}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _consumed(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return -1
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("clinops_ingest_messages_total{")
    )


def test_sigterm_mid_batch_flushes_and_commits_what_it_consumed(make_pipeline: Callable[[], Any]) -> None:
    ds = generate(GeneratorConfig(patients=2, days=0.25, seed=5, faults=FaultRates(malformed_json=0.02)))
    p = make_pipeline()
    assert p.produce(ds.messages) == len(ds.messages)
    port = _free_port()
    # Batches that only a signal can close: no size, count or age limit is reached in this test.
    proc = p.ingest("--metrics-port", str(port), max_batch_age_s=3600, max_batch_records=10**7, max_batch_bytes=10**9)
    try:
        deadline = time.monotonic() + 90
        while _consumed(port) < len(ds.messages) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert _consumed(port) == len(ds.messages), p.log.read_text()[-2000:]
        assert p.objects() == 0, "mid-batch: nothing written yet"
        committed, _ = committed_and_end_offsets(p.conns, p.prefix, p.group)
        assert sum(committed.values()) == 0, "mid-batch: nothing committed yet"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, p.log.read_text()[-2000:]
    written = [(d["topic"], d["partition"], d["offset"]) for d in p.lines("bronze") + p.lines("deadletter")]
    assert len(written) == len(set(written)) == len(ds.messages), "the open batches were flushed, once"
    committed, end = committed_and_end_offsets(p.conns, p.prefix, p.group)
    assert committed == end, "and their offsets committed"
    assert Counter(d["reason"] for d in p.lines("deadletter")) == ds.ledger.deadletter
