"""Generator → Kafka → ingest → bronze → processor → silver on a few thousand events with every fault
kind, reconciled exactly against the generator's ledger."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clinops_common.synthetic import FAULT_KINDS, Dataset, FaultRates, GeneratorConfig, Message, generate
from clinops_common.vocabulary import MEASUREMENTS
from clinops_processor import job

NOISY = FaultRates(
    duplicate=0.02,
    late=0.02,
    out_of_order=0.02,
    out_of_range=0.01,
    malformed_json=0.01,
    missing_field=0.01,
    unknown_field=0.01,
    unknown_measurement=0.01,
    unknown_unit=0.01,
    dose_not_positive=0.3,  # medications are few: a few hours apart
    epoch_time=0.005,
)
REASONS = {  # what each quarantine rule's reason says
    "out_of_range": "outside [",
    "unknown_measurement": "is not a known",
    "unknown_unit": "is not accepted for",
    "dose_not_positive": "broke rule dose_not_positive",
    "invalid_record": "a required field is missing or unparseable",
}


@pytest.fixture(scope="module")
def run(make_pipeline: Callable[[], Any], spark: Any) -> tuple[Any, Dataset, job.RunResult]:
    ds = generate(GeneratorConfig(patients=5, days=0.5, seed=16, faults=NOISY), keep_truth=True)
    p = make_pipeline()
    assert p.produce(ds.messages) == len(ds.messages)
    p.ingest_until_idle()
    result = job.run(spark, p.conns)
    return p, ds, result


def test_the_data_set_has_every_fault_kind_and_every_topic(run: Any) -> None:
    _, ds, _ = run
    assert all(ds.ledger.faults[k] > 0 for k in FAULT_KINDS), ds.ledger.faults
    assert all(ds.ledger.valid[t] > 0 for t in ("vitals", "labs", "medications", "admissions", "outcomes"))
    assert 3000 < len(ds.messages) < 10000


def test_bronze_holds_every_parseable_message_and_dead_letter_every_other_with_its_reason(run: Any) -> None:
    p, ds, _ = run
    bronze = p.lines("bronze")
    assert len(bronze) == len(ds.messages) - sum(ds.ledger.deadletter.values())
    assert p.distinct_deadletters() == ds.ledger.deadletter
    for line in bronze:  # the hour of the object is the hour of the Kafka record timestamp
        ts = datetime.fromisoformat(line["timestamp"])
        assert f"date={ts:%Y-%m-%d}/hour={ts:%H}/" in line["_key"]
        assert f"/{line['partition']}-" in line["_key"]


def _utc_ms(ts: datetime) -> int:
    """Spark hands back naive datetimes in the session time zone (UTC)."""
    return round(ts.replace(tzinfo=UTC).timestamp() * 1000)


def test_silver_holds_every_valid_event_exactly_once_in_canonical_units(run: Any, spark: Any) -> None:
    p, ds, _ = run
    rows = p.silver(spark, "measurements")
    expected = {t.event_id: t for t in ds.truths if t.status == "silver" and t.measurement}
    assert len(rows) == ds.ledger.silver_rows()["measurements"]
    assert Counter(r["event_id"] for r in rows) == Counter(list(expected))
    for r in rows:
        t = expected[r["event_id"]]
        assert r["measurement"] == t.measurement
        assert r["unit"] == MEASUREMENTS[t.measurement].unit
        assert r["value"] == pytest.approx(t.canonical_value, abs=0.01)
        assert r["kind"] == t.topic
        assert r["patient_id"] == t.patient_id
        assert _utc_ms(r["event_time"]) == t.event_time_ms  # the generator's time, to the millisecond
        assert r["date"] == datetime.fromtimestamp(t.event_time_ms / 1000, UTC).date()  # late data: its own date
        assert r["ingested_at"] is not None


SILVER_FIELDS = {
    "medications": ("patient_id", "source", "drug", "dose", "dose_unit", "route"),
    "admissions": ("patient_id", "source", "event_type", "hospital_id", "department", "discharge_status", "trial_arm"),
    "outcomes": ("patient_id", "source", "outcome_type", "severity", "prediction_id"),
}


@pytest.mark.parametrize("table", sorted(SILVER_FIELDS))
def test_medications_admissions_and_outcomes_hold_each_sent_event_field_by_field(
    run: Any, spark: Any, table: str
) -> None:
    p, ds, _ = run
    truths = {t.event_id: t for t in ds.truths if t.topic == table and t.status == "silver"}
    # what the generator sent for each of them (a duplicate or a late copy carries the same event)
    sent = {e["event_id"]: e for m in ds.messages if m.topic == table for e in [_event(m.value)] if e}
    rows = p.silver(spark, table)
    assert sorted(r["event_id"] for r in rows) == sorted(truths)
    for r in rows:
        t, e = truths[r["event_id"]], sent[r["event_id"]]
        assert {f: r[f] for f in SILVER_FIELDS[table]} == {f: e.get(f) for f in SILVER_FIELDS[table]}, r
        assert r["patient_id"] == t.patient_id
        assert _utc_ms(r["event_time"]) == t.event_time_ms
    if table == "admissions":
        assert {r["trial_arm"] for r in rows} == {"control", "treatment"}
        assert {r["event_type"] for r in rows} >= {"admit", "discharge"}


def _event(value: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(value)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event_id" in event else None


def test_quarantine_holds_every_rejected_event_with_its_rule(run: Any, spark: Any) -> None:
    p, ds, _ = run
    rows = p.silver(spark, "quarantine")
    assert Counter(r["rule"] for r in rows) == ds.ledger.quarantine
    assert {r["event_id"] for r in rows} == {t.event_id for t in ds.truths if t.status == "quarantine"}
    assert set(ds.ledger.quarantine) == set(REASONS), "every quarantine rule is reached"
    truths = {t.event_id: t for t in ds.truths if t.status == "quarantine"}
    for r in rows:
        assert REASONS[r["rule"]] in r["reason"], r
        assert json.loads(r["raw"])["event_id"] == r["event_id"]
        assert r["rule"] == truths[r["event_id"]].reason
        assert r["patient_id"] == truths[r["event_id"]].patient_id


def test_rerunning_is_a_no_op_and_recomputing_a_date_replaces_it_identically(run: Any, spark: Any) -> None:
    p, _, first = run
    again = job.run(spark, p.conns)
    assert (again.new_objects, again.objects_read) == (0, 0)
    before = sorted((r["event_id"], r["value"], r["ingested_at"]) for r in p.silver(spark, "measurements"))
    day = datetime.fromisoformat(first.dates[0]).date()
    redo = job.run(spark, p.conns, only_dates={day})
    assert redo.dates == [first.dates[0]]
    after = sorted((r["event_id"], r["value"], r["ingested_at"]) for r in p.silver(spark, "measurements"))
    assert after == before


def test_late_data_and_replayed_duplicates_in_a_later_run_land_once_in_the_right_date(
    make_pipeline: Callable[[], Any], spark: Any
) -> None:
    # Its own small pipeline: what it adds to silver must not leak into the other tests' counts.
    ds = generate(
        GeneratorConfig(patients=1, days=0.1, seed=16, topics=("vitals",), faults=FaultRates.none()), keep_truth=True
    )
    p = make_pipeline()
    assert p.produce(ds.messages) == len(ds.messages)
    p.ingest_until_idle()
    job.run(spark, p.conns)
    clean = next(t for t in ds.truths if t.measurement == "heart_rate" and t.status == "silver" and t.fault is None)
    original = next(m for m in ds.messages if clean.event_id.encode() in m.value)
    event = json.loads(original.value)
    old_time = datetime.fromisoformat(event["event_time"]) + timedelta(seconds=1)
    late = {**event, "event_id": "late-1", "event_time": old_time.isoformat().replace("+00:00", "Z"), "value": 99.0}
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    before = {r["event_id"]: r for r in p.silver(spark, "measurements")}
    p.produce(
        [
            Message("vitals", original.key, json.dumps(late).encode(), now_ms),
            Message("vitals", original.key, original.value, now_ms),  # the same event again, much later
        ]
    )
    p.ingest_until_idle()
    result = job.run(spark, p.conns)
    assert result.new_objects >= 1
    assert result.dates == [old_time.date().isoformat()]
    after = {r["event_id"]: r for r in p.silver(spark, "measurements")}
    assert set(after) - set(before) == {"late-1"}
    assert set(before) <= set(after)
    assert after["late-1"]["date"] == old_time.date()
    assert after[event["event_id"]]["ingested_at"] == before[event["event_id"]]["ingested_at"]  # first write wins
