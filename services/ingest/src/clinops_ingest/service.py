"""The consumer loop: Kafka → validate → batch per partition → S3 objects → commit.

Writes overlap consuming: a full batch is rendered, handed to S3 in worker threads, and the loop
polls on while they run. At least once: offsets are committed only after every object of a batch,
and of every earlier batch of its partition, is written; a replay
after a crash rebuilds the same batches from the committed offset, and the processor deduplicates
whatever overlaps. SIGTERM (and SIGINT) stop polling, flush every batch, commit, and exit 0.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from clinops_common.lifecycle.bucket import lock_state
from clinops_common.lifecycle.rules import RetentionSettings
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_ingest.config import IngestSettings
from clinops_ingest.core import Batch, LakeObject, Record, render, validate
from clinops_ingest.metrics import IngestMetrics

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


# Every buffered message holds two objects the collector tracks until its batch is written. At
# Python's default threshold (700 new objects) a million messages set off about 3,900 young and 31
# full collections, 4.7 s of an 11 s run (`make bench-ingest`, gc.callbacks); at 50,000 about 40
# young ones and no full one. Memory is bounded by max_buffer_bytes, not by the collector.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Fewer collections for a process that buffers many small objects: what start-up made (modules,
    clients) is frozen out of every later collection, and the young generation is larger."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class S3WriteError(RuntimeError):
    """S3 kept failing past the retry budget: exit without committing (a restart replays)."""


class LakeWriter:
    """Writes objects to the lake bucket, retrying with backoff for up to ``retry_s`` seconds.

    Every write is conditional (``If-None-Match: *``): a name that exists is never replaced, and a
    replay of the same batch (same name: same partition and offsets) is a no-op that succeeds. With
    ``lock_days`` (key prefix -> days) the object is written under COMPLIANCE object lock until then:
    no credential, the root's included, can delete or overwrite that version before it expires."""

    def __init__(self, client: S3Client, bucket: str, retry_s: float, lock_days: dict[str, int] | None = None) -> None:
        self.client, self.bucket, self.retry_s = client, bucket, retry_s
        self.lock_days = lock_days or {}
        self.replayed = 0  # writes refused because the name existed (a replay)

    def _lock(self, key: str) -> dict[str, Any]:
        days = next((d for prefix, d in self.lock_days.items() if key.startswith(prefix)), None)
        if days is None:
            return {}
        until = datetime.now(UTC) + timedelta(days=days)
        return {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}

    def _put(self, obj: LakeObject) -> None:
        deadline = time.monotonic() + self.retry_s
        delay = 0.2
        while True:
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=obj.key,
                    Body=obj.body,
                    ContentType="application/x-ndjson",
                    IfNoneMatch="*",
                    **self._lock(obj.key),
                )
                return
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "PreconditionFailed":
                    self.replayed += 1  # written before (a replay after a crash): the first copy stands
                    return
                if time.monotonic() + delay > deadline:
                    raise S3WriteError(f"could not write {obj.key}") from err
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except BotoCoreError as err:
                if time.monotonic() + delay > deadline:
                    raise S3WriteError(f"could not write {obj.key}") from err
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def write(self, objects: list[LakeObject]) -> None:
        await asyncio.gather(*(asyncio.to_thread(self._put, o) for o in objects))


class Ingestor:
    def __init__(
        self, settings: IngestSettings, conns: Connections, log: Any, metrics: IngestMetrics | None = None
    ) -> None:
        self.settings = settings
        self.conns = conns
        self.log = log
        self.metrics = metrics or IngestMetrics()
        retention = RetentionSettings()
        lock = {"bronze/": retention.bronze_days, "deadletter/": retention.deadletter_days}
        self.writer = LakeWriter(
            s3_client(conns), conns.lake_bucket, settings.s3_retry_s, lock if settings.object_lock else None
        )
        self.batches: dict[Any, Batch] = {}
        self.buffered = 0  # bytes of values in ``batches``
        self.in_flight_bytes = 0  # ... in batches being written
        self.flushing: dict[Any, asyncio.Task[None]] = {}  # each partition's latest flush
        self.pending: set[asyncio.Task[None]] = set()  # flushes not yet reaped
        self.stop = asyncio.Event()
        self.consumed = 0
        self.first_message_at: float | None = None  # monotonic; for throughput figures
        self.last_commit_at: float | None = None  # monotonic
        self.consumer: Any = None
        self.joined = False  # True while the group's assignment (possibly empty) is ours; False in a rebalance

    def kafka_topics(self) -> list[str]:
        return [f"{self.settings.topic_prefix}{t}" for t in self.settings.topics]

    async def flush(self, tp: Any) -> None:
        """Render ``tp``'s batch and start writing it; consuming goes on while S3 takes it.

        The commit of a batch waits for its objects and for every earlier batch of the same
        partition to be committed, so committed offsets only ever cover written objects. A failed
        write fails every later flush of the partition and stops the consumer (``reap``)."""
        batch = self.batches.pop(tp, None)
        if batch is None or not batch.entries:
            return
        self.buffered -= batch.size
        self.in_flight_bytes += batch.size
        t0 = time.monotonic()
        objects = render(batch.entries, datetime.now(UTC))
        task = asyncio.create_task(self._write_and_commit(tp, batch, objects, self.flushing.get(tp), t0))
        self.flushing[tp] = task
        self.pending.add(task)
        while self.in_flight_bytes >= self.settings.max_buffer_bytes // 2:  # memory: wait for S3
            await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
            self.reap()

    async def _write_and_commit(
        self, tp: Any, batch: Batch, objects: list[LakeObject], earlier: asyncio.Task[None] | None, t0: float
    ) -> None:
        try:
            await self.writer.write(objects)
            if earlier is not None:
                await earlier  # raises if an earlier write of this partition failed: no commit past it
            await self.consumer.commit({tp: batch.next_offset})
        finally:
            self.in_flight_bytes -= batch.size
        self.last_commit_at = time.monotonic()
        self.metrics.flush_seconds.observe(self.last_commit_at - t0)
        for o in objects:
            self.metrics.objects.labels(o.layer).inc()
        self.log.debug(
            "flushed", topic=tp.topic, partition=tp.partition, records=len(batch.entries), objects=len(objects)
        )

    def reap(self) -> None:
        """Forget finished flushes; raise the error of a failed one."""
        for task in [t for t in self.pending if t.done()]:
            self.pending.discard(task)
            task.result()

    async def drain(self, tps: Any = None) -> None:
        """Flush the batches of ``tps`` (all when None) and wait until they and every earlier flush
        of them are committed."""
        for tp in list(self.batches) if tps is None else tps:
            await self.flush(tp)
        waits = list(self.pending) if tps is None else [self.flushing[tp] for tp in tps if tp in self.flushing]
        await asyncio.gather(*waits)
        self.reap()

    def abandon(self) -> None:
        """Cancel the flushes still running (only after a failure): nothing more is committed, and a
        restart replays from the last commit."""
        for task in self.pending:
            task.cancel()

    async def flush_due(self, now: float) -> None:
        """Flush batches that are full or old; everything when memory is past its bound."""
        s = self.settings
        self.reap()
        if self.buffered >= s.max_buffer_bytes // 2:
            for tp in list(self.batches):
                await self.flush(tp)
            return
        for tp, batch in list(self.batches.items()):
            if batch.due(now, s.max_batch_records, s.max_batch_bytes, s.max_batch_age_s):
                await self.flush(tp)

    def _accept(self, tp: Any, msgs: list[Any]) -> None:
        topic = tp.topic.removeprefix(self.settings.topic_prefix)
        batch = self.batches.get(tp)
        if batch is None:
            batch = self.batches[tp] = Batch(time.monotonic())
        size_before = batch.size
        for msg in msgs:
            entry = validate(Record(topic, msg.partition, msg.offset, msg.timestamp, msg.key, msg.value))
            batch.add(entry)
            if entry.reason is not None:
                self.metrics.deadletters.labels(topic, entry.reason).inc()
        added = batch.size - size_before
        self.buffered += added
        self.metrics.messages.labels(topic).inc(len(msgs))
        self.metrics.bytes.labels(topic).inc(added)

    async def update_lag(self) -> None:
        per_topic: dict[str, int] = {}
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is None:
                continue
            pos = await self.consumer.position(tp)
            topic = tp.topic.removeprefix(self.settings.topic_prefix)
            per_topic[topic] = per_topic.get(topic, 0) + max(0, high - pos)
        for topic, lag in per_topic.items():
            self.metrics.lag.labels(topic).set(lag)

    async def caught_up(self) -> bool:
        """Whether every assigned partition has been read to its high watermark (unknown counts as not)."""
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is None or await self.consumer.position(tp) < high:
                return False
        return True

    async def _check_lock(self) -> None:
        """Object lock asked for, on a bucket without it: say so at once (every write would be refused)."""
        w = self.writer
        if not w.lock_days:
            return
        try:
            enabled = (await asyncio.to_thread(lock_state, w.client, w.bucket)).enabled
        except (ClientError, BotoCoreError) as err:
            raise S3WriteError(f"cannot read the object-lock state of bucket {w.bucket!r}: {err}") from err
        if not enabled:
            raise S3WriteError(
                f"bucket {w.bucket!r} has no object lock, so bronze cannot be written immutably: create the lake"
                " with `python -m clinops_common.lifecycle create-bucket`, or set CLINOPS_INGEST_OBJECT_LOCK=false"
            )

    def _consumer(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        s = self.settings
        return AIOKafkaConsumer(
            bootstrap_servers=self.conns.kafka_bootstrap_servers,
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
            isolation_level="read_uncommitted",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(300, s.session_timeout_ms // 4),
        )

    def _stop_on_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread
                break

    async def run(self) -> int:
        """Consume until stopped (signal, idle timeout or message limit); returns messages consumed."""
        from aiokafka.abc import ConsumerRebalanceListener

        await self._check_lock()
        tune_gc()
        s = self.settings
        ingestor = self

        class FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                ingestor.joined = False  # a rebalance: nothing to consume until the group assigns again
                await ingestor.drain(revoked)  # committed while the partitions are still ours

            async def on_partitions_assigned(self, assigned: Any) -> None:
                ingestor.joined = True

        self.consumer = self._consumer()
        self._stop_on_signals()
        await self.consumer.start()
        self.consumer.subscribe(self.kafka_topics(), listener=FlushOnRevoke())
        self.log.info("consuming", topics=list(s.topics), group=s.group_id)
        last_message = time.monotonic()
        last_lag = 0.0
        try:
            while not self.stop.is_set():
                asked = time.monotonic()
                polled = await self.consumer.getmany(timeout_ms=200, max_records=s.max_poll_records)
                now = time.monotonic()
                if not self.joined:  # idle time counts only while the group has given us our partitions
                    last_message = now
                for tp, msgs in polled.items():
                    self._accept(tp, msgs)
                    self.consumed += len(msgs)
                    last_message = now
                    if self.first_message_at is None:
                        self.first_message_at = asked
                await self.flush_due(now)
                if now - last_lag > 2.0:
                    await self.update_lag()
                    last_lag = now
                if s.max_messages and self.consumed >= s.max_messages:
                    break
                if s.idle_exit_s and not polled and now - last_message >= s.idle_exit_s:
                    if self.batches or self.pending:
                        await self.drain()
                        continue
                    if not await self.caught_up():  # a slow fetch is not idleness: wait for the log end
                        last_message = now
                        continue
                    break
            await self.drain()
            await self.update_lag()
        finally:
            self.abandon()
            await self.consumer.stop()
        self.log.info("stopped", consumed=self.consumed)
        return self.consumed
