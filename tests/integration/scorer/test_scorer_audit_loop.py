"""The audit writer on the event loop (``/predict``'s group commits, no thread): a coroutine resumes
only once its row is committed, concurrent coroutines share group commits, a refused row fails only
its own request, and a closed writer or an unreachable PostgreSQL is ``AuditUnavailable``, never a
silent answer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from clinops_common import db
from clinops_scorer.audit import AuditUnavailable, libpq_dsn
from clinops_scorer.audit_loop import LoopAuditWriter
from clinops_scorer.core import AuditRow, FeatureOrder

ORDER = FeatureOrder("order-loop-audit", "svc", ("a", "b"), ("vitals",))


def _row(risk_level: str = "LOW") -> AuditRow:
    at = datetime.now(UTC)
    return AuditRow(
        id=uuid.uuid4(),
        patient_id="PT00001",
        predicted_at=at,
        score=0.3,
        risk_level=risk_level,
        model_name="m",
        model_version="1",
        order=ORDER,
        feature_values=np.array([1.0, np.nan], dtype=np.float32),
        feature_event_times=[at],
    )


def _committed(dsn: str, ids: list[uuid.UUID]) -> int:
    with psycopg.connect(dsn) as conn:  # another session: sees only committed rows
        row = conn.execute("SELECT count(*) FROM predictions WHERE id = ANY(%s)", [ids]).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def dsn(database_url: str) -> str:
    db.upgrade(database_url)
    return libpq_dsn(database_url)


def test_each_coroutine_resumes_after_its_row_is_committed_and_groups_are_shared(dsn: str) -> None:
    commits: list[int] = []
    rows = [_row() for _ in range(40)]

    async def scenario() -> list[int]:
        writer = LoopAuditWriter(dsn, on_commit=lambda n, _s: commits.append(n))

        async def one(row: AuditRow) -> int:
            await writer.write([row], timeout_s=10)
            return _committed(dsn, [row.id])  # checked the moment the coroutine resumes

        try:
            return list(await asyncio.gather(*(one(r) for r in rows)))
        finally:
            await writer.aclose()

    seen = asyncio.run(scenario())
    assert seen == [1] * len(rows)
    assert sum(commits) == len(rows)
    assert len(commits) < len(rows)  # 40 coroutines at once: fewer commits than rows


def test_a_refused_row_fails_only_its_own_request(dsn: str) -> None:
    good, bad = _row(), _row(risk_level="NOT-A-LEVEL")  # the table's check constraint refuses it

    async def scenario() -> list[BaseException | None]:
        writer = LoopAuditWriter(dsn)
        try:
            results = await asyncio.gather(writer.write([good]), writer.write([bad]), return_exceptions=True)
        finally:
            await writer.aclose()
        return [r if isinstance(r, BaseException) else None for r in results]

    ok, refused = asyncio.run(scenario())
    assert ok is None
    assert isinstance(refused, AuditUnavailable)
    assert _committed(dsn, [good.id]) == 1
    assert _committed(dsn, [bad.id]) == 0


def test_a_closed_writer_and_an_unreachable_database_are_unavailable(dsn: str) -> None:
    async def closed() -> None:
        writer = LoopAuditWriter(dsn)
        await writer.aclose()
        await writer.write([_row()])

    with pytest.raises(AuditUnavailable, match="shutting down"):
        asyncio.run(closed())

    row = _row()

    async def nowhere() -> None:
        writer = LoopAuditWriter("host=127.0.0.1 port=9 dbname=x user=x connect_timeout=1", connect_timeout_s=1)
        try:
            await writer.write([row], timeout_s=10)
        finally:
            await writer.aclose()

    with pytest.raises(AuditUnavailable, match="commit failed"):
        asyncio.run(nowhere())
    assert _committed(dsn, [row.id]) == 0
