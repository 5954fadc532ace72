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
)


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


def test_silver_holds_every_valid_event_exactly_once_in_canonical_units(run: Any, spark: Any) -> None:
    p, ds, _ = run
    rows = p.silver(spark, "measurements")
    expected = {t.event_id: t for t in ds.truths if t.status == "silver" and t.measurement}
    assert len(rows) == ds.ledger.silver_rows()["measurements"]
    assert Counter(r["event_id"] for r in rows) == Counter(list(expected))
    for r in rows:
        t = expected[r["event_id"]]
        assert r["unit"] == MEASUREMENTS[r["measurement"]].unit
        assert r["value"] == pytest.approx(t.canonical_value, abs=0.01)
        assert r["kind"] == t.topic
        assert r["date"] == r["event_time"].astimezone(UTC).date()  # late data in its own event date
        assert r["ingested_at"] is not None
    for table in ("medications", "admissions", "outcomes"):
        got = p.silver(spark, table)
        assert len(got) == ds.ledger.silver_rows()[table], table
        assert len({r["event_id"] for r in got}) == len(got)
    arms = {r["trial_arm"] for r in p.silver(spark, "admissions")}
    assert arms <= {"control", "treatment"}
    assert arms


def test_quarantine_holds_every_out_of_range_value_with_its_rule(run: Any, spark: Any) -> None:
    p, ds, _ = run
    rows = p.silver(spark, "quarantine")
    assert Counter(r["rule"] for r in rows) == ds.ledger.quarantine
    assert {r["event_id"] for r in rows} == {t.event_id for t in ds.truths if t.status == "quarantine"}
    assert all("outside" in r["reason"] and json.loads(r["raw"])["event_id"] == r["event_id"] for r in rows)


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


def test_late_data_and_replayed_duplicates_in_a_later_run_land_once_in_the_right_date(run: Any, spark: Any) -> None:
    p, ds, _ = run
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
