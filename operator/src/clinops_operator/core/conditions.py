"""Standard Kubernetes conditions (type, status, reason, message, lastTransitionTime), pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from clinops_operator.core.times import iso


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
    stamp = iso(now)
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


def set_conditions(
    conditions: Sequence[dict[str, Any]],
    statuses: dict[str, str],
    *,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> list[dict[str, Any]]:
    """Several conditions set at once with the same reason and message, e.g. ``{"Ready": "True", ...}``."""
    out = list(conditions)
    for cond_type, status in statuses.items():
        out = set_condition(
            out, cond_type, status=status, reason=reason, message=message, now=now, generation=generation
        )
    return out
