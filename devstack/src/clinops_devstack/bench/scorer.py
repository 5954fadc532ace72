"""``make bench-scorer``: the scorer under open-loop load, beside a BentoML hello endpoint.

A throwaway stack (MinIO, Redis, PostgreSQL, MLflow on free ports), 10,000 patients materialized in
the online store, a champion of the adverse-event service (an MLP with the package's preprocessing,
registered through the model package), the audit on. Then, each run by the load generator in its own
process (``clinops_devstack.bench.loadgen``, open loop, latency from the scheduled send time):

1. the scorer at 200 requests/s for 60 s;
2. the hello endpoint (same server settings, same request body, no work) at the same load;
3. a search for the highest rate with p99 <= 10 ms (10 s per step).

Prints one ``name=value`` per line. The machine may be shared: read the figures with ``loadavg_1m``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import port_for
import psutil
import psycopg
import redis

from clinops_common import db
from clinops_common.features.definitions import STREAMING_VIEWS, feature_service
from clinops_common.features.online import OnlineStore
from clinops_common.model import ModelPackage, Thresholds, fit_preprocessing, service_schema_ids
from clinops_common.model.onnx_graphs import mlp_graph
from clinops_devstack import supervisor
from clinops_devstack.scratch import scratch_stack
from clinops_scorer.audit import libpq_dsn

SERVICE = "adverse_event_v1"
MODEL = "adverse-event-bench"
PREFIX = "bench:fs"
CATEGORIES = {"gender": ["F", "M"], "trial_arm": ["A", "B"], "department": ["ICU", "ward", "ED"]}


def say(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def synthetic_views(n: int, hour: pd.Timestamp, seed: int = 0) -> dict[str, pd.DataFrame]:
    """One row per patient and view at ``hour`` (fresh), plausible random values, 10% null."""
    rng = np.random.default_rng(seed)
    pids = np.array([f"PT{i:05d}" for i in range(n)], dtype=object)
    out = {}
    for view in STREAMING_VIEWS:
        data: dict[str, Any] = {"patient_id": pids, "event_timestamp": hour, "created_timestamp": hour}
        for f in view.features:
            if f.dtype == "string":
                data[f.name] = rng.choice(CATEGORIES[f.name], n).astype(object)
            else:
                col = rng.normal(50, 15, n)
                col[rng.random(n) < 0.1] = np.nan
                data[f.name] = col
        frame = pd.DataFrame(data)
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        frame["created_timestamp"] = frame["event_timestamp"]
        out[view.name] = frame
    return out


def joined_frame(views: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per patient with every view's features (the rows a bench model is fitted on)."""
    frame = views["vitals"]
    for name in ("labs", "medications", "context"):
        frame = frame.merge(views[name].drop(columns=["event_timestamp", "created_timestamp"]), on="patient_id")
    return frame


def bench_package(frame: pd.DataFrame, seed: int = 0) -> ModelPackage:
    """An MLP (width -> 64 -> 32 -> 1) with the package's preprocessing fitted on ``frame``."""
    order = list(feature_service(SERVICE).feature_names)
    pre = fit_preprocessing(frame, order)
    rng = np.random.default_rng(seed)
    sizes = [pre.width, 64, 32, 1]
    layers = [
        (rng.normal(0, 1 / np.sqrt(i), (o, i)).astype(np.float32), np.zeros(o, dtype=np.float32))
        for i, o in itertools.pairwise(sizes)
    ]
    return ModelPackage(
        name=MODEL,
        feature_service=SERVICE,
        schema_ids=service_schema_ids(SERVICE),
        preprocessing=pre,
        thresholds=Thresholds(0.3, 0.7, "benchmark"),
        onnx_model=mlp_graph(layers),
        model_family="pytorch-mlp",
        label="adverse_event_24h",
    )


def register(mlflow_url: str, pkg: ModelPackage, example: pd.DataFrame) -> str:
    import mlflow
    from mlflow import MlflowClient

    from clinops_common.model.mlflow_model import log_package

    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_experiment("scorer-bench")
    with mlflow.start_run():
        info = log_package(pkg, example, registered_model_name=pkg.name)
    version = str(info.registered_model_version)
    MlflowClient(mlflow_url).set_registered_model_alias(pkg.name, "champion", version)
    return version


def tree_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process and its live descendants (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


class CpuMeter:
    """CPU seconds spent by named process trees between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def start(self) -> None:
        self.before = {k: tree_cpu_s(p) for k, p in self.pids.items()}

    def stop(self) -> dict[str, float]:
        self.spent = {k: tree_cpu_s(p) - self.before[k] for k, p in self.pids.items()}
        return self.spent


@contextmanager
def server(
    argv: list[str], env: dict[str, str], log: Path, port: int, timeout_s: float = 180.0
) -> Iterator[tuple[str, int]]:
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv} exited {proc.returncode}; see {log}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv} not ready in {timeout_s:.0f} s; see {log}")
            time.sleep(0.3)
        yield url, proc.pid
    finally:
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=30)
        for left in alive:  # BentoML's workers run in sessions of their own
            left.kill()


def load(url: str, rate: float, duration_s: float, workdir: Path) -> dict[str, Any]:
    out = workdir / f"load-{int(time.time() * 1000)}.json"
    subprocess.run(
        [sys.executable, "-m", "clinops_devstack.bench.loadgen", "--url", f"{url}/predict", "--rate", str(rate),
         "--duration", str(duration_s), "--out", str(out)],
        check=True,
    )  # fmt: skip
    return dict(json.loads(out.read_text()))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def ok_p99(result: dict[str, Any]) -> float:
    lat = [x for x, s in zip(result["latencies_ms"], result["statuses"], strict=True) if s == 200]
    if len(lat) < 0.99 * result["sent"]:
        return float("inf")  # errors count as failures of the rate
    return pct(result["latencies_ms"], 99)


_BUCKET = re.compile(r'^(clinops_scorer_\w+)_bucket\{(?:[^}]*,)?le="([^"]+)"[^}]*\} ([0-9.e+-]+)$')


def histograms(url: str) -> dict[str, dict[float, float]]:
    out: dict[str, dict[float, float]] = {}
    try:  # a server still draining a backlog may answer late: the histograms are then missing (nan)
        text = httpx.get(f"{url}/metrics", timeout=60).text
    except httpx.HTTPError as err:
        say(f"/metrics unreadable ({type(err).__name__}): server-side figures are nan")
        return out
    for line in text.splitlines():
        m = _BUCKET.match(line)
        if m:
            le = float("inf") if m.group(2) == "+Inf" else float(m.group(2))
            out.setdefault(m.group(1), {})
            out[m.group(1)][le] = out[m.group(1)].get(le, 0.0) + float(m.group(3))
    return out


def histogram_quantile(
    before: dict[float, float], after: dict[float, float], q: float, *, interpolate: bool = True
) -> float:
    """Prometheus's histogram_quantile over the increase between two scrapes (linear in a bucket);
    without ``interpolate``, the upper bound of the bucket holding the quantile (for counts, where
    the linear guess inside a bucket such as (0, 1] says 0.5 rows)."""
    les = sorted(after)
    counts = [after[le] - before.get(le, 0.0) for le in les]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in zip(les, counts, strict=True):
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if not interpolate:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-12)
        prev_le, prev_c = le, c
    return les[-2] if len(les) > 1 else float("nan")


def search(url: str, workdir: Path, p99_200: float, step_s: float, limit_ms: float = 10.0) -> float:
    """The highest rate (requests/s) with p99 <= ``limit_ms``: doubling, then two bisections."""
    good, bad = (200.0, None) if p99_200 <= limit_ms else (0.0, 200.0)
    rate = 400.0 if bad is None else 100.0
    for _ in range(8):
        if bad is not None and good > 0 and bad / good < 1.2:
            break
        p99 = ok_p99(load(url, rate, step_s, workdir))
        say(f"search: {rate:.0f} req/s -> p99 {p99:.2f} ms")
        if p99 <= limit_ms:
            good = rate
        else:
            bad = rate
        rate = rate * 2 if bad is None else (good + bad) / 2 if good > 0 else rate / 2
        if rate > 4000 or rate < 25:
            break
    return good


def _one(conn: psycopg.Connection[Any], sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)


def audit_facts(dsn: str, ids: list[str], since: float, until: float) -> dict[str, float]:
    with psycopg.connect(dsn) as conn:
        rows = _one(
            conn,
            "SELECT count(*) FROM predictions WHERE recorded_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
            [since, until],
        )
        matched = _one(conn, "SELECT count(*) FROM predictions WHERE id::text = ANY(%s)", [ids])
        size = _one(conn, "SELECT avg(pg_column_size(p.*)), avg(pg_column_size(p.feature_values)) FROM predictions p")
        total = _one(
            conn,
            "SELECT (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('predictions'))::float8"
            " / greatest(count(*), 1) FROM predictions",  # partitioned (0004): the parent holds no rows
        )
        as_json = _one(
            conn, "SELECT avg(octet_length(features::text)) FROM (SELECT features FROM prediction_audit LIMIT 2000) s"
        )
    return {
        "audit_rows": int(rows[0]),
        "audit_rows_matching_responses": int(matched[0]),
        "audit_bytes_per_row": round(float(size[0])),
        "audit_vector_bytes_per_row": round(float(size[1])),
        "audit_table_bytes_per_row": round(float(total[0])),
        "audit_features_as_json_bytes": round(float(as_json[0])),
    }


def commit_floor(dsn: str, n: int = 300) -> dict[str, float]:
    """The floor under any durable audit: one-row INSERT + COMMIT (synchronous_commit on) on the same
    server, one after another: its time is mostly the WAL flush (fdatasync) of this machine's disk."""
    lat = []
    with psycopg.connect(dsn, options="-c synchronous_commit=on") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_floor (id bigint)")  # logged (not TEMP): WAL flushed
        conn.commit()
        for i in range(n):
            t0 = time.perf_counter()
            conn.execute("INSERT INTO bench_commit_floor VALUES (%s)", [i])
            conn.commit()
            lat.append((time.perf_counter() - t0) * 1000)
        conn.execute("DROP TABLE bench_commit_floor")
        conn.commit()
    return {"pg_commit_p50_ms": round(pct(lat, 50), 3), "pg_commit_p99_ms": round(pct(lat, 99), 3)}


def main() -> None:  # noqa: PLR0915 - one straight script, step by step
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patients", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of each 200 req/s run")
    p.add_argument("--step", type=float, default=10.0, help="seconds of each rate-search step")
    p.add_argument("--no-search", action="store_true")
    p.add_argument("--start-timeout", type=float, default=240.0, help="seconds each server may take to start")
    args = p.parse_args()
    facts: dict[str, Any] = {"cpu_count": os.cpu_count(), "loadavg_1m_start": round(os.getloadavg()[0], 2)}
    workdir = Path(tempfile.mkdtemp(prefix="clinops-bench-scorer-"))
    say(f"stack: minio, redis, postgres, mlflow (logs and load files in {workdir})")
    with scratch_stack(["minio", "redis", "postgres", "mlflow"], start_timeout_s=args.start_timeout) as stack:
        conns = stack.connections()
        database_url = conns.database_url.get_secret_value()
        db.upgrade(database_url)
        hour = pd.Timestamp.now(tz="UTC").floor("h")
        views = synthetic_views(args.patients, hour)
        client = redis.Redis.from_url(conns.redis_url.get_secret_value())
        t0 = time.perf_counter()
        OnlineStore(client, prefix=PREFIX).write(views)
        facts["materialized_patients"] = args.patients
        facts["materialize_s"] = round(time.perf_counter() - t0, 2)
        frame = joined_frame(views)
        pkg = bench_package(frame.head(5000))
        facts["model_features"] = len(pkg.feature_order)
        say("register the champion")
        version = register(conns.mlflow_tracking_uri, pkg, frame)
        facts["model_version"] = version
        env = {
            **os.environ,
            **conns.as_env(),
            "BENTOML_DO_NOT_TRACK": "True",
            "CLINOPS_SCORER_MODEL_NAME": MODEL,
            "CLINOPS_SCORER_ONLINE_PREFIX": PREFIX,
            "CLINOPS_SCORER_MODEL_CACHE_DIR": str(workdir / "models"),
            "CLINOPS_SCORER_LOG_LEVEL": "WARNING",
            # BentoML keeps its Prometheus multiprocess files under its home and empties that folder when a
            # server starts: a home of the bench's own, so no other BentoML server on the machine wipes them
            "BENTOML_HOME": str(workdir / "bentoml"),
        }
        scorer_port, hello_port = port_for.select_random(), port_for.select_random()
        dsn = libpq_dsn(database_url)
        scorer_argv = [sys.executable, "-m", "clinops_scorer", "serve", "--port", str(scorer_port)]
        stores = {name: supervisor.running_pid(stack, name) for name in ("postgres", "redis")}
        say("reference: one-row durable commits on the same PostgreSQL")
        facts.update(commit_floor(dsn))
        with server(scorer_argv, env, workdir / "scorer.log", scorer_port, args.start_timeout) as (url, pid):
            say("warm-up: 50 req/s for 5 s")
            load(url, 50, 5, workdir)
            before = histograms(url)
            since = time.time()
            say(f"scorer: {args.rate:.0f} req/s for {args.duration:.0f} s")
            meter = CpuMeter({"scorer": pid, **stores})
            meter.start()
            main_run = load(url, args.rate, args.duration, workdir)
            spent = meter.stop()
            until = time.time() + 1
            after = histograms(url)
            ok = [lat for lat, s in zip(main_run["latencies_ms"], main_run["statuses"], strict=True) if s == 200]
            facts["scorer_p50_ms"] = round(pct(main_run["latencies_ms"], 50), 3)
            facts["scorer_p99_ms"] = round(pct(main_run["latencies_ms"], 99), 3)
            facts["scorer_p999_ms"] = round(pct(main_run["latencies_ms"], 99.9), 3)
            facts["loadgen_max_send_lag_ms"] = round(main_run["max_send_lag_ms"], 3)
            facts["loadgen_p99_send_lag_ms"] = round(main_run["p99_send_lag_ms"], 3)
            sent = max(main_run["sent"], 1)
            for name, seconds in spent.items():  # CPU per request: what a shared machine cannot blur
                facts[f"{name}_cpu_ms_per_request"] = round(1000 * seconds / sent, 3)
            facts["loadgen_cpu_ms_per_request"] = round(1000 * main_run["cpu_s"] / sent, 3)
            for key, metric in (
                ("scorer_read_p99_ms", "clinops_scorer_feature_read_seconds"),
                ("scorer_model_p99_ms", "clinops_scorer_model_seconds"),
                ("scorer_audit_p99_ms", "clinops_scorer_audit_commit_seconds"),
                ("scorer_handler_p99_ms", "clinops_scorer_request_seconds"),
            ):
                facts[key] = round(1000 * histogram_quantile(before.get(metric, {}), after.get(metric, {}), 0.99), 3)
            rows_q = histogram_quantile(
                before.get("clinops_scorer_audit_batch_rows", {}),
                after.get("clinops_scorer_audit_batch_rows", {}),
                0.5,
                interpolate=False,
            )
            facts["audit_rows_per_commit_p50"] = round(rows_q, 2)
            facts["responses_ok"] = len(ok)
            facts["requests_sent"] = main_run["sent"]
            facts.update(audit_facts(dsn, main_run["prediction_ids"], since, until))
            if not args.no_search:
                say("rate search: p99 <= 10 ms")
                facts["max_rps_p99_under_10ms"] = search(url, workdir, facts["scorer_p99_ms"], args.step)
        hello_argv = [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "clinops_devstack.bench.hello:Hello",
            "--port",
            str(hello_port),
        ]
        with server(hello_argv, env, workdir / "hello.log", hello_port, args.start_timeout) as (url, pid):
            load(url, 50, 5, workdir)
            say(f"hello: {args.rate:.0f} req/s for {args.duration:.0f} s")
            meter = CpuMeter({"hello": pid})
            meter.start()
            hello = load(url, args.rate, args.duration, workdir)
            spent = meter.stop()
            facts["hello_p50_ms"] = round(pct(hello["latencies_ms"], 50), 3)
            facts["hello_p99_ms"] = round(pct(hello["latencies_ms"], 99), 3)
            facts["hello_cpu_ms_per_request"] = round(1000 * spent["hello"] / max(hello["sent"], 1), 3)
            facts["hello_loadgen_p99_send_lag_ms"] = round(hello["p99_send_lag_ms"], 3)
        facts["scorer_vs_hello_p99_ratio"] = round(facts["scorer_p99_ms"] / facts["hello_p99_ms"], 2)
        facts["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    for key, value in facts.items():
        print(f"{key}={value}")


if __name__ == "__main__":
    main()
