"""Revision 0004: the scorer's role may only insert, the monitor's reads predictions and writes its
labels, predictions are partitioned by month (next month and the default partition take inserts),
and retention drops whole months, never rows."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from clinops_common import db
from clinops_common.db import partitions, roles
from clinops_scorer import audit
from clinops_scorer.core import AuditRow, FeatureOrder

# SQL built here names partitions from dates and ids this test made (never input).
# ruff: noqa: S608

ORDER = FeatureOrder("order-0004", "svc", ("a", "b"), ("vitals",))


@dataclass(frozen=True)
class Db:
    owner: str  # the migrating login (owner of the objects' role)
    scorer: str
    monitor: str


def _fresh(database_url: str, name: str) -> str:
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(database_url).set(database=name).render_as_string(hide_password=False)


def _drop(database_url: str, name: str) -> None:
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def audit_db(database_url: str, stack: Any) -> Iterator[Db]:
    name = f"audit_{uuid.uuid4().hex[:10]}"
    url = _fresh(database_url, name)
    try:
        db.upgrade(url)
        # roles are the server's, shared by every database: keep the stack's passwords
        secret = {role: stack.settings.role_password(role).get_secret_value() for role in (roles.SCORER, roles.MONITOR)}
        for role, pw in secret.items():
            roles.grant_login(url, role, pw)
        yield Db(
            owner=url,
            scorer=roles.role_url(url, roles.SCORER, secret[roles.SCORER]),
            monitor=roles.role_url(url, roles.MONITOR, secret[roles.MONITOR]),
        )
    finally:
        _drop(database_url, name)


def _row(at: datetime, **kw: object) -> AuditRow:
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
        **kw,  # type: ignore[arg-type]
    )


def _scorer_insert(url: str, rows: list[AuditRow]) -> int:
    """The scorer's own insert path (its SQL, its ON CONFLICT) with the scorer's credentials."""
    with audit.connect(audit.libpq_dsn(url)) as conn:
        n = audit.insert_rows(conn, rows, set())
        conn.commit()
    return n


def _month_start(t: datetime, months: int = 0) -> datetime:
    y, m = divmod(t.month - 1 + months, 12)
    return datetime(t.year + y, m + 1, 1, tzinfo=UTC)


def _where(url: str, prediction_id: uuid.UUID) -> str:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        part = conn.execute(
            sa.text("SELECT tableoid::regclass::text FROM predictions WHERE id = :id"), {"id": prediction_id}
        ).scalar_one()
    engine.dispose()
    return str(part)


def test_scorer_may_only_insert_and_next_month_has_its_partition(audit_db: Db) -> None:
    now = datetime.now(UTC)
    this, nxt = _row(now), _row(_month_start(now, 1) + timedelta(days=3))
    assert _scorer_insert(audit_db.scorer, [this, nxt]) == 2
    assert _scorer_insert(audit_db.scorer, [this]) == 0  # a replay of the same row writes nothing
    assert _where(audit_db.owner, nxt.id) == f"predictions_{_month_start(now, 1):%Y_%m}"

    with psycopg.connect(audit.libpq_dsn(audit_db.scorer), autocommit=True) as conn:
        for sql in (
            "UPDATE predictions SET score = 0.99",
            "DELETE FROM predictions",
            "TRUNCATE predictions",
            f"UPDATE predictions_{now:%Y_%m} SET score = 0.99",  # not through a partition either
            f"DELETE FROM predictions_{now:%Y_%m}",
            "SELECT patient_id, score FROM predictions",  # only the key columns (for ON CONFLICT)
            "SELECT * FROM prediction_audit",
            "INSERT INTO prediction_outcomes (prediction_id, predicted_at, label, horizon_hours, watermark)"
            f" VALUES ('{this.id}', now(), true, 24, now())",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
    engine = sa.create_engine(audit_db.owner, poolclass=sa.NullPool)
    with engine.connect() as conn:
        scores = conn.execute(sa.text("SELECT score FROM predictions")).scalars().all()
    engine.dispose()
    assert scores == [0.3, 0.3]


def test_monitor_reads_predictions_and_writes_only_its_labels(audit_db: Db) -> None:
    row = _row(datetime.now(UTC) - timedelta(days=2))
    _scorer_insert(audit_db.scorer, [row])
    with psycopg.connect(audit.libpq_dsn(audit_db.monitor), autocommit=True) as conn:
        got = conn.execute("SELECT id, predicted_at FROM predictions").fetchall()
        assert got == [(row.id, row.predicted_at)]
        conn.execute(
            "INSERT INTO prediction_outcomes (prediction_id, predicted_at, label, horizon_hours, watermark)"
            " VALUES (%s, %s, false, 24, now())",
            (row.id, row.predicted_at),
        )
        # a label must name a real prediction (id and partition key)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO prediction_outcomes (prediction_id, predicted_at, label, horizon_hours, watermark)"
                " VALUES (%s, %s, false, 24, now())",
                (uuid.uuid4(), row.predicted_at),
            )
        for sql in (
            "UPDATE predictions SET score = 0.9",
            "DELETE FROM predictions",
            "INSERT INTO predictions (id, patient_id, predicted_at, score, risk_level, model_name, model_version,"
            " features) VALUES (gen_random_uuid(), 'X', now(), 0.1, 'LOW', 'm', '1', '{}')",
            "UPDATE prediction_outcomes SET label = true",
            "DELETE FROM prediction_outcomes",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)


def test_default_partition_catches_a_missing_month_and_maintenance_moves_it_with_its_label(audit_db: Db) -> None:
    now = datetime.now(UTC)
    far = _row(_month_start(now, partitions.DEFAULT_MONTHS_AHEAD + 2) + timedelta(hours=5))
    _scorer_insert(audit_db.scorer, [far])
    assert _where(audit_db.owner, far.id) == "predictions_default"
    with psycopg.connect(audit.libpq_dsn(audit_db.monitor), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO prediction_outcomes (prediction_id, predicted_at, label, horizon_hours, watermark)"
            " VALUES (%s, %s, true, 24, now())",
            (far.id, far.predicted_at),
        )
    done = partitions.maintain(audit_db.owner, months_ahead=partitions.DEFAULT_MONTHS_AHEAD + 2)
    month = f"predictions_{far.predicted_at:%Y_%m}"
    assert month in done.created
    assert done.default_rows == 0
    assert _where(audit_db.owner, far.id) == month
    again = partitions.maintain(audit_db.owner, months_ahead=partitions.DEFAULT_MONTHS_AHEAD + 2)
    assert again.created == []
    assert again.dropped == []
    engine = sa.create_engine(audit_db.owner, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT label FROM prediction_outcomes")).scalars().all() == [True]
    engine.dispose()


def test_retention_drops_whole_old_months_with_their_labels(audit_db: Db) -> None:
    now = datetime.now(UTC)
    old_month = _month_start(now, -12 * 8)
    engine = sa.create_engine(audit_db.owner, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text("SELECT clinops_create_prediction_partitions(0, CAST(:m AS date))"), {"m": old_month.date()}
        )
    old, recent = _row(old_month + timedelta(days=1)), _row(now - timedelta(days=1))
    _scorer_insert(audit_db.scorer, [old, recent])
    with engine.begin() as conn:
        for r in (old, recent):
            conn.execute(
                sa.text(
                    "INSERT INTO prediction_outcomes (prediction_id, predicted_at, label, horizon_hours, watermark)"
                    " VALUES (:id, :t, false, 24, now())"
                ),
                {"id": r.id, "t": r.predicted_at},
            )
    done = partitions.maintain(audit_db.owner, retention_years=7)
    # every month older than 7 years went (8 years ago ... 7 years and a month ago), nothing newer
    assert f"predictions_{old_month:%Y_%m}" in done.dropped
    assert all(name < f"predictions_{_month_start(now, -12 * 7):%Y_%m}" for name in done.dropped)
    assert "predictions_default" in done.partitions
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM predictions")).scalars().all() == [recent.id]
        assert conn.execute(sa.text("SELECT prediction_id FROM prediction_outcomes")).scalars().all() == [recent.id]
    engine.dispose()
    with pytest.raises(ValueError, match="at least 1"):
        partitions.maintain(audit_db.owner, retention_years=0)


def test_upgrade_from_0003_keeps_rows_and_labels_and_downgrade_restores_them(database_url: str) -> None:
    name = f"audit_{uuid.uuid4().hex[:10]}"
    url = _fresh(database_url, name)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        db.upgrade(url, "0003")
        t = datetime(2025, 6, 15, 12, tzinfo=UTC)
        pid = uuid.uuid4()
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO predictions (id, patient_id, predicted_at, score, risk_level, model_name,"
                    " model_version, features) VALUES (:id, 'PT1', :t, 0.4, 'LOW', 'm', '1', '{\"a\": 1}')"
                ),
                {"id": pid, "t": t},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO prediction_outcomes (prediction_id, label, horizon_hours, watermark)"
                    " VALUES (:id, true, 24, now())"
                ),
                {"id": pid},
            )
        db.upgrade(url, "0004")
        assert _where(url, pid) == "predictions_2025_06"
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT predicted_at FROM prediction_outcomes")).scalar_one() == t
            assert conn.execute(sa.text("SELECT features FROM prediction_audit")).scalar_one() == {"a": 1}
        db.downgrade(url, "0003")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id FROM predictions")).scalars().all() == [pid]
            assert conn.execute(sa.text("SELECT label FROM prediction_outcomes")).scalars().all() == [True]
        db.upgrade(url)
        assert db.current_revision(url) == db.head_revision()
    finally:
        engine.dispose()
        _drop(database_url, name)


def test_the_local_stack_gives_the_scorer_and_the_monitor_their_own_logins(stack: Any, database_url: str) -> None:
    """What `make up` provisions: the schema at head, a login per component, this month's partition."""
    settings = stack.settings
    assert db.current_revision(database_url) == db.head_revision()
    scorer_url = settings.component_database_url("scorer")
    assert make_url(scorer_url).username == roles.SCORER
    with psycopg.connect(audit.libpq_dsn(scorer_url), autocommit=True) as conn:
        for sql in ("UPDATE predictions SET score = 0", "DELETE FROM predictions"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
    monitor_env = settings.env(component="monitor")
    with psycopg.connect(audit.libpq_dsn(monitor_env["CLINOPS_DATABASE_URL"]), autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM predictions")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM predictions")
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert f"predictions_{datetime.now(UTC):%Y_%m}" in partitions.partitions(conn)
    engine.dispose()


def test_the_monitor_adapter_labels_partitioned_predictions_with_its_own_role(audit_db: Db) -> None:
    import pandas as pd

    from clinops_monitor.adapters.postgres import Database

    now = datetime.now(UTC)
    # two predictions, one of them sub-second, in different months unless today is the 1st
    rows = [_row(now - timedelta(days=1)), _row(_month_start(now) - timedelta(hours=2, microseconds=-123))]
    rows[1] = dataclasses.replace(rows[1], patient_id="PT00002")
    _scorer_insert(audit_db.scorer, rows)
    monitor = Database(audit_db.monitor)
    start = now - timedelta(days=60)
    events = pd.DataFrame(
        {"patient_id": ["PT00001"], "event_time": [pd.Timestamp(rows[0].predicted_at) + pd.Timedelta(hours=1)]}
    )
    try:
        label = {"horizon_hours": 24, "watermark": now, "closed_by": now, "events": events}
        assert monitor.label_window("m", start, now, **label) == 2  # type: ignore[arg-type]
        assert monitor.label_window("m", start, now, **label) == 0  # type: ignore[arg-type]  # written once
        assert sorted(monitor.labelled("m", start, now)["label"]) == [0, 1]
        with monitor.engine.connect() as conn:
            stored = {
                pid: (at, lab)
                for pid, at, lab in conn.execute(
                    sa.text("SELECT prediction_id::text, predicted_at, label FROM prediction_outcomes")
                )
            }
        assert stored == {str(r.id): (r.predicted_at, r is rows[0]) for r in rows}
    finally:
        monitor.close()
