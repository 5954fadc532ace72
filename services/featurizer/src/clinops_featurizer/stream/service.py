"""The streaming featurizer's loop: Kafka (vitals, labs) -> judge -> windows -> online store.

After each poll, every patient with a new reading gets its vitals and labs rows of its latest hour
recomputed and written in one pipelined call; the online store's write rule (never older than what
is stored, by event time then created time) makes the stream and the hourly batch safe to mix.

No offsets are committed. On start (and on each partition assignment) the consumer seeks back
``replay_h`` hours by record time and replays them: the windows are rebuilt from Kafka, and rows
computed on the way are older than what is stored, hence ignored. SIGTERM (and SIGINT) stop
polling, write what is pending and exit 0.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from clinops_common.features.online import OnlineStore
from clinops_common.settings import Connections
from clinops_featurizer.stream import core
from clinops_featurizer.stream.config import StreamSettings
from clinops_featurizer.stream.metrics import StreamMetrics

TOPICS = ("vitals", "labs")


class StreamFeaturizer:
    def __init__(
        self, settings: StreamSettings, conns: Connections, log: Any, metrics: StreamMetrics | None = None
    ) -> None:
        from datetime import timedelta

        self.settings = settings
        self.conns = conns
        self.log = log
        self.metrics = metrics or StreamMetrics()
        self.state = core.StreamState(lateness_us=int(settings.lateness_s * 1_000_000))
        self.online = OnlineStore.from_url(
            conns.redis_url.get_secret_value(),
            prefix=settings.online_prefix,
            key_ttl=timedelta(hours=settings.key_ttl_hours),
        )
        self.stop = asyncio.Event()
        self.consumed = 0
        self.written = 0
        self.consumer: Any = None

    def accept(self, topic: str, value: bytes | None, timestamp_ms: int) -> str | None:
        """Judge one record and add it; returns the patient id when a reading was accepted."""
        verdict = core.judge(topic, value, timestamp_ms)
        if isinstance(verdict, core.Rejected):
            self.metrics.events.labels(topic, verdict.reason).inc()
            return None
        outcome = self.state.add(verdict)
        self.metrics.events.labels(topic, outcome).inc()
        return verdict.patient_id if outcome == "accepted" else None

    def write(self, patients: set[str]) -> int:
        """The latest hour's vitals and labs rows of ``patients`` -> the online store."""
        if not patients:
            return 0
        t0 = time.perf_counter()
        by_view = {}
        for view in core.STREAMED_VIEWS:
            rows = [self.state.row(view, pid, self.state.patients[pid].step) for pid in patients]
            by_view[view.name] = core.frame(view, rows)
        written = self.online.write(by_view)
        self.metrics.rows.labels("vitals+labs").inc(written)
        self.metrics.write_seconds.observe(time.perf_counter() - t0)
        self.written += written
        return written

    async def _seek_back(self, assigned: Any) -> None:
        if not assigned:
            return
        since_ms = int((time.time() - self.settings.replay_h * 3600) * 1000)
        found = await self.consumer.offsets_for_times(dict.fromkeys(assigned, since_ms))
        for tp in assigned:
            at = found.get(tp)
            if at is None:
                await self.consumer.seek_to_end(tp)
            else:
                self.consumer.seek(tp, at.offset)

    async def run(self) -> int:
        """Consume until stopped (signal or idle timeout); returns messages consumed."""
        from aiokafka import AIOKafkaConsumer
        from aiokafka.abc import ConsumerRebalanceListener

        s = self.settings
        featurizer = self

        class SeekBack(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                return None

            async def on_partitions_assigned(self, assigned: Any) -> None:
                await featurizer._seek_back(assigned)
                featurizer.log.info("assigned", partitions=len(assigned))

        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.conns.kafka_bootstrap_servers,
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=s.poll_ms,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread
                break
        await self.consumer.start()
        self.consumer.subscribe([f"{s.topic_prefix}{t}" for t in TOPICS], listener=SeekBack())
        self.log.info("streaming", topics=list(TOPICS), group=s.group_id, lateness_s=s.lateness_s)
        last_message = time.monotonic()
        last_evict = 0.0
        try:
            while not self.stop.is_set():
                polled = await self.consumer.getmany(timeout_ms=s.poll_ms, max_records=s.max_poll_records)
                dirty: set[str] = set()
                for tp, msgs in polled.items():
                    topic = tp.topic.removeprefix(s.topic_prefix)
                    for m in msgs:
                        pid = self.accept(topic, m.value, m.timestamp)
                        if pid is not None:
                            dirty.add(pid)
                    self.consumed += len(msgs)
                now = time.monotonic()
                if polled:
                    last_message = now
                self.write(dirty)
                if now - last_evict > 10.0:
                    self.state.evict()
                    self.metrics.patients.set(len(self.state.patients))
                    self.metrics.watermark_lag.set(max(0.0, time.time() - self.state.watermark_us / 1e6))
                    last_evict = now
                if s.idle_exit_s and not polled and now - last_message >= s.idle_exit_s:
                    break
        finally:
            await self.consumer.stop()
            self.online.client.close()
        self.log.info("stopped", consumed=self.consumed, written=self.written)
        return self.consumed
