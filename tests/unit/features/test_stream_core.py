"""The streaming featurizer's pure core: the batch path's gates, lateness, and its statistics."""

from __future__ import annotations

import json
import math
import statistics

from clinops_common.features.definitions import LABS_VIEW, VITALS_VIEW
from clinops_featurizer.stream import core

T = 1_772_323_200_000_000  # 2026-03-01T00:00:00Z in microseconds
MIN = 60_000_000


def wire(**over: object) -> bytes:
    doc = {
        "schema_version": 1,
        "event_id": "e1",
        "patient_id": "PT1",
        "event_time": "2026-03-01T00:10:00.000Z",
        "source": "monitor-bed001",
        "measurement": "temperature",
        "value": 98.6,
        "unit": "degF",
    }
    doc.update(over)
    return json.dumps(doc).encode()


def reading(minute: float, value: float, measurement: str = "heart_rate", source: str = "m") -> core.Reading:
    t = T + int(minute * MIN)
    return core.Reading("PT1", measurement, source, t, value, t + 1_000_000)


def test_judge_applies_the_schema_the_time_rule_and_the_unit_rules() -> None:
    ok = core.judge("vitals", wire(), 0)
    assert isinstance(ok, core.Reading)
    assert math.isclose(ok.value, 37.0, rel_tol=1e-12)  # degF -> degC by the shared rule
    assert ok.t_us == T + 10 * MIN
    assert core.judge("vitals", b"{not json", 0) == core.Rejected("malformed_json")
    assert core.judge("vitals", wire(extra=1), 0) == core.Rejected("unknown_field")
    assert core.judge("vitals", wire(event_time=1772323800), 0) == core.Rejected("invalid_record")
    assert core.judge("vitals", wire(unit="K"), 0) == core.Rejected("unknown_unit")
    assert core.judge("vitals", wire(value=500.0), 0) == core.Rejected("out_of_range")
    assert core.judge("labs", wire(), 0) == core.Rejected("unknown_measurement")  # a vital on the labs topic


def test_duplicates_and_events_later_than_the_lateness_are_not_counted() -> None:
    state = core.StreamState(lateness_us=30 * MIN)
    assert state.add(reading(50, 70)) == "accepted"
    assert state.add(reading(50, 99)) == "duplicate"  # same silver key: the first copy wins
    assert state.add(reading(50, 71, source="other")) == "accepted"
    assert state.add(reading(25, 72)) == "accepted"  # 25 min behind the watermark: within lateness
    assert state.add(reading(10, 73)) == "too_late"
    row = state.row(VITALS_VIEW, "PT1", core.step_of(T + 50 * MIN))
    assert row["heart_rate_count_1h"] == 3
    assert row["heart_rate_last_1h"] == 71  # same time, later arrival


def test_window_statistics_match_their_definitions() -> None:
    state = core.StreamState(lateness_us=60 * MIN)
    values = [(5, 60.0), (15, 64.0), (25, 71.0), (45, 69.0)]
    assert state.add(reading(-120, 50.0)) == "accepted"  # two hours before: in the 6h and 24h windows only
    for minute, v in values:
        assert state.add(reading(minute, v)) == "accepted"
    row = state.row(VITALS_VIEW, "PT1", T + 60 * MIN)
    ys = [v for _, v in values]
    xs = [m / 60 for m, _ in values]
    assert math.isclose(row["heart_rate_mean_1h"], statistics.fmean(ys), rel_tol=1e-12)
    assert math.isclose(row["heart_rate_std_1h"], statistics.stdev(ys), rel_tol=1e-12)
    assert math.isclose(row["heart_rate_slope_1h"], statistics.linear_regression(xs, ys).slope, rel_tol=1e-9)
    assert (row["heart_rate_min_1h"], row["heart_rate_max_1h"], row["heart_rate_last_1h"]) == (60, 71, 69)
    assert row["heart_rate_count_6h"] == 5
    assert row["heart_rate_trend_1h_24h"] == row["heart_rate_mean_1h"] - row["heart_rate_mean_24h"]
    assert row["systolic_bp_mean_1h"] is None
    assert row["systolic_bp_count_1h"] == 0
    assert row["pulse_pressure"] is None
    assert row["created_us"] == T + 45 * MIN + 1_000_000
    one = core.StreamState(lateness_us=0)
    one.add(reading(5, 60.0))
    single = one.row(LABS_VIEW, "PT1", T + 60 * MIN)
    assert single["created_us"] == T + 60 * MIN  # no labs: the step itself, as the batch coalesces
    assert one.row(VITALS_VIEW, "PT1", T + 60 * MIN)["heart_rate_std_1h"] is None  # one value: no sample std


def test_eviction_keeps_what_open_hours_need() -> None:
    state = core.StreamState(lateness_us=0)
    state.add(reading(0, 60.0))
    state.add(reading(24 * 60 + 30, 61.0))
    state.evict()
    s = state.patients["PT1"].series["heart_rate"]
    assert [r.value for r in s.readings] == [61.0]
