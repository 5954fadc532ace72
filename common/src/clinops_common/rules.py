"""Validation rules, unit conversions and the silver dedup keys, derived from the one table in
``vocabulary.py``: the one definition both the processor (bronze -> silver, in Spark) and the
streaming featurizer (Kafka -> online store, in Python) apply.

Pure Python, no Spark: ``check_measurement`` is the reference the processor's Spark expressions
implement. ``tests/integration/stream/test_rules_parity.py`` holds them to it: a Hypothesis property
test runs random bronze rows through ``clinops_processor.core.measurement_tables`` and requires, row
by row, the verdict (silver with the canonical value, or the quarantine rule) that
``check_measurement`` gives. Every unit conversion in the vocabulary is affine
(``canonical = scale * value + offset``), which lets Spark apply it as a column expression.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from clinops_common.vocabulary import MEASUREMENTS, Kind

# Quarantine rules: the ``rule`` column of silver quarantine.
UNKNOWN_MEASUREMENT = "unknown_measurement"
UNKNOWN_UNIT = "unknown_unit"
OUT_OF_RANGE = "out_of_range"
INVALID_RECORD = "invalid_record"
DOSE_NOT_POSITIVE = "dose_not_positive"
RULES = (UNKNOWN_MEASUREMENT, UNKNOWN_UNIT, OUT_OF_RANGE, INVALID_RECORD, DOSE_NOT_POSITIVE)

# The silver key of each table: rows equal on it are one event; the first ingested copy is kept.
DEDUP_KEYS: dict[str, tuple[str, ...]] = {
    "measurements": ("patient_id", "event_time", "source", "measurement"),
    "medications": ("patient_id", "event_time", "source", "drug"),
    "admissions": ("patient_id", "event_time", "source", "event_type"),
    "outcomes": ("patient_id", "event_time", "source", "outcome_type"),
}


class NotAffine(ValueError):
    pass


def affine(fn: Callable[[float], float]) -> tuple[float, float]:
    """``(scale, offset)`` of an affine conversion, checked at several points.

    The scale is measured over a span of 1024 (a power of two: the division is exact), which keeps it
    within about an ulp of the true factor; over a span of 1 it was ~25 ulps off, enough to reject
    113 degF (exactly 45 degC, the inclusive upper bound) as out of range."""
    offset = fn(0.0)
    scale = (fn(1024.0) - offset) / 1024.0
    for x in (-40.0, 2.5, 100.0, 1234.5):
        if abs(fn(x) - (scale * x + offset)) > 1e-9 * max(1.0, abs(fn(x))):
            raise NotAffine(f"conversion is not affine at {x}")
    return scale, offset


@dataclass(frozen=True)
class UnitRule:
    measurement: str
    unit: str
    scale: float
    offset: float


@functools.cache
def _unit_table() -> dict[tuple[str, str], UnitRule]:
    return {(r.measurement, r.unit): r for r in unit_rules()}


def unit_rules() -> list[UnitRule]:
    """Every accepted (measurement, unit) and its affine map to the canonical unit."""
    rules = []
    for m in MEASUREMENTS.values():
        rules.append(UnitRule(m.name, m.unit, 1.0, 0.0))
        for unit, fn in m.conversions.items():
            scale, offset = affine(fn)
            rules.append(UnitRule(m.name, unit, scale, offset))
    return rules


@dataclass(frozen=True)
class Verdict:
    value: float | None  # canonical value when accepted
    rule: str | None  # quarantine rule when rejected
    reason: str | None = None


def check_measurement(kind: Kind, name: str, value: float, unit: str) -> Verdict:
    """Accept (canonical value) or reject (rule, reason) one measurement of a topic."""
    m = MEASUREMENTS.get(name)
    if m is None or m.kind != kind:
        return Verdict(None, UNKNOWN_MEASUREMENT, f"{name!r} is not a known {kind} measurement")
    rule = _unit_table().get((name, unit))
    if rule is None:
        return Verdict(None, UNKNOWN_UNIT, f"unit {unit!r} is not accepted for {name}")
    canonical = rule.scale * value + rule.offset
    lo, hi = m.valid
    if not lo <= canonical <= hi:
        return Verdict(None, OUT_OF_RANGE, f"{name} {canonical:g} {m.unit} outside [{lo:g}, {hi:g}]")
    return Verdict(canonical, None)
