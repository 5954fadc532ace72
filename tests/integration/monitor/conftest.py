"""Fixtures of the monitor's integration tests: the local control plane (the kube tests' fixture,
shared: starting it twice is harmless) and the migrated database."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from clinops_common import db

_spec = importlib.util.spec_from_file_location("kube_conftest", Path(__file__).parents[1] / "kube" / "conftest.py")
assert _spec is not None
assert _spec.loader is not None
_kube = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _kube
_spec.loader.exec_module(_kube)
cluster = _kube.cluster
namespace = _kube.namespace


@pytest.fixture(scope="session")
def monitor_db(database_url: str) -> str:
    db.upgrade(database_url)
    return database_url
