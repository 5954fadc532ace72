"""``make profile-scorer-http``: CPU time per request of the scorer over HTTP, and where BentoML spends it.

``make profile-scorer`` times the scorer's own request path in process; this adds what the HTTP
server wraps around it. Real Redis and PostgreSQL on free ports, the benchmark's patients and
champion (saved into a model cache: the scorer serves it from there, as after a restart with the
registry unreachable, so no MLflow is needed), the BentoML hello reference beside it, and under both
a bare Starlette app on the same uvicorn (``clinops_devstack.bench.bare``: what BentoML itself adds):

1. ``asgi``: each app's ASGI stack (BentoML's middlewares, request parsing, the thread hop, the
   handler, the response model) called in process on uvloop, requests one after another, no
   sockets: CPU microseconds per request, and with ``--cprofile N`` the top N functions of the
   event loop's thread;
2. ``http``: each server started with ``bentoml serve`` and driven by the open-loop generator at
   ``--rate`` for ``--duration`` s: CPU milliseconds per request of the worker process, of BentoML's
   process manager (circus arbiter), of PostgreSQL and Redis.

One ``name=value`` per line. CPU time, unlike latency, hardly depends on what else the machine runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import port_for
import psutil
import redis

from clinops_common import db
from clinops_common.features.online import OnlineStore
from clinops_common.model.store import save
from clinops_devstack import supervisor
from clinops_devstack.bench.scorer import (
    MODEL,
    PREFIX,
    bench_package,
    joined_frame,
    load,
    server,
    synthetic_views,
    tree_cpu_s,
)
from clinops_devstack.scratch import scratch_stack

APPS = {
    "scorer": "clinops_scorer.service:Scorer",
    "hello": "clinops_devstack.bench.hello:Hello",
    "starlette": "clinops_devstack.bench.bare:app",  # the floor: no BentoML
}
DEAD_REGISTRY = "http://127.0.0.1:9"  # nothing listens: the scorer loads the cached version


def say(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


class Facts(dict[str, Any]):
    """``name=value`` lines, printed as they are measured (a run cut short keeps what it had)."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        print(f"{key}={value}", flush=True)


def cache_champion(cache: Path, frame: pd.DataFrame, version: str = "1") -> None:
    """The benchmark's champion in the scorer's model cache, as the version served last."""
    pkg = bench_package(frame)
    save(pkg, cache / MODEL / version)
    (cache / f"{MODEL}@champion.version").write_text(version)


def _scope(path: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:3000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 3000),
        "state": {},
    }


async def _call(app: Any, path: str, body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(_scope(path, body), receive, send)
    return status


async def _asgi(target: str, n: int, top: int, sort: str) -> dict[str, Any]:
    import importlib

    module, attr = target.split(":")
    svc = getattr(importlib.import_module(module), attr)
    app = svc.to_asgi(is_main=True) if hasattr(svc, "to_asgi") else svc
    bodies = [json.dumps({"patient_id": f"PT{i % 10_000:05d}"}).encode() for i in range(n)]
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 120
        while await _call(app, "/predict", bodies[0]) != 200:  # the champion loads in a thread
            if time.monotonic() > deadline:
                raise SystemExit(f"{target}: /predict never answered 200")
            await asyncio.sleep(0.5)
        for body in bodies[:200]:  # warm-up
            await _call(app, "/predict", body)
        c0, w0 = time.process_time_ns(), time.perf_counter_ns()
        statuses = [await _call(app, "/predict", body) for body in bodies]
        c1, w1 = time.process_time_ns(), time.perf_counter_ns()
        out["cpu_us_per_request"] = round((c1 - c0) / 1000 / n, 1)
        out["wall_us_per_request"] = round((w1 - w0) / 1000 / n, 1)
        out["ok"] = statuses.count(200)
        if top:
            prof = cProfile.Profile()
            prof.enable()
            for body in bodies:
                await _call(app, "/predict", body)
            prof.disable()
            text = io.StringIO()
            pstats.Stats(prof, stream=text).sort_stats(sort).print_stats(top)
            say(f"cProfile of {target}'s event-loop thread, {n} requests:\n{text.getvalue()}")
    return out


def asgi_child(target: str, n: int, top: int, sort: str) -> None:
    """In a child process (the settings and Prometheus's multiprocess directory come from the environment)."""
    import uvloop

    print(json.dumps(uvloop.run(_asgi(target, n, top, sort))))


def _worker_and_rest(pid: int) -> tuple[float, float]:
    """(CPU s of BentoML's worker processes, CPU s of the rest of the tree: the arbiter)."""
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
    except psutil.Error:
        return 0.0, 0.0
    workers = [c for c in children if "_bentoml_impl.worker" in " ".join(c.cmdline())]
    if not workers:  # not BentoML: the server is the process itself
        return tree_cpu_s(pid), 0.0
    spent = sum(tree_cpu_s(c.pid) for c in workers)
    return spent, tree_cpu_s(pid) - spent


def main() -> None:  # noqa: PLR0915 - one straight script, step by step
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patients", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=2000, help="requests per in-process ASGI loop")
    p.add_argument("--rate", type=float, default=200.0, help="requests/s of each HTTP run")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of each HTTP run")
    p.add_argument("--cprofile", type=int, default=0, metavar="N", help="print the top N functions of each ASGI loop")
    p.add_argument("--sort", default="tottime", help="cProfile order: tottime or cumulative")
    p.add_argument("--only", choices=["asgi", "http"], help="run one of the two parts")
    p.add_argument("--apps", default="scorer,hello,starlette", help="comma-separated: scorer, hello, starlette")
    p.add_argument(
        "--sources",
        help="HTTP part only: serve from these source folders first on PYTHONPATH (another checkout's "
        "services/scorer/src:devstack/src:common/src), to compare two versions on the same machine",
    )
    p.add_argument("--asgi-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.asgi_child:
        asgi_child(args.asgi_child, args.requests, args.cprofile, args.sort)
        return
    apps = [a for a in args.apps.split(",") if a]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers and the stack on the way out
    if args.sources and args.only != "http":
        p.error("--sources needs --only http")
    facts = Facts()
    facts["loadavg_1m_start"] = round(os.getloadavg()[0], 2)
    workdir = Path(tempfile.mkdtemp(prefix="clinops-profile-http-"))
    say(f"stack: redis, postgres (server logs, load files and the model cache in {workdir})")
    with scratch_stack(["redis", "postgres"], start_timeout_s=120) as stack:
        conns = stack.connections()
        database_url = conns.database_url.get_secret_value()
        db.upgrade(database_url)
        views = synthetic_views(args.patients, pd.Timestamp.now(tz="UTC").floor("h"))
        OnlineStore(redis.Redis.from_url(conns.redis_url.get_secret_value()), prefix=PREFIX).write(views)
        frame = joined_frame(views)
        cache_champion(workdir / "models", frame.head(5000))
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
        stores = {name: supervisor.running_pid(stack, name) for name in ("postgres", "redis")}
        if args.only != "http":
            for app in apps:
                prom = workdir / f"prometheus-{app}"
                prom.mkdir(exist_ok=True)
                say(f"{app}: ASGI stack in process, {args.requests} requests one after another")
                argv = [sys.executable, "-m", "clinops_devstack.bench.scorer_http_profile", "--asgi-child", APPS[app]]
                argv += ["--requests", str(args.requests), "--cprofile", str(args.cprofile), "--sort", args.sort]
                child_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(prom)}
                done = subprocess.run(argv, env=child_env, check=True, capture_output=True, text=True)
                sys.stderr.write(done.stderr)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                facts[f"asgi_{app}_cpu_us_per_request"] = result["cpu_us_per_request"]
                facts[f"asgi_{app}_wall_us_per_request"] = result["wall_us_per_request"]
                facts[f"asgi_{app}_ok"] = result["ok"]
        if args.sources:
            env["PYTHONPATH"] = args.sources
            facts["sources"] = args.sources
        if args.only != "asgi":
            for app in apps:
                port = port_for.select_random()
                if app == "scorer":
                    argv = [sys.executable, "-m", "clinops_scorer", "serve", "--port", str(port)]
                elif app == "starlette":
                    argv = [sys.executable, "-m", "uvicorn", APPS[app], "--port", str(port), "--loop", "uvloop"]
                    argv += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
                else:
                    argv = [sys.executable, "-m", "bentoml", "serve", APPS[app], "--port", str(port)]
                with server(argv, env, workdir / f"{app}.log", port) as (url, pid):
                    load(url, 50, 3, workdir)  # warm-up
                    say(f"{app}: HTTP at {args.rate:.0f} req/s for {args.duration:.0f} s")
                    w0, a0 = _worker_and_rest(pid)
                    s0 = {k: tree_cpu_s(v) for k, v in stores.items()}
                    run = load(url, args.rate, args.duration, workdir)
                    w1, a1 = _worker_and_rest(pid)
                    sent = max(run["sent"], 1)
                    facts[f"http_{app}_cpu_ms_per_request"] = round(1000 * ((w1 + a1) - (w0 + a0)) / sent, 3)
                    facts[f"http_{app}_worker_cpu_ms_per_request"] = round(1000 * (w1 - w0) / sent, 3)
                    facts[f"http_{app}_arbiter_cpu_ms_per_request"] = round(1000 * (a1 - a0) / sent, 3)
                    for name, pid_ in stores.items():
                        spent = tree_cpu_s(pid_) - s0[name]
                        facts[f"http_{app}_{name}_cpu_ms_per_request"] = round(1000 * spent / sent, 3)
                    facts[f"http_{app}_ok"] = sum(1 for s in run["statuses"] if s == 200)
                    facts[f"http_{app}_sent"] = run["sent"]
                    facts[f"http_{app}_loadgen_cpu_ms_per_request"] = round(1000 * run["cpu_s"] / sent, 3)
    facts["loadavg_1m_end"] = round(os.getloadavg()[0], 2)


if __name__ == "__main__":
    main()
