"""``--idle-exit`` counts idle time only while ingest holds its partitions: a group rebalance that keeps it
waiting (at its first join, or in the middle of a run) is not idleness, so ingest never exits with records
left on its topics. A member of the same consumer group, subscribed to a topic of its own, stalls every
rebalance by taking its time to give up its partition (a slow ``on_partitions_revoked``), as a member on
a loaded machine, or a coordinator failover, does."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from clinops_common.synthetic import GeneratorConfig, generate

HOLD_S = 10.0  # how long the slow member keeps each rebalance open
IDLE_S = 5.0  # ingest's --idle-exit: under HOLD_S, so a rebalance counted as idle time ends the run early


async def _create_topics(bootstrap: str, *names: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names])
    finally:
        await admin.close()


class SlowMember:
    """A consumer of the same group on topic ``topic``; with ``stall``, it delays every rebalance by ``HOLD_S``."""

    def __init__(self, bootstrap: str, group: str, topic: str, stall: bool = True) -> None:
        self.bootstrap, self.group, self.topic, self.stall = bootstrap, group, topic, stall
        self.assigned = threading.Event()
        self.assignments = 0  # generations in which it held its partition
        self.stalled = 0  # rebalances it held up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> SlowMember:
        self._thread.start()
        assert self.assigned.wait(60), "the slow member never joined its group"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.abc import ConsumerRebalanceListener

        member = self

        class Slow(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                if revoked and member.stall and not member._stop.is_set():  # a rebalance: keep it open
                    member.stalled += 1
                    await asyncio.sleep(HOLD_S)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                if assigned:
                    member.assignments += 1
                    member.assigned.set()

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            session_timeout_ms=30_000,  # the broker must not drop it while it stalls
            heartbeat_interval_ms=300,  # it hears of a rebalance at once
        )
        await consumer.start()
        consumer.subscribe([self.topic], listener=Slow())
        try:
            while not self._stop.is_set():
                await consumer.getmany(timeout_ms=200)
        finally:
            await consumer.stop()


def _written(p: Any) -> int:
    return len({(d["topic"], d["partition"], d["offset"]) for d in p.lines("bronze") + p.lines("deadletter")})


def test_rebalances_that_keep_ingest_waiting_are_not_idle_time(make_pipeline: Callable[[], Any]) -> None:
    p = make_pipeline()
    bootstrap = p.conns.kafka_bootstrap_servers
    asyncio.run(_create_topics(bootstrap, f"{p.prefix}slow", f"{p.prefix}third"))
    first = generate(GeneratorConfig(patients=2, days=0.25, seed=12))
    assert p.produce(first.messages) == len(first.messages)
    with SlowMember(bootstrap, p.group, f"{p.prefix}slow") as slow:
        started = time.monotonic()
        proc = p.ingest("--idle-exit", str(IDLE_S), max_batch_age_s=0.3)
        # 1. Ingest's first join waits HOLD_S for the slow member: not idle time.
        deadline = started + 120
        while slow.assignments < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert slow.assignments == 2, f"ingest joined the group: {p.log.read_text()[-2000:]}"
        assert slow.stalled == 1, "the slow member held up that join"
        assert time.monotonic() - started >= HOLD_S, "and ingest waited it out"
        # 2. At once a third member joins: ingest gives up its partitions and the slow member keeps the
        # rebalance open for HOLD_S > IDLE_S. The next records arrive when it closes.
        with SlowMember(bootstrap, p.group, f"{p.prefix}third", stall=False):
            assert slow.stalled == 2, "the slow member held up the rebalance in the middle of the run"
            second = generate(GeneratorConfig(patients=2, days=0.25, seed=13))
            assert p.produce(second.messages) == len(second.messages)
            proc.wait(timeout=120)
    assert proc.returncode == 0, p.log.read_text()[-3000:]
    assert _written(p) == len(first.messages) + len(second.messages), "ingest read every record, both batches"
