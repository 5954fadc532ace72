"""Event schemas: what a valid event is, and the reason a bad one is dead-lettered with."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinops_common.events import EVENT_MODELS, InvalidEvent, VitalsEvent, parse_event

GOOD = {
    "schema_version": 1,
    "event_id": "e1",
    "patient_id": "PT00001",
    "event_time": "2026-01-01T10:00:00.000Z",
    "source": "monitor-bed001",
    "measurement": "heart_rate",
    "value": 72.0,
    "unit": "bpm",
}


def reason(topic: str, raw: bytes) -> str:
    with pytest.raises(InvalidEvent) as err:
        parse_event(topic, raw)
    return err.value.reason


def test_a_valid_vitals_event_parses_with_a_utc_time() -> None:
    event = parse_event("vitals", json.dumps(GOOD).encode())
    assert isinstance(event, VitalsEvent)
    assert event.event_time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"event_id": "e1", "patient', "malformed_json"),
        (b"[1, 2]", "malformed_json"),
        (b"", "malformed_json"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "patient_id"}).encode(), "missing_field"),
        (json.dumps({**GOOD, "firmware": "1.2"}).encode(), "unknown_field"),
        (json.dumps({**GOOD, "schema_version": 2}).encode(), "unsupported_schema_version"),
        (json.dumps({**GOOD, "value": "high"}).encode(), "invalid_value"),
        (json.dumps({**GOOD, "event_time": "2026-01-01T10:00:00"}).encode(), "invalid_value"),
        (json.dumps({**GOOD, "patient_id": ""}).encode(), "invalid_value"),
        (json.dumps({**GOOD, "value": float("nan")}).encode(), "invalid_value"),
    ],
)
def test_bad_messages_get_one_clear_reason(raw: bytes, expected: str) -> None:
    assert reason("vitals", raw) == expected


def test_unknown_topic_is_rejected() -> None:
    assert reason("gossip", json.dumps(GOOD).encode()) == "unknown_topic"


def test_every_topic_has_a_versioned_model_keyed_by_patient() -> None:
    for model in EVENT_MODELS.values():
        assert {"schema_version", "event_id", "patient_id", "event_time", "source"} <= set(model.model_fields)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_parser(raw: bytes) -> None:
    reasons = {"malformed_json", "missing_field", "unknown_field", "invalid_value", "unsupported_schema_version"}
    for topic in EVENT_MODELS:
        got = None
        try:
            parse_event(topic, raw)
        except InvalidEvent as err:
            got = err.reason
        assert got is None or got in reasons
