"""Event schemas of the streaming topics: versioned pydantic models, one per topic.

Every event is a JSON object keyed in Kafka by its ``patient_id`` and carries ``event_id``,
``patient_id``, ``event_time`` (UTC, when it happened), ``source`` (the device or system that sent
it) and ``schema_version``. Unknown fields, missing fields and wrong types are schema violations
(the ingest consumer dead-letters them); whether a value is physiologically plausible is the
processor's business (it quarantines), so measurement names and units are plain strings here.

``vitals`` and ``labs`` carry one measurement per event (long form, as silver ``measurements``).
"""

from __future__ import annotations

import sys
from datetime import datetime
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from clinops_common.lake import Topic

SCHEMA_VERSION = 1


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_min_length=1)

    schema_version: Literal[1] = Field(1, description="Version of this schema.")
    event_id: str = Field(description="Unique id of the event, assigned by the sender.")
    patient_id: str = Field(description="Patient key (also the Kafka message key).")
    event_time: AwareDatetime = Field(description="When it happened (timezone-aware, stored as UTC).")
    source: str = Field(description="Device or system that sent the event.")


class MeasurementEvent(Event):
    """One vital sign or lab result, in the unit the source sent it."""

    measurement: str = Field(description="Measurement name (vocabulary.MEASUREMENTS).")
    value: float = Field(description="Value in ``unit``.")
    unit: str = Field(description="Unit as sent; converted to the canonical unit by the processor.")


class VitalsEvent(MeasurementEvent):
    """Topic ``vitals``: bedside monitors and point-of-care devices, every few minutes."""


class LabEvent(MeasurementEvent):
    """Topic ``labs``: laboratory results, hours apart."""


class MedicationEvent(Event):
    """Topic ``medications``: one administration."""

    drug: str
    dose: float
    dose_unit: str
    route: str


class AdmissionEvent(Event):
    """Topic ``admissions``: admit, transfer or discharge."""

    event_type: Literal["admit", "transfer", "discharge"]
    hospital_id: str | None = None
    department: str | None = None
    discharge_status: str | None = None
    trial_arm: str | None = None


class OutcomeEvent(Event):
    """Topic ``outcomes``: an adverse event (the label source) or ground truth for a prediction."""

    outcome_type: str
    severity: str | None = None
    prediction_id: str | None = None


EVENT_MODELS: dict[Topic, type[Event]] = {
    "vitals": VitalsEvent,
    "labs": LabEvent,
    "medications": MedicationEvent,
    "admissions": AdmissionEvent,
    "outcomes": OutcomeEvent,
}

# Why a message was dead-lettered (the ``reason`` of a dead-letter record).
DeadLetterReason = Literal[
    "malformed_json", "missing_field", "unknown_field", "invalid_value", "unsupported_schema_version", "unknown_topic"
]


class InvalidEvent(ValueError):
    """A message that is not a valid event of its topic; ``reason`` says which rule it broke."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: DeadLetterReason = reason
        self.detail = detail


def classify_error(err: ValidationError) -> InvalidEvent:
    """Translate pydantic errors into one dead-letter reason and a detail without field values."""
    errors = err.errors(include_url=False, include_input=False, include_context=False)
    types = [e["type"] for e in errors]
    fields = ", ".join(".".join(str(p) for p in e["loc"]) or "<root>" for e in errors)
    if "json_invalid" in types or "json_type" in types or "model_type" in types:
        return InvalidEvent("malformed_json", "not a JSON object")
    if "missing" in types:
        reason: DeadLetterReason = "missing_field"
    elif "extra_forbidden" in types:
        reason = "unknown_field"
    elif any(e["loc"][:1] == ("schema_version",) for e in errors):
        reason = "unsupported_schema_version"
    else:
        reason = "invalid_value"
    return InvalidEvent(reason, f"{', '.join(sorted(set(types)))} at {fields}")


def parse_event(topic: str, raw: bytes) -> Event:
    """Parse and validate one message value; raises ``InvalidEvent`` with the reason."""
    model = EVENT_MODELS.get(topic)  # type: ignore[call-overload]
    if model is None:
        raise InvalidEvent("unknown_topic", f"no schema for topic {topic!r}")
    try:
        return model.model_validate_json(raw)  # type: ignore[no-any-return]
    except ValidationError as err:
        raise classify_error(err) from None


_VALIDATORS = {topic: model.__pydantic_validator__ for topic, model in EVENT_MODELS.items()}


def _strict_type(annotation: Any) -> Any:
    """The msgspec type accepting a subset of what pydantic accepts for ``annotation`` under the
    events' config (strings non-empty, floats finite, datetimes with a zone)."""
    if annotation is str:
        return Annotated[str, msgspec.Meta(min_length=1)]
    if annotation is float:
        return Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
    if annotation is AwareDatetime:
        return Annotated[datetime, msgspec.Meta(tz=True)]
    if get_origin(annotation) is Literal:
        return annotation
    args = get_args(annotation)
    if get_origin(annotation) in (Union, UnionType) and type(None) in args and len(args) == 2:
        return _strict_type(next(a for a in args if a is not type(None))) | None
    raise TypeError(f"no strict decoder for an event field of type {annotation!r}: add it to _strict_type")


def _strict_decoder(model: type[Event]) -> msgspec.json.Decoder[Any]:
    fields = [
        (name, _strict_type(f.annotation)) if f.is_required() else (name, _strict_type(f.annotation), f.default)
        for name, f in model.model_fields.items()
    ]
    struct = msgspec.defstruct(model.__name__, fields, kw_only=True, forbid_unknown_fields=True)
    return msgspec.json.Decoder(struct)


# Built from the pydantic models, never written by hand: the schema has one definition.
_STRICT = {topic: _strict_decoder(model) for topic, model in EVENT_MODELS.items()}


def check_event(topic: str, raw: bytes) -> None:
    """``parse_event`` for a caller that needs only the verdict (ingest): the same schema and the
    same ``InvalidEvent``, at a fraction of the cost.

    A strict msgspec decoder derived from the topic's model answers first: what it accepts, the
    model accepts too (tests/unit/stream/test_events_strict.py holds it to that), in about a third
    of the time. Anything it refuses, a lenient form it does not know included, goes to the model,
    whose verdict and reason stand."""
    strict = _STRICT.get(topic)  # type: ignore[call-overload]
    if strict is None:
        raise InvalidEvent("unknown_topic", f"no schema for topic {topic!r}")
    try:
        strict.decode(raw)
        return
    except msgspec.DecodeError:
        pass
    try:
        _VALIDATORS[topic].validate_json(raw)  # type: ignore[index]
    except ValidationError as err:
        raise classify_error(err) from None


def dump_event(event: Event) -> bytes:
    """The wire form of an event: compact JSON, UTC timestamps with a ``Z`` suffix."""
    return event.model_dump_json().encode()


def utc_iso(ts: datetime) -> str:
    """``2026-01-01T00:00:00.000Z``: milliseconds, UTC."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
