"""Helpers shared by the Kubernetes tests (example bodies, polling)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from clinops_devstack.settings import REPO_ROOT

EXAMPLES = REPO_ROOT / "manifests"


def example_body(namespace: str, name: str = "adverse-event", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    body["metadata"]["name"] = name
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
