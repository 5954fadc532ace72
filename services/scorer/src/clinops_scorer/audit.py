"""PostgreSQL adapter: the audit trail, committed before any response leaves.

Group commit: requests (threads through ``write``, coroutines through ``write_async``) hand their
rows to one writer thread and wait. The writer takes every row queued so far (optionally lingering
``linger_s`` for more), inserts them in one statement and commits once with ``synchronous_commit =
on``; then it wakes each waiting request. Rows that arrive
while a commit is in flight go in the next one, so under load many requests share one WAL flush and
at low load nobody waits for a timer. A failed commit fails every request of its group (503: no
prediction without its row); a row the database refuses (a constraint) fails only its own request.

Vectors travel in PostgreSQL's binary array format straight from numpy (no per-value Python work).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa
from psycopg.adapt import Dumper
from psycopg.pq import Format

from clinops_scorer.core import AuditRow, FeatureOrder

FLOAT4_OID, FLOAT4_ARRAY_OID = 700, 1021

INSERT_ORDER = (
    "INSERT INTO feature_orders (feature_order_id, feature_service, feature_names, view_names)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT (feature_order_id) DO NOTHING"
)
COLUMNS = (
    "id",
    "patient_id",
    "predicted_at",
    "score",
    "risk_level",
    "model_name",
    "model_version",
    "latency_ms",
    "source",
    "batch_id",
    "snapshot_id",
    "feature_order_id",
    "feature_values",
    "feature_event_times",
    "degraded",
    "stale_views",
    "missing_views",
)
_PLACEHOLDERS = {"feature_values": "%b", "feature_event_times": "%s::timestamptz[]"}
_ROW = "(" + ", ".join(_PLACEHOLDERS.get(c, "%s") for c in COLUMNS) + ")"
_ON_CONFLICT = " ON CONFLICT (id, predicted_at) DO NOTHING"  # the partitioned table's key (revision 0004)
INSERT_PREDICTION = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES {_ROW}{_ON_CONFLICT}"  # noqa: S608


@functools.lru_cache(maxsize=64)
def insert_predictions(n: int) -> str:
    """One INSERT of ``n`` rows (one statement: one round trip, atomic, one commit in autocommit)."""
    return f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES {', '.join([_ROW] * n)}{_ON_CONFLICT}"  # noqa: S608


class AuditUnavailable(RuntimeError):
    """The audit row could not be committed: the prediction must not be returned."""


def libpq_dsn(database_url: str) -> str:
    """A libpq connection string from the SQLAlchemy URL of ``CLINOPS_DATABASE_URL``."""
    return sa.engine.make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Float4ArrayDumper(Dumper):
    """A 1-d float32 numpy array as a binary ``real[]`` (NaN stays NaN)."""

    format = Format.BINARY
    oid = FLOAT4_ARRAY_OID

    def dump(self, obj: Any) -> bytes:
        values = np.asarray(obj, dtype=np.float32).reshape(-1)
        cells = np.empty(len(values), dtype=[("len", ">i4"), ("v", ">f4")])
        cells["len"] = 4
        cells["v"] = values
        return struct.pack(">iiIii", 1, 0, FLOAT4_OID, len(values), 1) + cells.tobytes()


def connect(dsn: str, connect_timeout_s: int = 2) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, connect_timeout=connect_timeout_s, options="-c synchronous_commit=on")
    conn.adapters.register_dumper(np.ndarray, Float4ArrayDumper)
    return conn


def params(row: AuditRow) -> tuple[Any, ...]:
    return (
        row.id,
        row.patient_id,
        row.predicted_at,
        row.score,
        row.risk_level,
        row.model_name,
        row.model_version,
        row.latency_ms,
        row.source,
        row.batch_id,
        row.snapshot_id,
        row.order.id,
        np.asarray(row.feature_values, dtype=np.float32),
        row.feature_event_times,
        row.degraded,
        list(row.stale_views) or None,
        list(row.missing_views) or None,
    )


def insert_rows(conn: psycopg.Connection[Any], rows: Sequence[AuditRow], known_orders: set[str]) -> int:
    """Insert ``rows`` (and any feature order not in ``known_orders``) in the connection's open
    transaction; returns how many rows were new. The caller adds the orders to ``known_orders`` once
    the transaction has committed."""
    with conn.cursor() as cur:
        orders: dict[str, FeatureOrder] = {r.order.id: r.order for r in rows if r.order.id not in known_orders}
        if orders:
            cur.executemany(INSERT_ORDER, [(o.id, o.service, list(o.names), list(o.views)) for o in orders.values()])
        cur.executemany(INSERT_PREDICTION, [params(r) for r in rows])
        inserted = cur.rowcount
    return max(inserted, 0)


def commit_rows(conn: psycopg.Connection[Any], rows: Sequence[AuditRow], known_orders: set[str]) -> None:
    """Commit ``rows`` on an autocommit connection, durable when this returns (synchronous commit
    on): any feature order not in ``known_orders`` first (idempotent), then the rows in one
    multi-row INSERT (one round trip, about half the client CPU of a pipeline of inserts plus a
    COMMIT for small groups); more rows than one statement takes go in one transaction."""
    orders: dict[str, FeatureOrder] = {r.order.id: r.order for r in rows if r.order.id not in known_orders}
    several = len(rows) > _ROWS_PER_STATEMENT
    with conn.transaction() if several else contextlib.nullcontext(), conn.cursor() as cur:
        for o in orders.values():
            cur.execute(INSERT_ORDER, (o.id, o.service, list(o.names), list(o.views)))
        for i in range(0, len(rows), _ROWS_PER_STATEMENT):
            part = rows[i : i + _ROWS_PER_STATEMENT]
            cur.execute(insert_predictions(len(part)), [v for r in part for v in params(r)])
    known_orders.update(orders)


_ROWS_PER_STATEMENT = 64  # statements of 17 x 64 parameters (PostgreSQL's limit: 65535)


@dataclass
class _Group:
    rows: Sequence[AuditRow]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    wake: Callable[[], None] | None = None  # called by the writer thread once done (an event loop's waiter)

    def finish(self, error: BaseException | None) -> None:
        self.error = error
        self.done.set()
        if self.wake is not None:
            self.wake()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():  # a waiter that timed out has cancelled it
        fut.set_result(None)


_STOP = object()
OnCommit = Callable[[int, float], None]


class AuditWriter:
    """One writer thread, one connection, group commits; ``write`` returns once the rows are durable."""

    def __init__(
        self,
        dsn: str,
        *,
        linger_s: float = 0.0,
        max_rows: int = 256,
        connect_timeout_s: int = 2,
        on_commit: OnCommit | None = None,
    ) -> None:
        self.dsn = dsn
        self.linger_s = linger_s
        self.max_rows = max_rows
        self.connect_timeout_s = connect_timeout_s
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._conn: psycopg.Connection[Any] | None = None
        self._known_orders: set[str] = set()
        self._lock = threading.Lock()  # closed flag vs enqueue
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    # ---- request side ----
    def write(self, rows: Sequence[AuditRow], timeout_s: float = 5.0) -> None:
        """Block until ``rows`` are committed; ``AuditUnavailable`` if they are not (or not in time)."""
        group = self._enqueue(_Group(rows))
        if not group.done.wait(timeout_s):
            raise AuditUnavailable(f"the audit commit took longer than {timeout_s:g}s")
        _raise_failure(group)

    async def write_async(self, rows: Sequence[AuditRow], timeout_s: float = 5.0) -> None:
        """``write`` for a coroutine: the event loop goes on serving while the rows are committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, fut)

        group = self._enqueue(_Group(rows, wake=wake))
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise AuditUnavailable(f"the audit commit took longer than {timeout_s:g}s") from None
        _raise_failure(group)

    def _enqueue(self, group: _Group) -> _Group:
        with self._lock:
            if self._closed:
                raise AuditUnavailable("the audit writer is shutting down")
            self._queue.put(group)
        return group

    def close(self, timeout_s: float = 10.0) -> None:
        """Refuse new rows, commit every row already handed over, close the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout_s)

    # ---- writer thread ----
    def _next_groups(self, first: _Group) -> tuple[list[_Group], bool]:
        groups, n, stop = [first], len(first.rows), False
        deadline = time.monotonic() + self.linger_s
        while n < self.max_rows:
            try:
                if self.linger_s > 0:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            groups.append(item)
            n += len(item.rows)
        return groups, stop

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                groups, stop = self._next_groups(item)
                self._commit(groups)
                if stop:
                    break
        finally:
            while True:  # nothing can be queued after _STOP, but never leave a waiter hanging
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Group):
                    item.finish(AuditUnavailable("the audit writer stopped"))
            self._drop()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, self.connect_timeout_s)
            self._conn.autocommit = True  # each multi-row INSERT commits itself
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def _commit(self, groups: list[_Group]) -> None:
        rows = [r for g in groups for r in g.rows]
        t0 = time.perf_counter()
        errors: list[BaseException | None] = [None] * len(groups)
        try:
            conn = self._connection()
            try:
                commit_rows(conn, rows, self._known_orders)
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
                # a row the database refuses (nothing of the statement was kept): each request's rows on their own
                for i, g in enumerate(groups):
                    try:
                        commit_rows(conn, g.rows, self._known_orders)
                    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as err:
                        errors[i] = err
        except (psycopg.Error, OSError) as err:
            self._drop()
            errors = [err] * len(groups)
        if self.on_commit is not None and errors[0] is None:
            self.on_commit(len(rows), time.perf_counter() - t0)
        for g, failure in zip(groups, errors, strict=True):
            g.finish(failure)


def _raise_failure(group: _Group) -> None:
    if group.error is not None:
        raise AuditUnavailable(f"the audit commit failed: {type(group.error).__name__}") from group.error


class PostgresProbe:
    """``SELECT 1`` on a connection of its own (for /readyz)."""

    def __init__(self, dsn: str, connect_timeout_s: int = 2) -> None:
        self.dsn = dsn
        self.connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def ping(self) -> bool:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.dsn, connect_timeout=self.connect_timeout_s, autocommit=True)
                self._conn.execute("SELECT 1")
                return True
            except (psycopg.Error, OSError):
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                return False

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
