"""The audit writer on the worker's event loop: group commit with no thread of its own.

Requests (coroutines) hand their rows over and await them. One flusher task takes every row queued
so far (optionally lingering ``linger_s`` for more), inserts them with one multi-row ``INSERT`` on an
autocommit ``psycopg.AsyncConnection`` (``synchronous_commit = on``: durable when it returns) and
resolves each request's future; rows that arrive while a commit is in flight go in the next one. The
event loop serves other requests while PostgreSQL flushes its WAL.

Why not a writer thread (``audit.AuditWriter``, kept for synchronous callers): each commit then
costs two wake-ups more (the writer's, then the loop's through ``call_soon_threadsafe``), and the
writer, back from its commit with the rows durable, must take the GIL from the loop thread, which
may keep it for the switch interval (5 ms by default) while it serves requests. On a machine whose
two cores are shared, each wake-up may also wait for a core.

Guarantees as the thread writer's: a request resumes only once its rows are committed; a failed
commit fails every request of its group (503: no prediction without its row); a row the database
refuses (a constraint) fails only its own request; after ``aclose`` nothing is accepted and
everything already handed over has been committed or failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg

from clinops_scorer.audit import (
    _ROWS_PER_STATEMENT,
    INSERT_ORDER,
    AuditUnavailable,
    Float4ArrayDumper,
    OnCommit,
    insert_predictions,
    params,
)
from clinops_scorer.core import AuditRow, FeatureOrder


async def connect_async(dsn: str, connect_timeout_s: int = 2) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(
        dsn, connect_timeout=connect_timeout_s, options="-c synchronous_commit=on", autocommit=True
    )
    conn.adapters.register_dumper(np.ndarray, Float4ArrayDumper)
    return conn


async def commit_rows_async(
    conn: psycopg.AsyncConnection[Any], rows: Sequence[AuditRow], known_orders: set[str]
) -> None:
    """``audit.commit_rows`` on an async connection: durable when it returns."""
    orders: dict[str, FeatureOrder] = {r.order.id: r.order for r in rows if r.order.id not in known_orders}
    several = len(rows) > _ROWS_PER_STATEMENT
    async with conn.transaction() if several else contextlib.nullcontext(), conn.cursor() as cur:
        for o in orders.values():
            await cur.execute(INSERT_ORDER, (o.id, o.service, list(o.names), list(o.views)))
        for i in range(0, len(rows), _ROWS_PER_STATEMENT):
            part = rows[i : i + _ROWS_PER_STATEMENT]
            await cur.execute(insert_predictions(len(part)), [v for r in part for v in params(r)])
    known_orders.update(orders)


Waiter = tuple[Sequence[AuditRow], "asyncio.Future[None]"]


def _retrieved(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


class LoopAuditWriter:
    """Group commits on the running event loop; ``write`` returns once the rows are durable."""

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
        self._queue: list[Waiter] = []
        self._flusher: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._known_orders: set[str] = set()
        self._closed = False

    async def write(self, rows: Sequence[AuditRow], timeout_s: float = 5.0) -> None:
        """Wait until ``rows`` are committed; ``AuditUnavailable`` if they are not (or not in time)."""
        if self._closed:
            raise AuditUnavailable("the audit writer is shutting down")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        fut.add_done_callback(_retrieved)  # a waiter that timed out never reads its group's failure
        self._queue.append((rows, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        try:
            # shielded: a request that stops waiting does not cancel the commit its group shares
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            raise AuditUnavailable(f"the audit commit took longer than {timeout_s:g}s") from None
        except psycopg.Error as err:
            raise AuditUnavailable(f"the audit commit failed: {type(err).__name__}") from err
        except OSError as err:
            raise AuditUnavailable(f"the audit commit failed: {type(err).__name__}") from err

    async def aclose(self) -> None:
        """Refuse new rows, commit every row already handed over, close the connection."""
        self._closed = True
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        for _, fut in self._queue:  # nothing is queued after a flush, but never leave a waiter hanging
            if not fut.done():
                fut.set_exception(AuditUnavailable("the audit writer stopped"))
        self._queue.clear()
        await self._drop()

    # ---- the flusher task ----
    def _take(self) -> list[Waiter]:
        n, k = 0, 0
        while k < len(self._queue) and (k == 0 or n + len(self._queue[k][0]) <= self.max_rows):
            n += len(self._queue[k][0])
            k += 1
        taken, self._queue = self._queue[:k], self._queue[k:]
        return taken

    async def _flush(self) -> None:
        while self._queue:
            if self.linger_s > 0:
                await asyncio.sleep(self.linger_s)
            await self._commit(self._take())

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await connect_async(self.dsn, self.connect_timeout_s)
        return self._conn

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._conn.close()
        self._conn = None

    async def _commit(self, groups: list[Waiter]) -> None:
        rows = [r for g, _ in groups for r in g]
        t0 = time.perf_counter()
        errors: list[BaseException | None] = [None] * len(groups)
        try:
            conn = await self._connection()
            try:
                await commit_rows_async(conn, rows, self._known_orders)
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
                # a row the database refuses (nothing of the statement was kept): each request's rows on their own
                for i, (g, _) in enumerate(groups):
                    try:
                        await commit_rows_async(conn, g, self._known_orders)
                    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as err:
                        errors[i] = err
        except (psycopg.Error, OSError) as err:
            await self._drop()
            errors = [err] * len(groups)
        if self.on_commit is not None and errors[0] is None:
            self.on_commit(len(rows), time.perf_counter() - t0)
        for (_, fut), failure in zip(groups, errors, strict=True):
            if fut.done():
                continue
            if failure is None:
                fut.set_result(None)
            else:
                fut.set_exception(failure)
