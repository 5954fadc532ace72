"""The generator: deterministic, every fault accounted for in the ledger, batch tables as the contract."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from clinops_common.events import InvalidEvent, parse_event
from clinops_common.lake import BATCH_SCHEMAS, BATCH_TABLES, ddl_columns
from clinops_common.synthetic import FAULT_KINDS, FaultRates, GeneratorConfig, generate
from clinops_common.synthetic.sinks import batch_table_bytes, read_messages, write_files
from clinops_common.vocabulary import MEASUREMENTS, in_valid_range, to_canonical

START = datetime(2026, 3, 1, tzinfo=UTC)
NOISY = FaultRates(
    duplicate=0.03,
    late=0.03,
    out_of_order=0.03,
    out_of_range=0.02,
    malformed_json=0.02,
    missing_field=0.02,
    unknown_field=0.02,
    unknown_measurement=0.02,
    unknown_unit=0.02,
    dose_not_positive=0.05,
    epoch_time=0.01,
)
QUARANTINE_FAULTS = ("out_of_range", "unknown_measurement", "unknown_unit", "dose_not_positive", "epoch_time")


@pytest.fixture(scope="module")
def dataset():  # type: ignore[no-untyped-def]
    return generate(
        GeneratorConfig(patients=4, days=1, seed=11, start=START, cohort=12, vitals_interval_min=15, faults=NOISY),
        keep_truth=True,
    )


def test_same_seed_same_data_other_seed_other_data() -> None:
    cfg = GeneratorConfig(patients=2, days=0.25, seed=3, start=START)
    a, b = generate(cfg), generate(cfg)
    assert a.messages == b.messages
    assert a.oracle == b.oracle
    assert a.batch == b.batch
    c = generate(cfg.model_copy(update={"seed": 4}))
    assert c.messages != a.messages


def test_every_fault_kind_occurs_and_the_ledger_adds_up(dataset) -> None:  # type: ignore[no-untyped-def]
    ledger = dataset.ledger
    assert all(ledger.faults[k] > 0 for k in FAULT_KINDS), ledger.faults
    assert sum(ledger.sent.values()) == len(dataset.messages)
    assert sum(ledger.sent.values()) == len(dataset.truths) + ledger.faults["duplicate"]
    status = Counter(t.status for t in dataset.truths)
    assert status["silver"] == sum(ledger.valid.values())
    assert status["deadletter"] == sum(ledger.deadletter.values())
    assert status["quarantine"] == sum(ledger.quarantine.values()) == sum(ledger.faults[k] for k in QUARANTINE_FAULTS)
    assert ledger.quarantine["invalid_record"] == ledger.faults["epoch_time"]  # the processor's rule name


def test_each_wire_message_is_what_its_truth_says(dataset) -> None:  # type: ignore[no-untyped-def]
    truths = {t.event_id: t for t in dataset.truths}
    seen: Counter[str] = Counter()
    for m in dataset.messages:
        try:
            event = parse_event(m.topic, m.value)
        except InvalidEvent as err:
            seen[err.reason] += 1
            continue
        assert m.key.decode() == event.patient_id
        t = truths[event.event_id]
        assert t.status in ("silver", "quarantine")
        assert (t.status == "quarantine") == (t.fault in QUARANTINE_FAULTS)
        wire = json.loads(m.value)
        if t.fault == "unknown_measurement":
            assert wire["measurement"] not in MEASUREMENTS
        elif t.fault == "unknown_unit":
            m_ = MEASUREMENTS[wire["measurement"]]
            assert wire["unit"] not in (m_.unit, *m_.conversions)
        elif t.fault == "dose_not_positive":
            assert wire["dose"] <= 0
        elif t.fault == "epoch_time":
            assert wire["event_time"] == t.event_time_ms // 1000  # a number: the schema accepts it as Unix time
        elif t.measurement:
            value = to_canonical(t.measurement, event.value, event.unit)  # type: ignore[attr-defined]
            assert in_valid_range(t.measurement, value) == (t.status == "silver")
            if t.status == "silver":
                assert value == pytest.approx(t.canonical_value, abs=0.01)
    assert seen == dataset.ledger.deadletter


def test_messages_are_in_send_order_and_late_ones_are_late(dataset) -> None:  # type: ignore[no-untyped-def]
    stamps = [m.timestamp_ms for m in dataset.messages]
    assert stamps == sorted(stamps)
    by_id = {t.event_id: t for t in dataset.truths if t.fault == "late"}
    late = [m for m in dataset.messages if _event_id(m.value) in by_id]
    assert late
    assert all(m.timestamp_ms - by_id[_event_id(m.value)].event_time_ms >= 3_600_000 for m in late)


def _event_id(value: bytes) -> str | None:
    try:
        return json.loads(value).get("event_id")  # type: ignore[no-any-return]
    except ValueError:
        return None


def test_oracle_covers_every_patient_hour_with_a_probability(dataset) -> None:  # type: ignore[no-untyped-def]
    assert len(dataset.oracle) == 4 * 24
    assert all(0.0 < r["p_adverse_event_24h"] < 1.0 for r in dataset.oracle)
    assert {(r["patient_id"], r["time"]) for r in dataset.oracle} == {
        (f"PT{i:05d}", START + timedelta(hours=h)) for i in range(1, 5) for h in range(24)
    }


def test_batch_tables_follow_the_contract_and_share_patient_ids(dataset) -> None:  # type: ignore[no-untyped-def]
    streaming = {m.key.decode() for m in dataset.messages}
    for table in BATCH_TABLES:
        rows = dataset.batch[table]
        ids = [r["patient_id"] for r in rows]
        assert list(dict.fromkeys(ids)) == [f"PT{i:05d}" for i in range(1, 13)]
        if table != "clinical_measurements":  # one row per patient; visits: one to three each
            assert len(ids) == len(set(ids))
        body = batch_table_bytes(table, rows)
        columns = [c for c, _, _ in ddl_columns(BATCH_SCHEMAS[table])]
        if table == "demographics":
            first = json.loads(body.splitlines()[0])
            assert list(first) == columns
        else:
            assert pq.read_table(io.BytesIO(body)).column_names == columns
    assert streaming <= {r["patient_id"] for r in dataset.batch["demographics"]}
    arms = {
        r["trial_arm"]
        for m in dataset.messages
        if m.topic == "admissions"
        for r in [json.loads(m.value)]
        if "trial_arm" in r
    }
    assert arms <= {"control", "treatment"}
    assert arms


def test_files_round_trip(dataset, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = write_files(dataset, tmp_path)
    assert list(read_messages(files["messages"])) == dataset.messages
    assert json.loads(files["ledger"].read_text())["messages"] == len(dataset.messages)


def test_clean_config_injects_nothing() -> None:
    ds = generate(GeneratorConfig(patients=2, days=0.5, seed=1, start=START, faults=FaultRates.none()))
    assert sum(ds.ledger.faults.values()) == 0
    assert not ds.ledger.deadletter
    assert not ds.ledger.quarantine
    for m in ds.messages:
        event = parse_event(m.topic, m.value)
        if m.topic in ("vitals", "labs"):
            assert event.unit == MEASUREMENTS[event.measurement].unit  # type: ignore[attr-defined]
