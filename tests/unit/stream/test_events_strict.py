"""Ingest's fast verdict: the strict decoder derived from each event model never accepts what the
model refuses, and the generator's valid events take the fast path.

``check_event`` asks a msgspec decoder built from the pydantic model first and the model only for
what the decoder refuses. So the one property that keeps ingest's verdict equal to the model's is:
strict-accepted implies model-accepted. These tests try to break it with field values of every JSON
type, datetime spellings at the edges of ISO 8601, removed and extra fields, and raw byte edits.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clinops_common.events import _STRICT, _VALIDATORS, EVENT_MODELS, InvalidEvent, check_event, parse_event
from clinops_common.synthetic import FaultRates, GeneratorConfig, generate

BASE: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "e1",
    "patient_id": "PT00001",
    "event_time": "2026-01-01T10:00:00.000Z",
    "source": "monitor-bed001",
}
VALID: dict[str, dict[str, Any]] = {
    "vitals": {**BASE, "measurement": "heart_rate", "value": 72.0, "unit": "bpm"},
    "labs": {**BASE, "measurement": "lactate", "value": 1.5, "unit": "mmol/L"},
    "medications": {**BASE, "drug": "heparin", "dose": 5000, "dose_unit": "unit", "route": "iv"},
    "admissions": {**BASE, "event_type": "admit", "hospital_id": "H1", "department": None},
    "outcomes": {**BASE, "outcome_type": "adverse_event", "severity": "high"},
}


def strict_accepts(topic: str, raw: bytes) -> bool:
    try:
        _STRICT[topic].decode(raw)  # type: ignore[index]
    except msgspec.DecodeError:  # any refusal hands the message to the model
        return False
    return True


def model_accepts(topic: str, raw: bytes) -> bool:
    try:
        _VALIDATORS[topic].validate_json(raw)  # type: ignore[index]
    except ValidationError:
        return False
    return True


def digits(n: int) -> st.SearchStrategy[str]:
    return st.integers(0, 10**n - 1).map(lambda v: f"{v:0{n}d}")


def edgy(common: list[str], odd: list[str]) -> st.SearchStrategy[str]:
    """Mostly well-formed parts, sometimes odd ones, so that whole values near the edge come often."""
    return st.sampled_from(common) | st.sampled_from(odd)


# ISO 8601 and RFC 3339 spellings, in range and out: separators, fractions, zones with and without colons
datetimes = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, tz: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{tz}",
    edgy(["2026", "1970", "0001", "9999"], ["0000", "10000", "26", "-001"]),
    edgy(["01", "02", "12"], ["00", "13", "1"]),
    edgy(["01", "28", "29", "31"], ["00", "30", "32", "1"]),
    edgy(["T"], ["t", " ", "_", ""]),
    edgy(["00", "23"], ["24", "25", "1"]),
    edgy(["00", "59"], ["60", "1"]),
    edgy(["00", "59"], ["60", "61", "1"]),
    edgy(["", ".123", ".1", ".123456"], [".", ".1234567", ".123456789012", ",123"]),
    edgy(
        ["Z", "+00:00", "", "+05:30"], ["z", "-00:00", "+0000", "+23:59", "+24:00", "-12", "UTC", "+99:99", "Z+01:00"]
    ),
)
# number literals as JSON text: out of float range, huge integers, and spellings JSON does not allow
numbers = st.sampled_from(
    ["1e400", "-1e400", "1e308", "1.7976931348623157e308", "123456789012345678901234567890", "-0", "0", "1.0e-400",
     "1E5", "01", "1.", "-", "+1", ".5", "0x10", "Infinity", "-Infinity", "NaN", "true", "null", '"72.5"', '""']
) | st.floats(allow_nan=False, allow_infinity=False).map(repr) | st.integers(-(2**80), 2**80).map(str)  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | datetimes
    | st.sampled_from(["", "1", "1.5", "1e400", "NaN", "inf", "admit", "\u0000"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    topic = draw(st.sampled_from(sorted(VALID)))
    doc = dict(VALID[topic])
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(sorted(EVENT_MODELS[topic].model_fields)))  # type: ignore[index]
        action = draw(st.sampled_from(["value", "value", "datetime", "drop", "extra"]))
        if action == "value":
            doc[field] = draw(json_values)
        elif action == "datetime":
            doc[field] = draw(datetimes)
        elif action == "drop":
            doc.pop(field, None)
        else:
            doc[draw(st.text(min_size=1, max_size=6))] = draw(json_values)
    return topic, json.dumps(doc).encode()


@settings(max_examples=3000)
@given(mutated())
def test_what_the_strict_decoder_accepts_the_model_accepts(case: tuple[str, bytes]) -> None:
    topic, raw = case
    if strict_accepts(topic, raw):
        assert model_accepts(topic, raw), raw


@settings(max_examples=2000)
@given(st.sampled_from(sorted(VALID)), datetimes)
def test_datetime_spellings_keep_the_property(topic: str, text: str) -> None:
    raw = json.dumps({**VALID[topic], "event_time": text}).encode()
    if strict_accepts(topic, raw):
        assert model_accepts(topic, raw), raw


@settings(max_examples=1000)
@given(st.sampled_from(["vitals", "labs", "medications"]), numbers)
def test_number_literals_keep_the_property(topic: str, text: str) -> None:
    field = "dose" if topic == "medications" else "value"
    raw = json.dumps({**VALID[topic], field: "@"}).encode().replace(b'"@"', text.encode())
    if strict_accepts(topic, raw):
        assert model_accepts(topic, raw), raw


@settings(max_examples=1500)
@given(st.sampled_from(sorted(VALID)), st.data())
def test_raw_byte_edits_keep_the_property(topic: str, data: st.DataObject) -> None:
    raw = bytearray(json.dumps(VALID[topic]).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        edit = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.integers(0, 255))
        if edit == "replace":
            raw[at] = byte
        elif edit == "insert":
            raw.insert(at, byte)
        else:
            del raw[at]
    if strict_accepts(topic, bytes(raw)):
        assert model_accepts(topic, bytes(raw)), bytes(raw)


@pytest.mark.parametrize(
    "text",
    [
        '"\\ud800"',  # a lone surrogate escape
        '"\\u0000"',
        b'"\xff\xfe"'.decode("latin-1"),  # bytes that are not UTF-8
        '"2026-01-01T10:00:00Z"',
    ],
)
def test_odd_strings_keep_the_property(text: str) -> None:
    for topic, doc in VALID.items():
        for field in ("event_id", "event_time", "source"):
            raw = json.dumps({**doc, field: "@"}).encode().replace(b'"@"', text.encode("latin-1"))
            if strict_accepts(topic, raw):
                assert model_accepts(topic, raw), raw


def test_check_event_gives_the_models_verdict_on_generator_data_with_every_fault() -> None:
    messages = generate(GeneratorConfig(patients=12, days=1, seed=7, faults=FaultRates())).messages
    fast = 0
    for m in messages:
        try:
            parse_event(m.topic, m.value)
            expected = None
        except InvalidEvent as err:
            expected = err.reason
        try:
            check_event(m.topic, m.value)
            got = None
        except InvalidEvent as err:
            got = err.reason
        assert got == expected, m.value
        if expected is None:
            assert strict_accepts(m.topic, m.value), m.value  # the valid ones take the fast path
            fast += 1
    assert fast > 0.9 * len(messages)
    assert fast < len(messages)  # the faults reached the model
