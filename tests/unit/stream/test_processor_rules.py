"""Validation rules (unknown names and units, the degF conversion) and run planning.

Ranges and unit factors are pinned from clinical sources in test_clinical_ranges.py; the Spark rules
are held to these pure ones in tests/integration/stream/test_rules_parity.py."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from clinops_common.vocabulary import MEASUREMENTS
from clinops_processor import rules
from clinops_processor.job import State, plan

NAMES = sorted(MEASUREMENTS)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def accepted_units(name: str) -> list[str]:
    return [MEASUREMENTS[name].unit, *MEASUREMENTS[name].conversions]


@given(st.floats(min_value=50, max_value=120, allow_nan=False))
def test_fahrenheit_is_converted_before_the_range_check(deg_f: float) -> None:
    verdict = rules.check_measurement("vitals", "temperature", deg_f, "degF")
    celsius = (deg_f - 32) * 5 / 9
    if 25 <= celsius <= 45:
        assert verdict.value is not None
        assert math.isclose(verdict.value, celsius, abs_tol=1e-9)
    else:
        assert verdict.rule == rules.OUT_OF_RANGE


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=8), finite)
def test_unknown_names_and_units_are_rejected_with_their_rule(name: str, unit: str, value: float) -> None:
    verdict = rules.check_measurement("vitals", name, value, unit)
    if name not in MEASUREMENTS or MEASUREMENTS[name].kind != "vitals":
        assert verdict.rule == rules.UNKNOWN_MEASUREMENT
    elif unit not in accepted_units(name):
        assert verdict.rule == rules.UNKNOWN_UNIT


def test_a_lab_name_on_the_vitals_topic_is_unknown() -> None:
    assert rules.check_measurement("vitals", "lactate", 1.0, "mmol/L").rule == rules.UNKNOWN_MEASUREMENT


def test_plan_recomputes_the_dates_new_objects_touch_from_every_object_holding_them() -> None:
    state = State({"a": ["2026-01-01"], "b": ["2026-01-01", "2026-01-02"], "c": ["2026-01-03"]})
    dates, objects = plan(state, ["a", "b", "c", "d"], {"d": {"2026-01-02"}}, None)
    assert dates == {"2026-01-02"}
    assert objects == ["b", "d"]
    dates, objects = plan(state, ["a", "b", "c"], {}, {"2026-01-03"})
    assert (dates, objects) == ({"2026-01-03"}, ["c"])
    assert plan(state, ["a", "b", "c"], {}, None) == (set(), [])
