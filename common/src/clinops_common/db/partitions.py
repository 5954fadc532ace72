"""Partition maintenance of ``predictions`` (revision 0004): months ahead, and retention by month.

Both run as the owner role (``clinops_owner``), from a scheduled task: ``python -m clinops_common.db
maintain`` (the chart's CronJob; ``make up`` locally). Retention never deletes a prediction row by
row: a whole month older than the retention is detached and dropped, with its labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

DEFAULT_MONTHS_AHEAD = 3
DEFAULT_RETENTION_YEARS = 7


@dataclass(frozen=True)
class Maintenance:
    created: list[str]
    dropped: list[str]
    partitions: list[str]  # every partition after the run, oldest first (the default last)
    default_rows: int  # rows the default partition holds (0 unless a month was missing)


def partitions(conn: sa.Connection) -> list[str]:
    names = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'predictions'::regclass ORDER BY c.relname = 'predictions_default', c.relname"
        )
    ).scalars()
    return list(names)


def maintain(
    database_url: str,
    *,
    months_ahead: int = DEFAULT_MONTHS_AHEAD,
    retention_years: int = DEFAULT_RETENTION_YEARS,
) -> Maintenance:
    """Create the partitions of this month and ``months_ahead`` more; drop the months that end more
    than ``retention_years`` ago. Idempotent."""
    if retention_years < 1:
        raise ValueError(f"retention_years must be at least 1, got {retention_years}")
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            created = list(
                conn.execute(sa.text("SELECT clinops_create_prediction_partitions(:n)"), {"n": months_ahead}).scalars()
            )
            dropped = list(
                conn.execute(
                    sa.text("SELECT clinops_drop_expired_prediction_partitions(make_interval(years => :y))"),
                    {"y": retention_years},
                ).scalars()
            )
            default_rows = int(conn.execute(sa.text("SELECT count(*) FROM predictions_default")).scalar_one())
            return Maintenance(created, dropped, partitions(conn), default_rows)
    finally:
        engine.dispose()
