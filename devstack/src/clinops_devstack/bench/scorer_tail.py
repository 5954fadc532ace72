"""``make profile-scorer-tail``: where the scorer's tail latency comes from, variant against variant.

Real Redis and PostgreSQL on free ports, the benchmark's patients and champion (served from a model
cache, as in ``make profile-scorer-http``: no MLflow), and several servers up at once: the scorer
as configured, the scorer under each ``--variant`` (extra environment variables, e.g.
``--variant si05=CLINOPS_SCORER_GIL_SWITCH_INTERVAL_MS=0.5``) and the BentoML hello reference.
Then ``--rounds`` rounds, each driving every server in turn with the open-loop generator at
``--rate`` for ``--duration`` s, so each variant is paired with the hello endpoint minutes (not an
hour) apart on a machine that other work shares.

Per server and round: client p50/p99/p99.9, the p99's ratio to the same round's hello p99, CPU per
request of the worker process; from the scorer's own histograms the handler, audit wait and audit
commit p99 and the garbage collector's pauses (count and p99 per generation). Then per server the
median over the rounds. One ``name=value`` per line, the load average beside each round.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import port_for
import psutil
import redis

from clinops_common import db
from clinops_common.features.online import OnlineStore
from clinops_devstack.bench.scorer import (
    MODEL,
    PREFIX,
    histogram_quantile,
    histograms,
    joined_frame,
    load,
    pct,
    server,
    synthetic_views,
    tree_cpu_s,
)
from clinops_devstack.bench.scorer_http_profile import DEAD_REGISTRY, cache_champion
from clinops_devstack.scratch import scratch_stack

SERVER_SIDE = {
    "handler": "clinops_scorer_request_seconds",
    "audit_wait": "clinops_scorer_audit_wait_seconds",
    "audit_commit": "clinops_scorer_audit_commit_seconds",
    "read": "clinops_scorer_feature_read_seconds",
    "model": "clinops_scorer_model_seconds",
}


def say(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def out(key: str, value: Any) -> None:
    print(f"{key}={value}", flush=True)


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``name=VAR=value,VAR2=value`` -> (name, {VAR: value, ...}); ``name=`` is the scorer as configured."""
    name, _, rest = text.partition("=")
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"a variant's name must be an identifier: {name!r}")
    env = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r} is not VAR=value")
        env[key] = value
    return name, env


def gc_pauses(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """Collections and their p99 pause (ms) per generation between two scrapes."""
    res: dict[str, float] = {}
    for gen in ("0", "1", "2"):
        key = f'clinops_scorer_gc_pause_seconds{{generation="{gen}"}}'
        a, b = after.get(key, {}), before.get(key, {})
        if not a:
            continue
        res[f"gc{gen}_count"] = a.get(float("inf"), 0.0) - b.get(float("inf"), 0.0)
        res[f"gc{gen}_p99_ms"] = round(1000 * histogram_quantile(b, a, 0.99), 3)
    return res


def by_labels(url: str) -> dict[str, Any]:
    """The histograms of ``histograms`` plus the GC pauses keyed by generation."""
    import httpx

    from clinops_devstack.bench.scorer import _BUCKET

    found = histograms(url)
    try:
        text = httpx.get(f"{url}/metrics", timeout=60).text
    except httpx.HTTPError:
        return found
    for line in text.splitlines():
        if not line.startswith("clinops_scorer_gc_pause_seconds_bucket"):
            continue
        m = _BUCKET.match(line)
        gen = line.split('generation="', 1)[1].split('"', 1)[0] if 'generation="' in line else "?"
        if m:
            le = float("inf") if m.group(2) == "+Inf" else float(m.group(2))
            key = f'clinops_scorer_gc_pause_seconds{{generation="{gen}"}}'
            found.setdefault(key, {})
            found[key][le] = found[key].get(le, 0.0) + float(m.group(3))
    return found


def tree_switches(pid: int) -> int:
    """Voluntary context switches (a thread going to sleep, to be woken again) of a process tree: each is
    a wake-up that, on a machine whose cores are busy, may wait for a core."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            for tid in proc.threads():
                total += _voluntary(proc.pid, tid.id)
        except psutil.Error:
            continue
    return total


def _voluntary(pid: int, tid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def main() -> None:  # noqa: PLR0915 - one straight script, step by step
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patients", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=200.0, help="requests/s of each run")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of each run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        default=[],
        metavar="NAME=VAR=value,...",
        help="a scorer with these extra environment variables (repeatable)",
    )
    p.add_argument("--no-base", action="store_true", help="leave out the scorer as configured")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    variants = ([] if args.no_base else [("base", {})]) + list(args.variant)
    workdir = Path(tempfile.mkdtemp(prefix="clinops-profile-tail-"))
    out("loadavg_1m_start", round(os.getloadavg()[0], 2))
    say(f"stack: redis, postgres (server logs and load files in {workdir})")
    with scratch_stack(["redis", "postgres"], start_timeout_s=120) as stack:
        conns = stack.connections()
        database_url = conns.database_url.get_secret_value()
        db.upgrade(database_url)
        views = synthetic_views(args.patients, pd.Timestamp.now(tz="UTC").floor("h"))
        OnlineStore(redis.Redis.from_url(conns.redis_url.get_secret_value()), prefix=PREFIX).write(views)
        cache_champion(workdir / "models", joined_frame(views).head(5000))
        env = {
            **os.environ,
            **conns.as_env(),
            "CLINOPS_MLFLOW_TRACKING_URI": DEAD_REGISTRY,
            "BENTOML_DO_NOT_TRACK": "True",
            "CLINOPS_SCORER_MODEL_NAME": MODEL,
            "CLINOPS_SCORER_ONLINE_PREFIX": PREFIX,
            "CLINOPS_SCORER_MODEL_CACHE_DIR": str(workdir / "models"),
            "CLINOPS_SCORER_LOG_LEVEL": "WARNING",
        }
        with contextlib.ExitStack() as servers:
            urls: dict[str, tuple[str, int]] = {}
            for name, extra in [*variants, ("hello", {})]:
                port = port_for.select_random()
                if name == "hello":
                    argv = [sys.executable, "-m", "bentoml", "serve", "clinops_devstack.bench.hello:Hello"]
                    argv += ["--port", str(port)]
                else:
                    argv = [sys.executable, "-m", "clinops_scorer", "serve", "--port", str(port)]
                say(f"start {name} {extra}")
                # a BentoML home per server: BentoML keeps its Prometheus multiprocess files there (shared otherwise)
                own = {**env, "BENTOML_HOME": str(workdir / f"bentoml-{name}"), **extra}
                urls[name] = servers.enter_context(server(argv, own, workdir / f"{name}.log", port))
                load(urls[name][0], 50, 3, workdir)  # warm-up
            results: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
            for r in range(args.rounds):
                hello_p99 = float("nan")
                for name in ["hello", *(n for n, _ in variants)]:
                    url, pid = urls[name]
                    before = by_labels(url) if name != "hello" else {}
                    c0, x0 = tree_cpu_s(pid), tree_switches(pid)
                    run = load(url, args.rate, args.duration, workdir)
                    spent, switches = tree_cpu_s(pid) - c0, tree_switches(pid) - x0
                    lat = run["latencies_ms"]
                    ok = sum(1 for s in run["statuses"] if s == 200)
                    row = {
                        "loadavg_1m": round(os.getloadavg()[0], 2),
                        "p50_ms": round(pct(lat, 50), 3),
                        "p99_ms": round(pct(lat, 99), 3),
                        "p999_ms": round(pct(lat, 99.9), 3),
                        "cpu_ms_per_request": round(1000 * spent / max(run["sent"], 1), 3),
                        "wakeups_per_request": round(switches / max(run["sent"], 1), 2),
                        "ok_fraction": round(ok / max(run["sent"], 1), 4),
                        "send_lag_p99_ms": round(run["p99_send_lag_ms"], 3),
                    }
                    if name == "hello":
                        hello_p99 = row["p99_ms"]
                    else:
                        row["p99_vs_hello"] = round(row["p99_ms"] / hello_p99, 2)
                        after = by_labels(url)
                        for key, metric in SERVER_SIDE.items():
                            q = histogram_quantile(before.get(metric, {}), after.get(metric, {}), 0.99)
                            row[f"{key}_p99_ms"] = round(1000 * q, 3)
                        row.update(gc_pauses(before, after))
                    results[name].append(row)
                    for key, value in row.items():
                        out(f"r{r}_{name}_{key}", value)
            for name, rows in results.items():
                for key in rows[0]:
                    values = [row[key] for row in rows if key in row]
                    out(f"median_{name}_{key}", round(statistics.median(values), 3))
    out("loadavg_1m_end", round(os.getloadavg()[0], 2))


if __name__ == "__main__":
    main()
