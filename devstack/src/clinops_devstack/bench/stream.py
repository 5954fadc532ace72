"""``make bench-stream``: event -> online store freshness of the streaming featurizer at a fixed rate.

Starts Kafka and Redis on free ports, runs ``python -m clinops_featurizer stream`` as its own
process, produces vitals at ``--rate`` events/s for ``--seconds`` (event time = now) from
``--patients`` patients, and measures, for every ``--probe-every``-th event (a heart-rate reading
with a value never sent before), the time from just before its produce call until
``get_online_features("adverse_event_v1", ...)`` returns that value as ``heart_rate_last_1h``. A
separate process polls every ``--poll-ms``. Prints one ``name=value`` per line, with the load average.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import redis
import typer

from clinops_common.events import utc_iso
from clinops_common.features.online import OnlineStore
from clinops_devstack.scratch import scratch_stack

PREFIX = "bench-stream-"
OTHER_VITALS = (("systolic_bp", "mmHg", 120.0), ("diastolic_bp", "mmHg", 75.0), ("spo2", "%", 97.0))
app = typer.Typer(add_completion=False, help=__doc__)


def say(name: str, value: float | int | str) -> None:
    print(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}", flush=True)


def note(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def event(pid: str, name: str, unit: str, value: float, now: float) -> bytes:
    doc = {
        "schema_version": 1,
        "event_id": uuid.uuid4().hex,
        "patient_id": pid,
        "event_time": utc_iso(datetime.fromtimestamp(now, UTC)),
        "source": "bench-monitor",
        "measurement": name,
        "value": value,
        "unit": unit,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


class Prober(threading.Thread):
    """Polls the online store for the probes sent so far; records when each became readable."""

    def __init__(self, url: str, poll_s: float) -> None:
        super().__init__(daemon=True)
        self.store = OnlineStore(redis.Redis.from_url(url))
        self.poll_s = poll_s
        self.pending: dict[str, list[tuple[float, float]]] = {}  # pid -> [(value, sent at)]
        self.latencies: list[float] = []
        self.superseded = 0  # probes overwritten by a later one of the same patient before being seen
        self.lock = threading.Lock()
        self.done = threading.Event()

    def sent(self, pid: str, value: float, at: float) -> None:
        with self.lock:
            self.pending.setdefault(pid, []).append((value, at))

    def run(self) -> None:
        while not self.done.is_set() or self.pending:
            with self.lock:
                pids = list(self.pending)
            if pids:
                vectors = self.store.get_online_features("adverse_event_v1", pids)
                now = time.time()
                with self.lock:
                    for vec in vectors:
                        seen = vec.features.get("heart_rate_last_1h")
                        queue = self.pending.get(vec.patient_id, [])
                        hit = next((i for i, (v, _) in enumerate(queue) if v == seen), None)
                        if hit is not None:  # this probe; any earlier one was never readable as itself
                            self.latencies.append(now - queue[hit][1])
                            self.superseded += hit
                            del queue[: hit + 1]
                        if not queue:
                            self.pending.pop(vec.patient_id, None)
            if self.done.is_set() and time.time() > self.deadline:
                break
            time.sleep(self.poll_s)

    deadline = float("inf")


async def produce(servers: str, rate: float, seconds: float, *, patients: int, probe_every: int, prober: Prober) -> int:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=servers, acks=1, linger_ms=2)
    await producer.start()
    rng = random.Random(16)  # noqa: S311 - synthetic values
    ids = [f"BS{i:05d}" for i in range(patients)]
    sent = 0
    t0 = time.time()
    probe_value = 60.0
    try:
        while time.time() - t0 < seconds:
            target = int((time.time() - t0) * rate)
            while sent < target:
                pid = ids[rng.randrange(patients)]
                now = time.time()
                if sent % probe_every == 0:
                    probe_value = round(probe_value + 0.001, 3) if probe_value < 140 else 60.0
                    value = event(pid, "heart_rate", "bpm", probe_value, now)
                    prober.sent(pid, probe_value, now)
                else:
                    name, unit, base = OTHER_VITALS[sent % len(OTHER_VITALS)]
                    value = event(pid, name, unit, round(base + rng.gauss(0, 3), 1), now)
                await producer.send(f"{PREFIX}vitals", value, key=pid.encode(), timestamp_ms=int(now * 1000))
                sent += 1
            await asyncio.sleep(0.002)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def create_topics(servers: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{PREFIX}{t}", 3, 1) for t in ("vitals", "labs")])
    finally:
        await admin.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@app.command()
def main(
    rate: Annotated[float, typer.Option(help="Events per second produced.")] = 1000.0,
    seconds: Annotated[float, typer.Option(help="How long to produce.")] = 60.0,
    patients: Annotated[int, typer.Option(help="Patients sending.")] = 1000,
    probe_every: Annotated[int, typer.Option(help="Every n-th event is a timed probe.")] = 10,
    poll_ms: Annotated[float, typer.Option(help="How often the prober reads the online store.")] = 20.0,
) -> None:
    """Produce at a fixed rate and print the event -> online freshness figures."""
    with scratch_stack(["kafka", "redis"]) as stack:
        conns = stack.connections()
        env = {**os.environ, **conns.as_env(), "CLINOPS_STREAM_TOPIC_PREFIX": PREFIX, "CLINOPS_STREAM_REPLAY_H": "0"}
        asyncio.run(create_topics(conns.kafka_bootstrap_servers))  # so the group is assigned them from the start
        log = Path(stack.home) / "stream-featurizer.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "clinops_featurizer.stream", "stream"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_group(log)
            prober = Prober(conns.redis_url.get_secret_value(), poll_ms / 1000)
            prober.start()
            cpu0, load0, t0 = cpu_seconds(proc.pid), os.getloadavg()[0], time.time()
            sent = asyncio.run(
                produce(
                    conns.kafka_bootstrap_servers,
                    rate,
                    seconds,
                    patients=patients,
                    probe_every=probe_every,
                    prober=prober,
                )
            )
            elapsed = time.time() - t0
            prober.deadline = time.time() + 15
            prober.done.set()
            prober.join()
            cpu = cpu_seconds(proc.pid) - cpu0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        lat = np.array(prober.latencies)
        say("stream_events", sent)
        say("stream_events_per_s", sent / elapsed)
        say("stream_probes", len(lat))
        say("stream_probes_superseded", prober.superseded)
        say("stream_probes_unseen", sum(len(q) for q in prober.pending.values()))
        say("stream_event_to_online_p50_s", float(np.percentile(lat, 50)) if len(lat) else float("nan"))
        say("stream_event_to_online_p99_s", float(np.percentile(lat, 99)) if len(lat) else float("nan"))
        say("stream_event_to_online_max_s", float(lat.max()) if len(lat) else float("nan"))
        say("stream_featurizer_cpu_s_per_1k_events", cpu / sent * 1000)
        say("stream_featurizer_exit_code", proc.returncode)
        say("load_average_1m_start", load0)
        say("load_average_1m_end", os.getloadavg()[0])


def _wait_for_group(log: Path, timeout: float = 300.0) -> None:
    """Until the featurizer logs that its group gave it the partitions."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and b'"assigned"' in log.read_bytes():
            time.sleep(1.0)
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"the streaming featurizer did not start within {timeout:.0f} s:\n{tail}")


if __name__ == "__main__":
    app()
