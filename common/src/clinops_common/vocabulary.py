"""Measurements clinops understands: canonical units, physiological ranges, unit conversions.

This is the one table of physiological ranges. The processor validates against it, the featurizer
names its features after it, the generator draws values inside it (and faults outside it).

A value outside ``valid`` is physically implausible (sensor fault, typo, wrong unit) and goes to
quarantine; ``normal`` is the healthy reference range, used by the generator and derived flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["vitals", "labs"]


@dataclass(frozen=True)
class Measurement:
    name: str
    kind: Kind
    unit: str  # canonical unit
    valid: tuple[float, float]  # inclusive; outside is quarantined
    normal: tuple[float, float]
    description: str
    # Accepted non-canonical units and how to convert a value in them to the canonical unit.
    conversions: dict[str, Callable[[float], float]] = field(default_factory=dict)


def _fahrenheit_to_celsius(v: float) -> float:
    return (v - 32.0) * 5.0 / 9.0


GLUCOSE_MG_DL_PER_MMOL_L = 18.0156  # molar mass of glucose 180.156 g/mol


def _glucose_mmol_to_mg_dl(v: float) -> float:
    return v * GLUCOSE_MG_DL_PER_MMOL_L


MEASUREMENTS: dict[str, Measurement] = {
    m.name: m
    for m in [
        Measurement("heart_rate", "vitals", "bpm", (20, 300), (60, 100), "Heart rate"),
        Measurement("systolic_bp", "vitals", "mmHg", (40, 300), (90, 130), "Systolic blood pressure"),
        Measurement("diastolic_bp", "vitals", "mmHg", (20, 200), (60, 85), "Diastolic blood pressure"),
        Measurement(
            "temperature",
            "vitals",
            "degC",
            (25, 45),
            (36.1, 37.5),
            "Body temperature",
            conversions={"degF": _fahrenheit_to_celsius},
        ),
        Measurement("spo2", "vitals", "%", (50, 100), (94, 100), "Peripheral oxygen saturation"),
        Measurement("respiratory_rate", "vitals", "/min", (4, 70), (12, 20), "Respiratory rate"),
        Measurement(
            "glucose",
            "vitals",
            "mg/dL",
            (10, 1500),
            (70, 140),
            "Blood glucose (point of care)",
            conversions={"mmol/L": _glucose_mmol_to_mg_dl},
        ),
        Measurement("creatinine", "labs", "mg/dL", (0.1, 20), (0.6, 1.2), "Serum creatinine"),
        Measurement("alt", "labs", "U/L", (1, 10000), (7, 56), "Alanine aminotransferase"),
        Measurement("ast", "labs", "U/L", (1, 10000), (10, 40), "Aspartate aminotransferase"),
        Measurement("lactate", "labs", "mmol/L", (0.1, 30), (0.5, 2.0), "Lactate"),
        Measurement("wbc", "labs", "10^9/L", (0.1, 200), (4.0, 11.0), "White blood cell count"),
        Measurement("potassium", "labs", "mmol/L", (1.0, 10.0), (3.5, 5.1), "Serum potassium"),
        Measurement("troponin", "labs", "ng/L", (0, 24000), (0, 14), "High-sensitivity troponin T"),
    ]
}

VITALS: tuple[str, ...] = tuple(n for n, m in MEASUREMENTS.items() if m.kind == "vitals")
LABS: tuple[str, ...] = tuple(n for n, m in MEASUREMENTS.items() if m.kind == "labs")


class UnknownMeasurement(ValueError):
    pass


class UnknownUnit(ValueError):
    pass


def to_canonical(name: str, value: float, unit: str) -> float:
    """``value`` in ``unit`` converted to the measurement's canonical unit."""
    try:
        m = MEASUREMENTS[name]
    except KeyError:
        raise UnknownMeasurement(f"unknown measurement {name!r}") from None
    if unit == m.unit:
        return value
    try:
        return m.conversions[unit](value)
    except KeyError:
        accepted = [m.unit, *m.conversions]
        raise UnknownUnit(f"{name}: unit {unit!r} is not one of {accepted}") from None


def in_valid_range(name: str, canonical_value: float) -> bool:
    lo, hi = MEASUREMENTS[name].valid
    return lo <= canonical_value <= hi
