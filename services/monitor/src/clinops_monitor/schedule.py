"""When an evaluation is due: the pipeline's ``spec.schedules.monitoring`` cron (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter


def last_slot(cron: str, now: datetime) -> datetime:
    """The latest cron slot at or before ``now``."""
    now = now.astimezone(UTC)
    it = croniter(cron, now)
    nxt = it.get_next(datetime)
    prev: datetime = croniter(cron, now).get_prev(datetime)
    return nxt if nxt == now else prev


def due(cron: str, now: datetime, last_evaluated: datetime | None) -> datetime | None:
    """The slot to evaluate now, or None when the latest slot has been evaluated already."""
    slot = last_slot(cron, now)
    if last_evaluated is not None and last_evaluated.astimezone(UTC) >= slot:
        return None
    return slot
