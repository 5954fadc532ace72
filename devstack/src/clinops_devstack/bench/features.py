"""``make bench-features``: the feature store's figures, each beside its reference, in one run.

Prints one ``name=value`` per line:

- ``materialize_rows_per_s``: offline snapshot (local Parquet) -> Redis, (patient, view) rows per second;
  its profile ``materialize_read_s`` (the snapshot's files to frames), ``_latest_s`` (the row per
  patient), ``_write_s`` (encoding and the Redis writes, overlapped) and ``materialize_redis_server_s``
  (the server's own time in those commands, from ``INFO commandstats``);
  ``redis_hset_ceiling_rows_per_s``: ``redis-benchmark -t hset -P 16 -d <our mean packed row size>``
  on the same server right after (one HSET of one row-sized value each: what the server and the
  loopback take with no client work at all); ``materialize_vs_ceiling_ratio``;
- ``online_read_p50_ms``/``_p99_ms``: ``get_online_features("adverse_event_v1", [one patient])``,
  sequential, one client; ``redis_raw_read_p50_ms``/``_p99_ms``: a bare HMGET of the same fields of
  the same keys on the same server (the floor); ``online_vs_raw_p99_ratio``;
- ``pit_join_s`` (ours: reading the Parquet files and joining) and ``feast_pit_join_s`` (Feast 0.67's
  DuckDB offline store, ``get_historical_features(...).to_df()``) on the same entity frame and the
  same files; ``pit_vs_feast_ratio``.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import redis
import typer

from clinops_common.features.definitions import FEATURE_SERVICES, STREAMING_VIEWS, FeatureView
from clinops_common.features.materialize import materialize
from clinops_common.features.offline import DataFile, OfflineStore
from clinops_common.features.online import OnlineStore
from clinops_common.features.pit import point_in_time_join
from clinops_devstack.bench.pit_data import T0, entity_rows, patient_ids, view_rows
from clinops_devstack.feast_join import ReferenceView, feast_historical_features
from clinops_devstack.scratch import scratch_stack

app = typer.Typer(add_completion=False, help=__doc__)


def say(name: str, value: float | int | str) -> None:
    print(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}", flush=True)


def latest_frame(view: FeatureView, ids: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids)
    step = T0 + pd.to_timedelta(rng.integers(0, 24, n), unit="h")
    data: dict[str, object] = {
        "patient_id": ids,
        "event_timestamp": step,
        "created_timestamp": step + pd.Timedelta(minutes=5),
    }
    for f in view.features:
        if f.dtype == "string":
            data[f.name] = rng.choice(np.array(["a", "b", None], dtype=object), n)
        else:
            data[f.name] = np.round(rng.normal(50, 10, n), 3)
    return pd.DataFrame(data)


def packed_row_bytes(client: redis.Redis, online: OnlineStore, ids: np.ndarray) -> int:
    """Mean size of one packed (patient, view) value, over the streaming views of some patients."""
    sizes = [int(client.hstrlen(online.key(str(pid)), view.name)) for pid in ids for view in STREAMING_VIEWS]
    return round(float(np.mean(sizes)))


def redis_hset_ceiling(url: str, value_bytes: int, requests: int) -> float:
    """HSETs per second of ``redis-benchmark`` (pipelined by 16, random fields) with values of our size."""
    u = urlparse(url)
    argv = [
        "redis-benchmark", "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 6379), "-t", "hset", "-P", "16",
        "-d", str(value_bytes), "-n", str(requests), "-r", "100000", "--csv", "-q",
    ]  # fmt: skip
    if u.password:
        argv += ["--user", u.username, "-a", u.password] if u.username else ["-a", u.password]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode:
        raise RuntimeError(f"redis-benchmark failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    out = done.stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if r and r[0].upper() == "HSET"]
    if not rows:
        raise RuntimeError(f"redis-benchmark printed no HSET figure: {out!r}")
    return float(rows[0][1])


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples) * 1000, q))


@app.command()
def main(
    patients: Annotated[int, typer.Option(help="Patients materialized.")] = 100_000,
    reads: Annotated[int, typer.Option(help="Single-patient online reads.")] = 10_000,
    entity_rows_n: Annotated[
        int, typer.Option("--entity-rows", help="Rows of the point-in-time entity frame.")
    ] = 1_000_000,
    pit_patients: Annotated[int, typer.Option(help="Patients behind the point-in-time feature rows.")] = 50_000,
    pit_hours: Annotated[int, typer.Option(help="Hourly feature rows per patient for the join.")] = 24,
) -> None:
    """Run every measurement and print name=value lines."""
    work = Path(tempfile.mkdtemp(prefix="clinops-bench-features-"))
    try:
        bench_online(work, patients, reads, np.random.default_rng(42))
        bench_pit(work, entity_rows_n, pit_patients, pit_hours)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_online(work: Path, patients: int, reads: int, rng: np.random.Generator) -> None:
    """Materialization and reads against a private Redis server started for the run."""
    with scratch_stack(["redis"]) as stack:
        client = redis.Redis.from_url(stack.connections().redis_url.get_secret_value())
        # a local offline snapshot with one latest row per patient and view
        store = OfflineStore(pafs.LocalFileSystem(), str(work / "offline"))
        ids = patient_ids(patients)
        added: dict[str, list[DataFile]] = {}
        for view in STREAMING_VIEWS:
            path = work / "offline" / view.name / "date=2026-03-01" / "part-0.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            latest_frame(view, ids, rng).to_parquet(path, index=False, row_group_size=20_000)
            added[view.name] = [DataFile(str(path.relative_to(work / "offline")), path.stat().st_size, "2026-03-01")]
        store.commit(added)
        online = OnlineStore(client, prefix="bench")
        mem0 = int(client.info("memory")["used_memory"])
        client.config_resetstat()
        result = materialize(store, online, end=datetime(2026, 3, 2, tzinfo=UTC))
        server_us = sum(int(v["usec"]) for v in client.info("commandstats").values())
        mem1 = int(client.info("memory")["used_memory"])
        say("materialize_patients", result.patients)
        say("materialize_rows", result.rows)
        say("materialize_s", result.seconds)
        say("materialize_rows_per_s", result.rows / result.seconds)
        for phase, seconds in result.phases.items():  # the profile: where the seconds went
            say(f"materialize_{phase}_s", seconds)
        say("materialize_redis_server_s", server_us / 1e6)  # the server's own time in our commands
        row_bytes = packed_row_bytes(client, online, ids[:1000])
        ceiling = redis_hset_ceiling(stack.connections().redis_url.get_secret_value(), row_bytes, result.rows)
        say("materialize_packed_row_bytes", row_bytes)
        say("redis_hset_ceiling_rows_per_s", ceiling)
        say("materialize_vs_ceiling_ratio", result.rows / result.seconds / ceiling)
        say("load_average_1m", os.getloadavg()[0])
        say("redis_bytes_per_patient", (mem1 - mem0) / patients)
        say("redis_memory_usage_one_key_bytes", int(client.memory_usage(online.key(str(ids[0]))) or 0))
        bench_reads(client, online, ids, reads, rng)
        client.close()


def bench_reads(
    client: redis.Redis, online: OnlineStore, ids: np.ndarray, reads: int, rng: np.random.Generator
) -> None:
    """``get_online_features`` of one patient beside a bare HMGET of the same fields, interleaved."""
    patients = len(ids)
    service = FEATURE_SERVICES["adverse_event_v1"]
    reader = OnlineStore(client, prefix="bench", clock=lambda: datetime(2026, 3, 1, 23, tzinfo=UTC).timestamp())
    fields = list(service.views_used)
    picks = ids[rng.integers(0, patients, reads)].tolist()
    for pid in picks[:200]:  # warm up both paths
        reader.get_online_features(service, [pid])
        client.hmget(online.key(pid), fields)
    ours, raw = [], []
    for pid in picks:  # interleaved, so both see the same server state
        t = time.perf_counter()
        reader.get_online_features(service, [pid])
        ours.append(time.perf_counter() - t)
        key = online.key(pid)
        t = time.perf_counter()
        client.hmget(key, fields)
        raw.append(time.perf_counter() - t)
    say("online_features_per_read", len(service.refs))
    say("online_read_p50_ms", percentile_ms(ours, 50))
    say("online_read_p99_ms", percentile_ms(ours, 99))
    say("redis_raw_read_p50_ms", percentile_ms(raw, 50))
    say("redis_raw_read_p99_ms", percentile_ms(raw, 99))
    say("online_vs_raw_p99_ratio", percentile_ms(ours, 99) / percentile_ms(raw, 99))


def bench_pit(work: Path, entity_rows_n: int, pit_patients: int, pit_hours: int) -> None:
    """Our point-in-time join and Feast's on the same entity frame and the same Parquet file."""
    rows = view_rows(pit_patients, pit_hours, 5, seed=5, prefix="x")
    entity = entity_rows(entity_rows_n, pit_patients, pit_hours, seed=6)[["patient_id", "event_timestamp"]]
    entity = entity.iloc[:entity_rows_n]
    ttl = timedelta(hours=6)
    feats = [f"x{j}" for j in range(5)]
    rows_path = work / "pit_rows.parquet"
    rows.to_parquet(rows_path, index=False)
    say("pit_entity_rows", len(entity))
    say("pit_feature_rows", len(rows))
    t = time.perf_counter()
    mine = point_in_time_join(entity, pd.read_parquet(rows_path), feats, ttl=ttl, guard=False)
    ours_s = time.perf_counter() - t
    say("pit_join_s", ours_s)
    t = time.perf_counter()
    point_in_time_join(entity, pd.read_parquet(rows_path), feats, ttl=ttl, guard=True)
    say("pit_join_guarded_s", time.perf_counter() - t)
    theirs, feast_s = feast_historical_features(
        entity, [ReferenceView("x", rows, ttl, dict.fromkeys(feats, "float64"))], guard=False, workdir=work
    )
    say("feast_pit_join_s", feast_s)
    say("pit_vs_feast_ratio", ours_s / feast_s)
    say("pit_rows_equal_feast", int(len(theirs) == len(mine)))


if __name__ == "__main__":
    app()
