"""Fixtures of the monitor's integration tests: the migrated database (the local control plane is
``tests/integration/cluster_fixtures.py``'s, shared with the kube tests)."""

from __future__ import annotations

import pytest

from clinops_common import db


@pytest.fixture(scope="session")
def monitor_db(database_url: str) -> str:
    db.upgrade(database_url)
    return database_url
