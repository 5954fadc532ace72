"""Test harness: real servers, started on demand, on free loopback ports in a temporary folder.

Tests under ``tests/unit`` are marked ``unit`` and need no server. Tests under ``tests/integration``
are marked ``integration`` and ask for components through fixtures (``kafka``, ``s3``, ``redis_url``,
``database_url``, ``mlflow_url``, ``prometheus``, ``mongodb_url``); only the components some selected test needs
are started, once per session, with the same definitions `make up` uses.

Set ``CLINOPS_TEST_STACK=reuse`` to run against the stack `make up` started instead (it must be
healthy).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from clinops_common.settings import Connections
from clinops_devstack import components as comps
from clinops_devstack import supervisor
from clinops_devstack.scratch import free_ports, scratch_home
from clinops_devstack.settings import StackSettings

# The local control plane (one session fixture for the kube, monitor and e2e tests alike).
pytest_plugins = ("integration.cluster_fixtures",)

REUSE = os.environ.get("CLINOPS_TEST_STACK", "") == "reuse"
TESTS = Path(__file__).parent

# Hypothesis' default 200 ms deadline fails a property test whenever a loaded machine stalls one
# example; no deadline by default (a test that means one sets it), and the failing example is printed.
hypothesis_settings.register_profile("clinops", deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "clinops"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(item.path).relative_to(TESTS).parts[0]
        if kind in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, kind))


class TestStack:
    """The components started for this session; ``ensure`` starts one (and what it needs) once."""

    def __init__(self, settings: StackSettings, reuse: bool) -> None:
        self.settings = settings
        self.reuse = reuse
        self.started: list[str] = []

    def ensure(self, name: str) -> Connections:
        comp = comps.BUILDERS[name](self.settings)
        for dep in comp.after:
            self.ensure(dep)
        if self.reuse:
            if not supervisor.status(self.settings, comp).healthy:
                pytest.fail(f"CLINOPS_TEST_STACK=reuse but {name} is not healthy: run `make up`")
        elif name not in self.started:
            supervisor.start(self.settings, comp, say=lambda _msg: None)
            self.started.append(name)
        return self.settings.connections()

    def stop_all(self) -> None:
        for name in reversed(self.started):
            supervisor.stop(self.settings, name, say=lambda _msg: None)


@pytest.fixture(scope="session")
def stack() -> Iterator[TestStack]:
    if REUSE:
        yield TestStack(StackSettings(), reuse=True)
        return
    home = scratch_home("clinops-test-stack-")
    start_timeout_s = float(os.environ.get("CLINOPS_TEST_START_TIMEOUT_S", "180"))  # longer on a loaded machine
    settings = StackSettings(home=home, ports=free_ports(), scrape_interval="1s", start_timeout_s=start_timeout_s)
    test_stack = TestStack(settings, reuse=False)
    try:
        yield test_stack
    finally:
        test_stack.stop_all()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka(stack: TestStack) -> Connections:
    return stack.ensure("kafka")


@pytest.fixture(scope="session")
def s3(stack: TestStack) -> Connections:
    return stack.ensure("minio")


@pytest.fixture(scope="session")
def redis_url(stack: TestStack) -> str:
    return stack.ensure("redis").redis_url.get_secret_value()


@pytest.fixture(scope="session")
def database_url(stack: TestStack) -> str:
    return stack.ensure("postgres").database_url.get_secret_value()


@pytest.fixture(scope="session")
def mlflow_url(stack: TestStack) -> str:
    return stack.ensure("mlflow").mlflow_tracking_uri


@pytest.fixture(scope="session")
def mongodb_url(stack: TestStack) -> str:
    """The document store (FerretDB, MongoDB wire protocol) of the stroke cohort."""
    stack.ensure("ferretdb")
    return stack.settings.mongodb_url()


@pytest.fixture(scope="session")
def prometheus(stack: TestStack) -> tuple[str, Path]:
    """The Prometheus URL and the folder where a test registers scrape targets."""
    stack.ensure("prometheus")
    s = stack.settings
    return s.url(s.ports.prometheus), comps.prometheus_targets_dir(s)
