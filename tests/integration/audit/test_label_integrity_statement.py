"""Revision 0005: a label must name a prediction, checked once per statement instead of per row by a
foreign key; a labelled prediction cannot be deleted; 0005 goes down to the foreign key and back up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from clinops_common import db
from clinops_common.db import roles
from clinops_scorer import audit

LABEL = (
    "INSERT INTO prediction_outcomes (prediction_id, predicted_at, label, horizon_hours, watermark)"
    " VALUES (%s, %s, false, 24, now())"
)


def _admin(database_url: str, sql: str) -> None:
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(sql))
    admin.dispose()


@pytest.fixture
def urls(database_url: str, stack: Any) -> Iterator[tuple[str, str]]:
    """A fresh database at head: (owner url, monitor url)."""
    name = f"labels_{uuid.uuid4().hex[:10]}"
    _admin(database_url, f'CREATE DATABASE "{name}"')
    owner = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    try:
        db.upgrade(owner)
        secret = stack.settings.role_password(roles.MONITOR).get_secret_value()
        roles.grant_login(owner, roles.MONITOR, secret)
        yield owner, roles.role_url(owner, roles.MONITOR, secret)
    finally:
        _admin(database_url, f'DROP DATABASE "{name}" WITH (FORCE)')


def _predictions(owner: str, n: int, at: datetime) -> list[tuple[uuid.UUID, datetime]]:
    rows = [(uuid.uuid4(), at + timedelta(hours=i)) for i in range(n)]
    with psycopg.connect(audit.libpq_dsn(owner), autocommit=True) as conn:
        for pid, t in rows:
            conn.execute(
                "INSERT INTO predictions (id, patient_id, predicted_at, score, risk_level, model_name,"
                " model_version, features) VALUES (%s, 'PT1', %s, 0.2, 'LOW', 'm', '1', '{}')",
                (pid, t),
            )
    return rows


def _labels(url: str) -> int:
    with psycopg.connect(audit.libpq_dsn(url), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM prediction_outcomes").fetchone()
    assert row is not None
    return int(row[0])


def test_one_orphan_refuses_the_whole_statement_and_good_labels_go_in(urls: tuple[str, str]) -> None:
    owner, monitor = urls
    rows = _predictions(owner, 3, datetime.now(UTC) - timedelta(days=2))
    (a, ta), (b, tb), _ = rows
    with psycopg.connect(audit.libpq_dsn(monitor), autocommit=True) as conn:
        for orphan in ((uuid.uuid4(), tb), (b, tb + timedelta(seconds=1))):  # no such id; id of another time
            with pytest.raises(psycopg.errors.ForeignKeyViolation, match="label integrity") as err:
                conn.execute(
                    "INSERT INTO prediction_outcomes (prediction_id, predicted_at, label, horizon_hours, watermark)"
                    " VALUES (%s, %s, false, 24, now()), (%s, %s, true, 24, now())",
                    (a, ta, *orphan),
                )
            assert "1 label(s) name no prediction" in str(err.value.diag.message_detail)
        assert _labels(owner) == 0  # the good label of the refused statement is not written either
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO prediction_outcomes (prediction_id, predicted_at, label, horizon_hours, watermark)"
                " SELECT id, predicted_at, false, 24, now() FROM predictions"
            )
            assert cur.rowcount == 3
    assert _labels(owner) == 3


def test_a_labelled_prediction_cannot_be_deleted(urls: tuple[str, str]) -> None:
    owner, monitor = urls
    (labelled, t1), (bare, _t2) = _predictions(owner, 2, datetime.now(UTC) - timedelta(days=1))
    with psycopg.connect(audit.libpq_dsn(monitor), autocommit=True) as conn:
        conn.execute(LABEL, (labelled, t1))
    with psycopg.connect(audit.libpq_dsn(owner), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="without it"):
            conn.execute("DELETE FROM predictions WHERE id = %s", (labelled,))
        conn.execute("DELETE FROM predictions WHERE id = %s", (bare,))  # unlabelled: the owner may
        conn.execute("DELETE FROM prediction_outcomes")
        conn.execute("DELETE FROM predictions WHERE id = %s", (labelled,))
        row = conn.execute("SELECT count(*) FROM predictions").fetchone()
    assert row == (0,)


def _integrity(owner: str) -> tuple[bool, bool]:
    """(the foreign key exists, the statement trigger exists)."""
    with psycopg.connect(audit.libpq_dsn(owner), autocommit=True) as conn:
        fk = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'fk_prediction_outcomes_prediction'"
        ).fetchone()
        trigger = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'prediction_outcomes_name_predictions'"
        ).fetchone()
    assert fk is not None
    assert trigger is not None
    return bool(fk[0]), bool(trigger[0])


def test_0005_down_to_the_foreign_key_and_up_again_keeps_the_labels(urls: tuple[str, str]) -> None:
    owner, monitor = urls
    ((pid, t),) = _predictions(owner, 1, datetime.now(UTC) - timedelta(days=3))
    with psycopg.connect(audit.libpq_dsn(monitor), autocommit=True) as conn:
        conn.execute(LABEL, (pid, t))
    assert _integrity(owner) == (False, True)
    db.downgrade(owner, "0004")
    assert _integrity(owner) == (True, False)
    assert _labels(owner) == 1
    db.upgrade(owner)
    assert db.current_revision(owner) == db.head_revision()
    assert _integrity(owner) == (False, True)
    assert _labels(owner) == 1
