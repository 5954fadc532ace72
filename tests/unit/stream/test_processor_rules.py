"""Validation rules and unit conversions (property tests against vocabulary.py), and run planning."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from clinops_common.vocabulary import MEASUREMENTS, in_valid_range, to_canonical
from clinops_processor import rules
from clinops_processor.job import State, plan

NAMES = sorted(MEASUREMENTS)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def accepted_units(name: str) -> list[str]:
    return [MEASUREMENTS[name].unit, *MEASUREMENTS[name].conversions]


@given(st.sampled_from(NAMES).flatmap(lambda n: st.tuples(st.just(n), st.sampled_from(accepted_units(n)))), finite)
def test_affine_rules_reproduce_every_vocabulary_conversion(name_unit: tuple[str, str], value: float) -> None:
    name, unit = name_unit
    rule = next(r for r in rules.unit_rules() if (r.measurement, r.unit) == (name, unit))
    assert math.isclose(rule.scale * value + rule.offset, to_canonical(name, value, unit), rel_tol=1e-9, abs_tol=1e-9)


@given(st.sampled_from(NAMES), finite)
def test_a_canonical_value_is_accepted_exactly_when_it_is_in_range(name: str, value: float) -> None:
    m = MEASUREMENTS[name]
    verdict = rules.check_measurement(m.kind, name, value, m.unit)
    assert (verdict.rule is None) == in_valid_range(name, value)
    assert verdict.rule in (None, rules.OUT_OF_RANGE)
    if verdict.rule is None:
        assert verdict.value == value


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
