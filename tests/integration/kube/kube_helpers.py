"""Helpers shared by the Kubernetes tests (example bodies, polling)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from clinops_devstack.settings import REPO_ROOT

EXAMPLES = REPO_ROOT / "manifests"


def quiet_schedules(now: datetime | None = None) -> dict[str, str]:
    """Cron schedules that cannot fire while a test runs: once a year, half a year from now.

    The examples' hourly and daily schedules start runs at every hour boundary; a test that crosses
    one would see an extra run (its latest slot is after the pipeline's creation)."""
    when = (now or datetime.now(UTC)) + timedelta(days=182)
    slot = f"{when.minute} {when.hour} {min(when.day, 28)} {when.month} *"
    return dict.fromkeys(("processing", "featurization", "training", "monitoring"), slot)


def example_body(namespace: str, name: str = "adverse-event", **changes: Any) -> dict[str, Any]:
    """An example pipeline in ``namespace`` with ``quiet_schedules`` (a ``schedules`` change replaces them)."""
    body: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    body["metadata"]["name"] = name
    body["spec"]["schedules"] = quiet_schedules()  # set all four: the CRD defaults a missing one to hourly
    for key, value in changes.items():
        body["metadata" if key in ("labels", "annotations") else "spec"][key] = value
    return body


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 60.0, every_s: float = 0.3) -> Any:
    """Poll until ``check`` returns something truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every_s)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {last!r})")
