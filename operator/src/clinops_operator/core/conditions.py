"""Standard Kubernetes conditions (type, status, reason, message, lastTransitionTime), pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


def set_condition(
    conditions: Sequence[dict[str, Any]],
    cond_type: str,
    *,
    status: str,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> list[dict[str, Any]]:
    """A copy of ``conditions`` with ``cond_type`` set; its transition time moves only when status changes."""
    previous = next((c for c in conditions if c.get("type") == cond_type), None)
    changed = previous is None or previous.get("status") != status
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    updated = {
        "type": cond_type,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": stamp if changed or previous is None else previous.get("lastTransitionTime", stamp),
        "observedGeneration": generation,
    }
    return [*(c for c in conditions if c.get("type") != cond_type), updated]


def get_condition(conditions: Sequence[dict[str, Any]], cond_type: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == cond_type), None)
