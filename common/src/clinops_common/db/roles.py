"""The database roles of revision 0004, and giving them a login (a deployment step, not a migration).

- ``clinops_owner``: owns every object; runs migrations and partition maintenance.
- ``clinops_scorer``: INSERT into ``predictions`` (and SELECT on its key columns ``id``,
  ``predicted_at`` only, which ``ON CONFLICT`` needs); SELECT, INSERT on ``feature_orders``.
- ``clinops_monitor``: SELECT on ``predictions``, ``feature_orders``, ``prediction_audit``; SELECT,
  INSERT on ``prediction_outcomes`` and ``monitor_evaluations``.

Nobody but the owner may UPDATE, DELETE or TRUNCATE a prediction. The roles are created without a
login; ``grant_login`` gives one a password (the local stack does it on ``make up``, the chart's hook
Job from each component's Secret).
"""

from __future__ import annotations

import sqlalchemy as sa

OWNER, SCORER, MONITOR = "clinops_owner", "clinops_scorer", "clinops_monitor"
ROLES = (OWNER, SCORER, MONITOR)


def grant_login(admin_url: str, role: str, password: str) -> None:
    """Let ``role`` log in with ``password`` (idempotent; the password is replaced)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            # ALTER ROLE takes no bind parameters: quote the password as a literal on the server
            literal = conn.execute(sa.text("SELECT quote_literal(:p)"), {"p": password}).scalar_one()
            conn.execute(sa.text(f"ALTER ROLE {role} WITH LOGIN PASSWORD {literal}"))
    finally:
        engine.dispose()


def role_url(database_url: str, role: str, password: str) -> str:
    """``database_url`` with ``role``'s credentials instead of its own."""
    url = sa.engine.make_url(database_url).set(username=role, password=password)
    return url.render_as_string(hide_password=False)
