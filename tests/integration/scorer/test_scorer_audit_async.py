"""The audit writer's coroutine wait (``/predict`` awaits its row's commit on the event loop): a
coroutine resumes only once its row is committed, concurrent coroutines share group commits, and a
closed writer or an unreachable PostgreSQL is ``AuditUnavailable``, never a silent answer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from clinops_common import db
from clinops_scorer.audit import AuditUnavailable, AuditWriter, libpq_dsn
from clinops_scorer.core import AuditRow, FeatureOrder

ORDER = FeatureOrder("order-async-audit", "svc", ("a", "b"), ("vitals",))


def _row() -> AuditRow:
    at = datetime.now(UTC)
    return AuditRow(
        id=uuid.uuid4(),
        patient_id="PT00001",
        predicted_at=at,
        score=0.3,
        risk_level="LOW",
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
    writer = AuditWriter(dsn, on_commit=lambda rows, _s: commits.append(rows))
    rows = [_row() for _ in range(40)]

    async def one(row: AuditRow) -> int:
        await writer.write_async([row], timeout_s=10)
        return _committed(dsn, [row.id])  # checked the moment the coroutine resumes

    async def many() -> list[int]:
        return await asyncio.gather(*(one(r) for r in rows))

    try:
        seen = asyncio.run(many())
    finally:
        writer.close()
    assert seen == [1] * len(rows)
    assert sum(commits) == len(rows)
    assert len(commits) < len(rows)  # 40 coroutines at once: fewer commits than rows


def test_a_closed_writer_and_an_unreachable_database_are_unavailable(dsn: str) -> None:
    closed = AuditWriter(dsn)
    closed.close()
    with pytest.raises(AuditUnavailable, match="shutting down"):
        asyncio.run(closed.write_async([_row()]))

    nowhere = AuditWriter("host=127.0.0.1 port=9 dbname=x user=x connect_timeout=1", connect_timeout_s=1)
    row = _row()
    try:
        with pytest.raises(AuditUnavailable, match="commit failed"):
            asyncio.run(nowhere.write_async([row], timeout_s=10))
    finally:
        nowhere.close()
    assert _committed(dsn, [row.id]) == 0
