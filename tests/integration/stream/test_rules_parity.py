"""The Spark rules (``core``) give, row by row, the verdict of the pure rules (``rules.check_measurement``).

Random bronze lines, rendered by the ingest service's own ``bronze_line``, go through
``core.parse_bronze`` and ``core.measurement_tables`` on the session's one SparkSession; every row
must land where ``check_measurement`` says: in silver with exactly its canonical value and unit, or
in quarantine with its rule. Then the rules no generated data set reached before, on direct inputs.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clinops_common.vocabulary import MEASUREMENTS
from clinops_ingest.core import Record, bronze_line
from clinops_processor import core, rules

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
INGESTED_AT = "2026-03-01T12:00:00.000Z"
NAMES = sorted(MEASUREMENTS)
UNITS = sorted({u for m in MEASUREMENTS.values() for u in (m.unit, *m.conversions)})
MEASUREMENT_FIELDS = ("measurement", "value", "unit")


def _boundaries() -> list[dict[str, Any]]:
    """Each measurement at, and one ulp outside, both ends of its range, in every accepted unit."""
    rows: list[dict[str, Any]] = []
    for name, m in MEASUREMENTS.items():
        lo, hi = m.valid
        for v in (lo, hi, math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)):
            rows.append({"topic": m.kind, "measurement": name, "unit": m.unit, "value": float(v)})
    # the converted units' boundaries: 25 and 45 degC in degF, 10 and 1500 mg/dL in mmol/L
    rows += [
        {"topic": "vitals", "measurement": "temperature", "unit": "degF", "value": v}
        for v in (77.0, 113.0, 76.99, 113.01)
    ]
    rows += [
        {"topic": "vitals", "measurement": "glucose", "unit": "mmol/L", "value": v}
        for v in (10 / 18.0156, 1500 / 18.0156, 0.55, 83.3)
    ]
    return rows


finite = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False, allow_infinity=False)
row = st.fixed_dictionaries(
    {
        "topic": st.sampled_from(["vitals", "labs"]),
        "measurement": st.one_of(
            st.sampled_from(NAMES), st.sampled_from(["HEART_RATE", "hrv", ""]), st.text(max_size=6)
        ),
        "unit": st.one_of(st.sampled_from(UNITS), st.sampled_from(["mg/dl", "K", ""]), st.text(max_size=4)),
        "value": st.one_of(finite, st.integers(-500, 2000).map(float)),
    },
    optional={"drop": st.sampled_from(MEASUREMENT_FIELDS)},  # a required field left out (or null)
)


def _lines(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    out = []
    for i, r in enumerate(rows):
        event: dict[str, Any] = {
            "event_id": f"e{i}",
            "patient_id": "PT00001",
            "event_time": (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "source": "monitor-bed000",
            **{k: r[k] for k in MEASUREMENT_FIELDS},
        }
        if "drop" in r:
            if i % 2:
                del event[r["drop"]]
            else:
                event[r["drop"]] = None
        record = Record(r["topic"], 0, i, int(T0.timestamp() * 1000) + i, b"PT00001", json.dumps(event).encode())
        out.append((bronze_line(record, INGESTED_AT).decode().rstrip("\n"), "memory"))
    return out


def _judge(spark: Any, lines: list[tuple[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    from pyspark.sql import functions as F

    events = core.parse_bronze(spark.createDataFrame(lines, "value STRING, file STRING"))
    silver, quarantine = core.measurement_tables(events, F.current_timestamp())
    return (
        {r["event_id"]: r for r in silver.collect()},
        {r["event_id"]: r for r in quarantine.collect()},
    )


def _expected(r: dict[str, Any]) -> rules.Verdict:
    if "drop" in r:
        return rules.Verdict(None, rules.INVALID_RECORD)
    return rules.check_measurement(r["topic"], r["measurement"], r["value"], r["unit"])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.lists(row, min_size=1, max_size=60))
@example(rows=_boundaries())
def test_spark_rules_give_the_pure_rules_verdict_on_every_row(spark: Any, rows: list[dict[str, Any]]) -> None:
    silver, quarantine = _judge(spark, _lines(rows))
    assert len(silver) + len(quarantine) == len(rows), "every row lands exactly once"
    for i, r in enumerate(rows):
        want = _expected(r)
        eid = f"e{i}"
        if want.rule is None:
            assert eid in silver, (r, quarantine.get(eid))
            got = silver[eid]
            assert got["value"] == want.value, r  # the same IEEE arithmetic: equal, not approximately
            assert got["unit"] == MEASUREMENTS[r["measurement"]].unit
            assert got["kind"] == r["topic"]
        else:
            assert eid in quarantine, (r, want, silver.get(eid))
            assert quarantine[eid]["rule"] == want.rule, r


def test_the_boundary_example_is_not_vacuous() -> None:
    """Both ends of every range are accepted in the canonical unit, one ulp outside is rejected."""
    verdicts = [_expected(r).rule for r in _boundaries()[: 4 * len(MEASUREMENTS)]]
    assert verdicts == [None, None, rules.OUT_OF_RANGE, rules.OUT_OF_RANGE] * len(MEASUREMENTS)


def _line(topic: str, offset: int, event: dict[str, Any]) -> tuple[str, str]:
    record = Record(topic, 0, offset, int(T0.timestamp() * 1000), b"PT00001", json.dumps(event).encode())
    return bronze_line(record, INGESTED_AT).decode().rstrip("\n"), "memory"


def test_the_other_rules_on_direct_inputs(spark: Any) -> None:
    """dose_not_positive and invalid_record (a missing field, a time only the event schema accepts)."""
    from pyspark.sql import functions as F

    base = {"patient_id": "PT00001", "event_time": "2026-03-01T08:00:00.000Z", "source": "emar"}
    med = {**base, "drug": "heparin", "dose_unit": "units", "route": "SC"}
    lines = [
        _line("medications", 0, {**med, "event_id": "zero", "dose": 0.0, "event_time": "2026-03-01T08:00:00Z"}),
        _line("medications", 1, {**med, "event_id": "negative", "dose": -5000.0, "event_time": "2026-03-01T08:01:00Z"}),
        _line("medications", 2, {**med, "event_id": "tiny", "dose": 0.001, "event_time": "2026-03-01T08:02:00Z"}),
        _line(
            "medications", 3, {**{k: v for k, v in med.items() if k != "route"}, "event_id": "no-route", "dose": 1.0}
        ),
        _line("medications", 4, {**med, "event_id": "epoch", "dose": 1.0, "event_time": 1772352000}),
        _line("admissions", 5, {**base, "event_id": "no-type", "source": "adt"}),
        _line(
            "vitals",
            6,
            {
                **base,
                "event_id": "epoch-v",
                "measurement": "heart_rate",
                "value": 80,
                "unit": "bpm",
                "event_time": "1772352000",
            },
        ),
    ]
    events = core.parse_bronze(spark.createDataFrame(lines, "value STRING, file STRING")).cache()
    tables, quarantine = core.silver_tables(events, F.current_timestamp())
    rows = {r["event_id"]: r for r in quarantine.collect()}
    assert {k: r["rule"] for k, r in rows.items()} == {
        "zero": rules.DOSE_NOT_POSITIVE,
        "negative": rules.DOSE_NOT_POSITIVE,
        "no-route": rules.INVALID_RECORD,
        "epoch": rules.INVALID_RECORD,
        "no-type": rules.INVALID_RECORD,
        "epoch-v": rules.INVALID_RECORD,
    }
    assert [r["event_id"] for r in tables["medications"].collect()] == ["tiny"]
    assert rows["epoch"]["event_time"] is None
    assert rows["epoch"]["patient_id"] == "PT00001"
    assert str(rows["epoch"]["date"]) == "2026-03-01"  # an unparseable time files under the ingest date
    assert all(json.loads(r["raw"])["event_id"] == k for k, r in rows.items())
    events.unpersist()
