"""``make bench-ingest``: Kafka → bronze with our consumer beside Kafka's own ConsumerPerformance on
the same topic, then bronze → silver with the processor. Prints one ``name=value`` per line.

Starts its own Kafka and MinIO on free ports in a temporary folder (the definitions `make up` uses)
and stops them at the end.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from typing import Any

from clinops_common.logs import configure
from clinops_common.synthetic import FaultRates, GeneratorConfig, generate
from clinops_common.synthetic.sinks import produce
from clinops_devstack import components as comps
from clinops_devstack import toolchain
from clinops_devstack.scratch import scratch_stack
from clinops_devstack.settings import StackSettings

EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
PROCESSOR = os.environ.get("BENCH_INGEST_PROCESSOR", "1") != "0"  # 0: skip bronze -> silver (quick runs)
PROCESSES = int(os.environ.get("BENCH_INGEST_PROCESSES", "1"))  # consumers in the group (a Deployment's replicas)
PREFIX = "bench-"
CPROFILE = int(os.environ.get("BENCH_INGEST_CPROFILE", "0"))  # N > 0: print each consumer's top N functions


def say(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def kafka_consumer_perf(settings: StackSettings, topic: str, messages: int) -> float:
    """Messages per second of Kafka's own consumer (fetch rate, group join excluded)."""
    home = toolchain.KAFKA.home(settings.cache)
    log4j = comps.data_dir(settings, "kafka") / "log4j.properties"
    argv = [
        "java", "-Xmx512m", f"-Dlog4j.configuration=file:{log4j}", "-cp", str(home / "libs" / "*"),
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server", f"{settings.host}:{settings.ports.kafka}",
        "--topic", topic, "--messages", str(messages), "--timeout", "60000",
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300).stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if r]
    header = [h.strip() for h in rows[0]]
    values = dict(zip(header, (v.strip() for v in rows[-1]), strict=False))
    say(f"ConsumerPerformance: {values}")
    return float(values["fetch.nMsg.sec"])


def _peak_rss_mb() -> float:
    """This process's peak resident set since it started its interpreter: VmHWM, not getrusage's
    ru_maxrss, which Linux carries across fork and exec, so that a spawned child would report the
    parent's size at the spawn (1.1 GB here: the bench's generated events)."""
    with open("/proc/self/status") as status:
        line = next(row for row in status if row.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


class _GcClock:
    """Time spent in the cyclic garbage collector, and its collections by generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections[info["generation"]] += 1


def _consumer(env: dict[str, str], processes: int, out: Any) -> None:
    """One ingest consumer of the bench group in a fresh interpreter (so its peak RSS is its own)."""
    os.environ.update(env)
    from clinops_common.settings import Connections
    from clinops_ingest.config import IngestSettings
    from clinops_ingest.service import Ingestor

    settings = IngestSettings(
        topic_prefix=PREFIX,
        topics=("vitals",),
        group_id="bench-ingest",
        # one consumer stops at the count; several stop when the topic is drained
        max_messages=EVENTS if processes == 1 else 0,
        idle_exit_s=0 if processes == 1 else 3.0,
        session_timeout_ms=45_000,  # a loaded machine must not turn the run into rebalances
    )
    ingest = Ingestor(settings, Connections(), configure("bench"))
    gc_clock = _GcClock()
    gc.callbacks.append(gc_clock)
    if CPROFILE:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(ingest.run())
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(CPROFILE)
        say(f"cProfile of one consumer (tottime):\n{text.getvalue()}")
    else:
        asyncio.run(ingest.run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    gc.callbacks.remove(gc_clock)
    stats = (ingest.consumed, ingest.first_message_at, ingest.last_commit_at, _peak_rss_mb(), cpu)
    out.put((*stats, gc_clock.seconds, gc_clock.collections))


def run_consumers(env: dict[str, str], processes: int) -> tuple[float, float, float, float, list[int]]:
    """(events/s from the first message to the last commit, peak RSS in MB summed over the
    consumers, their CPU seconds, their seconds in the garbage collector, its collections by
    generation)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_consumer, args=(env, processes, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    consumed = sum(r[0] for r in results)
    assert consumed >= EVENTS, consumed
    first = min(r[1] for r in results if r[1] is not None)
    last = max(r[2] for r in results if r[2] is not None)
    collections = [sum(r[6][g] for r in results) for g in range(3)]
    return (
        EVENTS / (last - first),
        sum(r[3] for r in results),
        sum(r[4] for r in results),
        sum(r[5] for r in results),
        collections,
    )


def main() -> None:
    with scratch_stack(["minio", "kafka"]) as settings:
        conns = settings.connections()
        say(f"generating {EVENTS} vitals events")
        patients = int(EVENTS / (2016 * 2) * 1.1) + 1  # 7 vitals every 5 minutes: about 2016 per patient-day
        cfg = GeneratorConfig(patients=patients, days=2, seed=1, topics=("vitals",), faults=FaultRates.none())
        messages = generate(cfg).messages[:EVENTS]
        assert len(messages) == EVENTS
        t0 = time.monotonic()
        asyncio.run(produce(messages, conns, topic_prefix=PREFIX))
        say(f"produced in {time.monotonic() - t0:.1f}s")
        del messages

        kafka_rate = kafka_consumer_perf(settings, f"{PREFIX}vitals", EVENTS)

        load = os.getloadavg()[0]
        ingest_rate, peak_rss_mb, cpu_s, gc_s, collections = run_consumers(conns.as_env(), PROCESSES)

        print(f"events={EVENTS}", flush=True)
        print(f"ingest_processes={PROCESSES}")
        print(f"load_average_1m={load:.2f}")
        print(f"ingest_events_per_s={ingest_rate:.0f}")
        print(f"kafka_consumer_perf_events_per_s={kafka_rate:.0f}")
        print(f"ingest_vs_kafka_ratio={ingest_rate / kafka_rate:.3f}")
        print(f"ingest_peak_rss_mb={peak_rss_mb:.0f}")
        print(f"ingest_cpu_us_per_event={cpu_s / EVENTS * 1e6:.1f}")
        print(f"ingest_gc_seconds={gc_s:.2f}")
        for generation, count in enumerate(collections):  # 0: young ... 2: full
            print(f"ingest_gc_collections_gen{generation}={count}", flush=True)
        if not PROCESSOR:
            return

        from clinops_common.spark import spark_session
        from clinops_processor import job

        spark = spark_session(
            "clinops-bench",
            conns,
            settings=StackSettings().spark("local[2]"),
            extra_conf={**job.SPARK_CONF, "spark.driver.memory": "3g"},
        )
        spark.sparkContext.setLogLevel("ERROR")
        result = job.run(spark, conns)
        rows = spark.read.parquet(f"s3a://{conns.lake_bucket}/silver/measurements").count()
        spark.stop()
        assert rows == EVENTS, rows
        print(f"processor_seconds={result.seconds:.1f}")
        print(f"processor_events_per_s={EVENTS / result.seconds:.0f}")


if __name__ == "__main__":
    main()
