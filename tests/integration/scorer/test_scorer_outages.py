"""Outages and kills: Redis or PostgreSQL stopped -> not ready and 503, never an unaudited answer;
SIGTERM under load drains and flushes; SIGKILL under load loses no answered prediction's row."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
import redis
from scorer_helpers import ScorerProcess, World, run_scorer, scorer_env

from clinops_common import db
from clinops_common.features.materialize import materialize
from clinops_common.features.online import OnlineStore
from clinops_devstack import components as comps
from clinops_devstack import supervisor
from clinops_devstack.scratch import scratch_stack
from clinops_devstack.settings import StackSettings
from clinops_scorer.audit import libpq_dsn

PATIENTS = [f"PT{i:05d}" for i in range(40)]


@pytest.fixture(scope="module")
def private() -> Iterator[StackSettings]:
    """Redis and PostgreSQL of their own: these tests stop and start them."""
    with scratch_stack(["redis", "postgres"]) as settings:
        db.upgrade(settings.connections().database_url.get_secret_value())
        yield settings


def _materialize(world: World, settings: StackSettings) -> None:
    client = redis.Redis.from_url(settings.connections().redis_url.get_secret_value())
    materialize(world.store, OnlineStore(client, prefix=world.prefix))
    client.close()


def _env(world: World, settings: StackSettings, mlflow_url: str, cache: Path) -> dict[str, str]:
    c = settings.connections()
    return scorer_env(
        c.redis_url.get_secret_value(),
        c.database_url.get_secret_value(),
        mlflow_url,
        model_name=world.model_name,
        online_prefix=world.prefix,
        model_cache_dir=cache,
        audit_timeout_s=3,
        redis_timeout_s=0.5,
        threads=8,
    )


def _predict(server: ScorerProcess, patient: str = "PT00001") -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json={"patient_id": patient}, timeout=10)


def _ready(server: ScorerProcess) -> int:
    return httpx.get(f"{server.url}/readyz", timeout=10).status_code


def _committed(settings: StackSettings, ids: list[str]) -> set[str]:
    dsn = libpq_dsn(settings.connections().database_url.get_secret_value())
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id::text FROM predictions WHERE id = ANY(%s)", [[uuid.UUID(i) for i in ids]])
        return {r[0] for r in rows}


def _rows_since(settings: StackSettings, t0: float) -> int:
    dsn = libpq_dsn(settings.connections().database_url.get_secret_value())
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM predictions WHERE recorded_at >= to_timestamp(%s)", [t0]).fetchone()
        assert row is not None
        return int(row[0])


class Load:
    """``n`` client threads sending /predict back to back; records every answered prediction id."""

    def __init__(self, url: str, n: int = 6) -> None:
        self.url = url
        self.ids: list[str] = []
        self.statuses: list[int] = []
        self.errors = 0
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def _run(self, i: int) -> None:
        with httpx.Client(timeout=10) as client:
            k = 0
            while not self._stop.is_set():
                k += 1
                with self._lock:
                    self.sent += 1
                try:
                    r = client.post(f"{self.url}/predict", json={"patient_id": PATIENTS[(i * 7 + k) % len(PATIENTS)]})
                except httpx.HTTPError:
                    with self._lock:
                        self.errors += 1
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.statuses.append(r.status_code)
                    if r.status_code == 200:
                        self.ids.append(r.json()["prediction_id"])

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


def test_redis_and_postgres_outages_then_sigterm_drains(
    world: World, private: StackSettings, mlflow_url: str, tmp_path: Path
) -> None:
    _materialize(world, private)
    with run_scorer(_env(world, private, mlflow_url, tmp_path / "cache"), tmp_path / "scorer.log") as server:
        assert _predict(server).status_code == 200

        supervisor.stop(private, "redis", say=lambda _m: None)
        assert _ready(server) == 503
        down = _predict(server)
        assert down.status_code == 503
        assert "online store" in down.json()["error"]
        supervisor.start(private, comps.BUILDERS["redis"](private), say=lambda _m: None)
        _materialize(world, private)  # a restarted Redis is empty (the harness runs it without persistence)
        assert _ready(server) == 200
        assert _predict(server).status_code == 200

        supervisor.stop(private, "postgres", say=lambda _m: None)
        t_down = time.time()
        assert _ready(server) == 503
        down = _predict(server)
        assert down.status_code == 503
        assert "audit" in down.json()["error"]
        supervisor.start(private, comps.BUILDERS["postgres"](private), say=lambda _m: None)
        assert _rows_since(private, t_down) == 0  # nothing was written for the refused request
        deadline = time.monotonic() + 20
        while _predict(server).status_code != 200:  # the writer reconnects on its next commit
            assert time.monotonic() < deadline, server.tail()
            time.sleep(0.2)
        assert _ready(server) == 200

        workers = server.tree()[1:]
        assert workers, "no worker process under the server"
        with Load(server.url) as load:
            time.sleep(2.0)
            server.signal(signal.SIGTERM)
            assert server.proc.wait(30) == 0, server.tail()
            _, alive = psutil.wait_procs(workers, timeout=10)
            assert not alive, "a worker outlived the server"
        assert load.ids, (load.statuses[:20], load.errors)
        assert set(load.statuses) <= {200, 503}, load.statuses
        assert _committed(private, load.ids) == set(load.ids)  # every answer has its committed row
        log = server.tail(400)
        assert "scorer_stopped" in log


def test_sigkill_under_load_loses_no_answered_prediction(
    world: World, private: StackSettings, mlflow_url: str, tmp_path: Path
) -> None:
    _materialize(world, private)
    with run_scorer(_env(world, private, mlflow_url, tmp_path / "cache"), tmp_path / "scorer.log") as server:
        t0 = time.time() - 1
        procs = server.tree()
        with Load(server.url, n=6) as load:
            time.sleep(2.5)
            server.signal(signal.SIGKILL)
            _, alive = psutil.wait_procs(procs, timeout=10)
            assert not alive
            answered = len(load.ids)
            time.sleep(0.5)
        assert len(load.ids) == answered  # nothing answers after the kill
        assert len(load.ids) > 20, (load.statuses[:20], load.errors)
        assert _committed(private, load.ids) == set(load.ids)
        orphans = _rows_since(private, t0) - len(load.ids)
        assert 0 <= orphans <= 6  # rows committed without a response: at most the requests in flight
