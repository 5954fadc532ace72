"""The lifecycle demo's split of its history: written to silver before a UTC midnight, streamed after."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from clinops_common.synthetic import FaultRates, GeneratorConfig, generate
from clinops_devstack import history

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("end", "hours", "split"),
    [
        (datetime(2026, 12, 1, 16, tzinfo=UTC), 6, datetime(2026, 12, 1, tzinfo=UTC)),
        (datetime(2026, 12, 1, 3, tzinfo=UTC), 6, datetime(2026, 11, 30, tzinfo=UTC)),
        (datetime(2026, 12, 1, 6, tzinfo=UTC), 6, datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_the_split_is_the_latest_midnight_at_least_the_streamed_hours_before_the_end(
    end: datetime, hours: int, split: datetime
) -> None:
    assert history.split_at(end, hours) == split


def test_events_are_split_by_event_time_in_send_order_and_enveloped_as_ingest_would() -> None:
    start = datetime(2026, 11, 30, 12, tzinfo=UTC)
    ds = generate(GeneratorConfig(patients=3, days=1, seed=2, start=start, faults=FaultRates.none()))
    at = datetime(2026, 12, 1, tzinfo=UTC)
    before, after = history.split(ds.messages, at)
    assert len(before) + len(after) == len(ds.messages)
    assert before
    assert after
    assert all(history.event_time(m) < at for m in before)
    assert all(history.event_time(m) >= at for m in after)
    assert [m for m in ds.messages if m in set(before)] == before  # send order kept
    lines = [json.loads(line) for line in history.bronze_lines(before[:50])]
    assert [ln["offset"] for ln in lines] == list(range(50))
    first = lines[0]
    assert first["topic"] == before[0].topic
    assert first["event"] == json.loads(before[0].value)
    sent = datetime.fromisoformat(first["timestamp"])
    assert abs(sent - datetime.fromtimestamp(before[0].timestamp_ms / 1000, UTC)) < timedelta(milliseconds=1)
    assert first["ingested_at"] == first["timestamp"]
