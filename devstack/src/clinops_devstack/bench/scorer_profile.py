"""``make profile-scorer``: CPU time per request of the scorer's request path, part by part.

Wall-clock latency on a shared machine says more about the neighbours than about the code; CPU time
per request does not. This runs the scorer's own ``ScoringEngine`` in process (real Redis and
PostgreSQL on free ports, the benchmark's 10,000 patients and champion, no HTTP, no MLflow: the
champion is handed over directly), calls ``/predict``'s path sequentially, and prints, per request,
the CPU time (this thread's, ``time.thread_time``) of each part: the online read (Redis round trip
and decoding), vectorizing, preprocessing, the ONNX run, shaping the audit row, the audit write
(the request thread's share: handing over and waiting), the response model, and the whole process's
CPU (request thread plus the audit writer thread) per request. ``--cprofile N`` prints the top N
functions of a cProfile of the same loop.

One ``name=value`` per line (microseconds).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import redis

from clinops_common import db
from clinops_common.features.online import OnlineStore
from clinops_common.settings import ServingConnections
from clinops_devstack.bench.scorer import PREFIX, bench_package, joined_frame, synthetic_views
from clinops_devstack.scratch import scratch_stack
from clinops_scorer import core, metrics
from clinops_scorer.config import ScorerSettings
from clinops_scorer.core import Champion, champion
from clinops_scorer.registry import ChampionHolder
from clinops_scorer.service import ScoringEngine, Unavailable


class FixedChampion(ChampionHolder):
    """A holder that serves one champion and never polls a registry."""

    def __init__(self, champ: Champion) -> None:
        super().__init__("", champ.name, "champion", poll_interval_s=3600)
        self.current = champ

    def start(self) -> None:
        return None


def say(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


class Parts:
    """CPU (thread) microseconds per named part, summed over requests."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        c0 = time.thread_time_ns()
        yield
        self.cpu[name] = self.cpu.get(name, 0.0) + (time.thread_time_ns() - c0) / 1000


def parts_loop(engine: ScoringEngine, patients: list[str], n: int) -> dict[str, float]:
    """The request path of ``ScoringEngine.score`` for one patient, split into parts (same calls)."""
    champ = engine.models.current
    assert champ is not None
    parts = Parts()
    pkg = champ.package
    for i in range(n):
        pid = patients[i % len(patients)]
        with parts.part("read"):
            (rows,) = engine.online.read(pkg.feature_service, [pid])
        with parts.part("assess"):
            assessment = core.assess({v: r.freshness for v, r in rows.items()}, champ.order.views)
        with parts.part("vectorize"):
            raw = core.raw_row(champ, rows)
        with parts.part("preprocess"):
            x = pkg.preprocessing.transform(raw.reshape(1, -1))
        with parts.part("onnx"):
            pkg.session().run(["probability"], {"features": x})
        with parts.part("audit_row"):
            row = core.audit_row(uuid.uuid4(), pid, datetime.now(UTC), 0.5, champ, raw, assessment, latency_ms=1.0)
        with parts.part("audit_wait"):
            engine.audit.write([row], 5.0)
    return {k: v / n for k, v in parts.cpu.items()}


def whole_loop(engine: ScoringEngine, patients: list[str], n: int) -> tuple[float, float, float]:
    """(thread CPU us, process CPU us, wall us) per request of ``engine.score`` plus the response."""
    from clinops_scorer.service import Scorer  # noqa: F401 - the module's import cost stays out of the loop

    c0, p0, w0 = time.thread_time_ns(), time.process_time_ns(), time.perf_counter_ns()
    for i in range(n):
        (outcome,) = engine.score([patients[i % len(patients)]], "predict")
        assert outcome.prediction is not None
        outcome.prediction.model_dump_json()
    c1, p1, w1 = time.thread_time_ns(), time.process_time_ns(), time.perf_counter_ns()
    return (c1 - c0) / 1000 / n, (p1 - p0) / 1000 / n, (w1 - w0) / 1000 / n


def audit_loop(engine: ScoringEngine, patients: list[str], n: int, group: int) -> float:
    """Process CPU us per audit row when ``group`` rows go in each commit (request side excluded)."""
    champ = engine.models.current
    assert champ is not None
    (rows,) = engine.online.read(champ.package.feature_service, patients[:1])
    assessment = core.assess({v: r.freshness for v, r in rows.items()}, champ.order.views)
    raw = core.raw_row(champ, rows)
    batches = [
        [
            core.audit_row(uuid.uuid4(), patients[0], datetime.now(UTC), 0.5, champ, raw, assessment, latency_ms=1.0)
            for _ in range(group)
        ]
        for _ in range(max(1, n // group))
    ]
    p0 = time.process_time_ns()
    for batch in batches:
        engine.audit.write(batch, 5.0)
    return (time.process_time_ns() - p0) / 1000 / (len(batches) * group)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patients", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=2000, help="requests per measured loop")
    p.add_argument("--cprofile", type=int, default=0, metavar="N", help="print the top N functions of a cProfile")
    args = p.parse_args()
    facts: dict[str, Any] = {"loadavg_1m_start": round(os.getloadavg()[0], 2)}
    with scratch_stack(["redis", "postgres"], start_timeout_s=120) as stack:
        conns = stack.connections()
        database_url = conns.database_url.get_secret_value()
        db.upgrade(database_url)
        views = synthetic_views(args.patients, pd.Timestamp.now(tz="UTC").floor("h"))
        OnlineStore(redis.Redis.from_url(conns.redis_url.get_secret_value()), prefix=PREFIX).write(views)
        frame = joined_frame(views)
        pkg = bench_package(frame.head(5000))
        pkg.predict_proba(np.full((1, len(pkg.feature_order)), np.nan, dtype=np.float32))
        settings = ScorerSettings(online_prefix=PREFIX, log_level="WARNING")
        serving = ServingConnections(
            redis_url=conns.redis_url,
            database_url=conns.database_url,
            mlflow_tracking_uri="http://127.0.0.1:9",
        )
        from prometheus_client import CollectorRegistry

        engine = ScoringEngine(
            settings, serving, metrics.build(CollectorRegistry()), models=FixedChampion(champion(pkg, "1"))
        )
        patients = [f"PT{i:05d}" for i in range(args.patients)]
        try:
            whole_loop(engine, patients, 200)  # warm-up
            per_part = parts_loop(engine, patients, args.requests)
            thread_us, process_us, wall_us = whole_loop(engine, patients, args.requests)
            for group in (1, 8):
                facts[f"cpu_us_audit_per_row_in_groups_of_{group}"] = round(
                    audit_loop(engine, patients, args.requests, group), 1
                )
            if args.cprofile:
                prof = cProfile.Profile()
                prof.enable()
                whole_loop(engine, patients, args.requests)
                prof.disable()
                text = io.StringIO()
                pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(args.cprofile)
                say(text.getvalue())
        except Unavailable as err:
            raise SystemExit(f"scoring failed: {err}") from None
        finally:
            engine.close()
    for name, us in per_part.items():
        facts[f"cpu_us_{name}"] = round(us, 1)
    facts["cpu_us_parts_total"] = round(sum(per_part.values()), 1)
    facts["cpu_us_request_thread"] = round(thread_us, 1)
    facts["cpu_us_process_per_request"] = round(process_us, 1)
    facts["wall_us_per_request_sequential"] = round(wall_us, 1)
    facts["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    for key, value in facts.items():
        print(f"{key}={value}")


if __name__ == "__main__":
    main()
