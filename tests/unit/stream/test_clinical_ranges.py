"""The processor's ranges and unit factors against numbers written here from clinical sources.

Nothing below is read from ``vocabulary.py``: a value a clinician charts every day must never be
quarantined as implausible, a value no instrument or patient produces must be, and a unit is
converted with the factor the literature gives. Sources:

- NEWS2, Royal College of Physicians (2017), chart of scoring bands: every value that scores,
  0 to 3 points, is a real observation.
- Laboratory reference intervals and the thresholds of clinical guidelines, each named on its row.
- MIMIC-Extract (Wang et al., CHIL 2020), ``resources/mimiciv_variable_ranges.csv``: values beyond
  its OUTLIER LOW / OUTLIER HIGH columns are removed from MIMIC-IV as errors (converted to our units).
- Unit factors: degC = (degF - 32) * 5/9 by definition; glucose 1 mmol/L = 18.0156 mg/dL (molar
  mass of C6H12O6, 180.156 g/mol, and 1 L = 10 dL).
"""

from __future__ import annotations

import math

import pytest

from clinops_processor import rules

KIND = {
    **dict.fromkeys(
        ("heart_rate", "systolic_bp", "diastolic_bp", "temperature", "spo2", "respiratory_rate", "glucose"), "vitals"
    ),
    **dict.fromkeys(("creatinine", "alt", "ast", "lactate", "wbc", "potassium", "troponin"), "labs"),
}
UNIT = {  # canonical units (UCUM-style)
    "heart_rate": "bpm",
    "systolic_bp": "mmHg",
    "diastolic_bp": "mmHg",
    "temperature": "degC",
    "spo2": "%",
    "respiratory_rate": "/min",
    "glucose": "mg/dL",
    "creatinine": "mg/dL",
    "alt": "U/L",
    "ast": "U/L",
    "lactate": "mmol/L",
    "wbc": "10^9/L",
    "potassium": "mmol/L",
    "troponin": "ng/L",
}

# Observations that must be accepted, in the canonical unit, with where they come from.
MUST_ACCEPT: list[tuple[str, tuple[float, ...], str]] = [
    ("respiratory_rate", (8, 9, 11, 12, 20, 21, 24, 25, 40), "NEWS2 bands <=8, 9-11, 12-20, 21-24, >=25"),
    ("spo2", (85, 91, 92, 93, 94, 95, 96, 100), "NEWS2 scale 1 bands <=91, 92-93, 94-95, >=96"),
    ("systolic_bp", (70, 90, 91, 100, 101, 110, 111, 219, 220, 250), "NEWS2 bands <=90 ... >=220"),
    ("heart_rate", (35, 40, 41, 50, 51, 90, 91, 110, 111, 130, 131, 180), "NEWS2 bands <=40 ... >=131"),
    ("temperature", (34.0, 35.0, 35.1, 36.0, 36.1, 38.0, 38.1, 39.0, 39.1, 41.0), "NEWS2 bands <=35.0 ... >=39.1"),
    ("diastolic_bp", (40, 60, 80, 120, 130), "ACC/AHA 2017: hypertensive crisis above 120 mmHg"),
    ("glucose", (40, 54, 70, 140, 250, 600, 1000), "ADA: hypoglycaemia <70 and <54, DKA >=250, HHS >600 mg/dL"),
    ("potassium", (2.0, 3.5, 5.1, 6.5, 8.0), "reference 3.5-5.1 mmol/L; severe hyperkalaemia >=6.5 (UK Kidney Assoc.)"),
    ("creatinine", (0.6, 1.2, 4.0, 10.0), "reference 0.6-1.2 mg/dL; KDIGO AKI stage 3 at >=4.0 mg/dL"),
    ("lactate", (0.5, 2.0, 4.0, 15.0), "reference 0.5-2.0 mmol/L; Sepsis-3 septic shock >2 mmol/L"),
    ("wbc", (4.0, 11.0, 0.5, 100.0), "reference 4.0-11.0; hyperleukocytosis >100 x10^9/L"),
    ("alt", (7, 56, 1000, 5000), "reference 7-56 U/L; acute liver injury in the thousands"),
    ("ast", (10, 40, 1000, 5000), "reference 10-40 U/L; acute liver injury in the thousands"),
    ("troponin", (3, 14, 52, 5000), "hs-cTnT 99th percentile 14 ng/L (4th UDMI 2018); ESC 0/1 h rule-in >=52"),
]

# Values no patient or instrument produces: each beyond MIMIC-Extract's outlier limits (or impossible).
MUST_REJECT: list[tuple[str, tuple[float, ...], str]] = [
    ("heart_rate", (-1, 400), "MIMIC-Extract outlier limits 0-390 bpm"),
    ("systolic_bp", (-1, 400), "MIMIC-Extract outlier limits 0-375 mmHg"),
    ("diastolic_bp", (-1, 400), "MIMIC-Extract outlier limits 0-375 mmHg"),
    ("temperature", (14.0, 48.0), "MIMIC-Extract outlier limits 14.2-47 degC"),
    ("spo2", (-1, 100.5), "a saturation is a share: 0-100 % by definition"),
    ("respiratory_rate", (-1, 331), "MIMIC-Extract outlier limits 0-330 /min"),
    ("glucose", (-1, 2300), "MIMIC-Extract outlier limits 0-2200 mg/dL"),
    ("creatinine", (-1, 70), "MIMIC-Extract outlier limits 0-66 mg/dL"),
    ("alt", (-1, 12000), "MIMIC-Extract outlier limits 0-11000 U/L"),
    ("ast", (-1, 23000), "MIMIC-Extract outlier limits 0-22000 U/L"),
    ("lactate", (-1, 35), "MIMIC-Extract outlier limits 0-33 mmol/L"),
    ("wbc", (-1, 1200), "MIMIC-Extract outlier limits 0-1100 x10^9/L"),
    ("potassium", (-1, 16), "MIMIC-Extract outlier limits 0-15 mmol/L"),
    ("troponin", (-1,), "a concentration is never negative"),
]


def _verdict(name: str, value: float, unit: str | None = None) -> rules.Verdict:
    return rules.check_measurement(KIND[name], name, float(value), unit or UNIT[name])  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "values", "source"), MUST_ACCEPT, ids=[r[0] for r in MUST_ACCEPT])
def test_charted_values_are_accepted_unchanged(name: str, values: tuple[float, ...], source: str) -> None:
    for v in values:
        verdict = _verdict(name, v)
        assert verdict.rule is None, f"{name} {v} {UNIT[name]} ({source}) was quarantined: {verdict.reason}"
        assert verdict.value == v


@pytest.mark.parametrize(("name", "values", "source"), MUST_REJECT, ids=[r[0] for r in MUST_REJECT])
def test_impossible_values_are_quarantined_as_out_of_range(name: str, values: tuple[float, ...], source: str) -> None:
    for v in values:
        assert _verdict(name, v).rule == rules.OUT_OF_RANGE, f"{name} {v} {UNIT[name]} accepted ({source})"


def test_troponin_beyond_the_outlier_limit_is_quarantined() -> None:
    # MIMIC-Extract's troponin T outlier limit is 24 ng/mL (24000 ng/L)
    assert _verdict("troponin", 25_000).rule == rules.OUT_OF_RANGE


@pytest.mark.parametrize(
    ("deg_f", "deg_c"),
    [(98.6, 37.0), (77.0, 25.0), (113.0, 45.0), (104.0, 40.0), (95.0, 35.0)],
)
def test_fahrenheit_is_converted_by_definition_and_the_range_is_inclusive(deg_f: float, deg_c: float) -> None:
    verdict = _verdict("temperature", deg_f, "degF")
    assert verdict.rule is None, verdict.reason  # 77 and 113 degF are exactly the ends of 25-45 degC
    assert verdict.value == pytest.approx(deg_c, abs=1e-12)


def test_fahrenheit_outside_the_celsius_range_is_out_of_range() -> None:
    assert _verdict("temperature", 76.9, "degF").rule == rules.OUT_OF_RANGE
    assert _verdict("temperature", 113.1, "degF").rule == rules.OUT_OF_RANGE
    assert _verdict("temperature", 37.0, "degF").rule == rules.OUT_OF_RANGE  # degC sent as degF: 2.8 degC


@pytest.mark.parametrize(("mmol_l", "mg_dl"), [(1.0, 18.0156), (5.5, 99.0858), (10.0, 180.156), (2.2, 39.63432)])
def test_glucose_mmol_per_litre_is_converted_with_its_molar_mass(mmol_l: float, mg_dl: float) -> None:
    verdict = _verdict("glucose", mmol_l, "mmol/L")
    assert verdict.rule is None
    assert verdict.value == pytest.approx(mg_dl, rel=1e-12)


def test_every_measurement_has_its_canonical_unit_and_nothing_else_without_a_conversion() -> None:
    for name, unit in UNIT.items():
        assert _verdict(name, 1.0, "not-a-unit").rule == rules.UNKNOWN_UNIT
        assert _verdict(name, 50.0, unit).rule in (None, rules.OUT_OF_RANGE)
    assert _verdict("creatinine", 88.4, "umol/L").rule == rules.UNKNOWN_UNIT  # no SI conversion is declared
    assert _verdict("heart_rate", 72, "/min").rule == rules.UNKNOWN_UNIT


# The project's declared plausibility limits, written out here so a change to vocabulary.py is a
# deliberate change to this table too; each is checked against the sources above by the tests above.
LIMITS = {
    "heart_rate": (20, 300),
    "systolic_bp": (40, 300),
    "diastolic_bp": (20, 200),
    "temperature": (25, 45),
    "spo2": (50, 100),
    "respiratory_rate": (4, 70),
    "glucose": (10, 1500),
    "creatinine": (0.1, 20),
    "alt": (1, 10000),
    "ast": (1, 10000),
    "lactate": (0.1, 30),
    "wbc": (0.1, 200),
    "potassium": (1.0, 10.0),
    "troponin": (0, 24000),
}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_the_declared_limits_are_inclusive_and_nothing_beyond_passes(name: str) -> None:
    lo, hi = LIMITS[name]
    assert _verdict(name, lo).rule is None
    assert _verdict(name, hi).rule is None
    assert _verdict(name, math.nextafter(lo, -math.inf)).rule == rules.OUT_OF_RANGE
    assert _verdict(name, math.nextafter(hi, math.inf)).rule == rules.OUT_OF_RANGE
