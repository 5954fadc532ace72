"""Ingest core: bronze and dead-letter objects, split at hour boundaries, named deterministically."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from clinops_ingest.core import HOUR_MS, Batch, Record, bronze_body, bronze_line, render, validate

T0 = int(datetime(2026, 1, 1, 9, 58, tzinfo=UTC).timestamp() * 1000)
NOW = datetime(2026, 1, 2, tzinfo=UTC)


def event(i: int) -> bytes:
    return json.dumps(
        {
            "event_id": f"e{i}",
            "patient_id": "PT00001",
            "event_time": "2026-01-01T09:57:00Z",
            "source": "m",
            "measurement": "heart_rate",
            "value": 70 + i,
            "unit": "bpm",
        }
    ).encode()


def records(n: int, step_ms: int = 60_000, bad: set[int] = frozenset()) -> list[Record]:  # type: ignore[assignment]
    return [
        Record("vitals", 2, 100 + i, T0 + i * step_ms, b"PT00001", b"{oops" if i in bad else event(i)) for i in range(n)
    ]


def test_a_batch_crossing_an_hour_is_split_and_named_by_offsets() -> None:
    objs = render([validate(r) for r in records(5)], NOW)  # 09:58, 09:59, 10:00, 10:01, 10:02
    assert [o.key for o in objs] == [
        "bronze/vitals/date=2026-01-01/hour=09/2-100-101.ndjson",
        "bronze/vitals/date=2026-01-01/hour=10/2-102-104.ndjson",
    ]
    assert [o.lines for o in objs] == [2, 3]


def test_a_replay_later_rewrites_the_same_objects_but_for_the_ingest_time() -> None:
    entries = [validate(r) for r in records(7, bad={3})]
    first, replay = render(entries, NOW), render(entries, NOW + timedelta(hours=5))
    keys = [
        "bronze/vitals/date=2026-01-01/hour=09/2-100-101.ndjson",
        "deadletter/vitals/date=2026-01-01/hour=10/2-103-103.ndjson",
        "bronze/vitals/date=2026-01-01/hour=10/2-102-106.ndjson",
    ]
    assert [o.key for o in first] == [o.key for o in replay] == keys  # named by offsets, not by time

    def without_ingest_time(body: bytes) -> list[dict[str, object]]:
        return [{k: v for k, v in json.loads(x).items() if k != "ingested_at"} for x in body.splitlines()]

    for a, b in zip(first, replay, strict=True):
        assert without_ingest_time(a.body) == without_ingest_time(b.body)
        assert a.body != b.body  # ingested_at says when each copy was written


def test_bad_messages_go_to_dead_letter_with_reason_offset_and_raw() -> None:
    objs = render([validate(r) for r in records(4, bad={1})], NOW)
    dead = [o for o in objs if o.layer == "deadletter"]
    assert [o.key for o in dead] == ["deadletter/vitals/date=2026-01-01/hour=09/2-101-101.ndjson"]
    line = json.loads(dead[0].body)
    assert line["reason"] == "malformed_json"
    assert line["offset"] == 101
    assert line["partition"] == 2
    assert line["raw"] == "{oops"
    good = [json.loads(x) for o in objs if o.layer == "bronze" for x in o.body.splitlines()]
    assert [g["offset"] for g in good] == [100, 102, 103]
    assert good[0]["event"] == json.loads(event(0))
    assert good[0]["ingested_at"] == "2026-01-02T00:00:00.000Z"


def test_pretty_printed_json_stays_on_one_line() -> None:
    pretty = json.dumps(json.loads(event(0)), indent=2).encode()
    objs = render([validate(Record("vitals", 0, 0, T0, b"PT00001", pretty))], NOW)
    assert objs[0].body.count(b"\n") == 1
    assert json.loads(objs[0].body)["event"]["event_id"] == "e0"


def test_batch_is_due_by_count_bytes_or_age() -> None:
    b = Batch(started=0.0)
    for r in records(3):
        b.add(validate(r))
    assert not b.due(1.0, max_records=10, max_bytes=10_000, max_age_s=5)
    assert b.due(1.0, max_records=3, max_bytes=10_000, max_age_s=5)
    assert b.due(1.0, max_records=10, max_bytes=100, max_age_s=5)
    assert b.due(6.0, max_records=10, max_bytes=10_000, max_age_s=5)
    assert b.next_offset == 103


@given(st.lists(st.tuples(st.integers(0, 3 * 3_600_000), st.booleans()), min_size=1, max_size=60))
def test_every_record_lands_in_exactly_one_object(spec: list[tuple[int, bool]]) -> None:
    recs = [Record("labs", 0, i, T0 + dt, b"k", event(i) if ok else b"not json") for i, (dt, ok) in enumerate(spec)]
    objs = render([validate(r) for r in recs], NOW)
    offsets = sorted(json.loads(line)["offset"] for o in objs for line in o.body.splitlines())
    assert offsets == list(range(len(spec)))
    assert len({o.key for o in objs}) == len(objs)


@given(
    st.lists(
        st.tuples(
            st.integers(0, HOUR_MS - 1),  # the millisecond in the hour: every digit of MM:SS.fff
            st.none() | st.binary(max_size=8),  # keys: none, non-UTF-8, quotes, percent signs
            st.sampled_from([b'{"a":1}', b'{"a":\n1}', b'{"a":"%s %d"}', b'{"b":\r\n2}', b"null"]) | st.none(),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(-(10**11) // HOUR_MS, 4 * 10**12 // HOUR_MS),  # the hour: from before 1970 to 2096
    st.none() | st.integers(0, 39),  # a record in the next hour (render never does it; the body must cope)
    st.sampled_from(["vitals", "labs"]),
    st.integers(0, 11),
)
def test_a_bronze_body_is_its_lines_joined(
    spec: list[tuple[int, bytes | None, bytes | None]], hour: int, spill: int | None, topic: str, part: int
) -> None:
    recs = [
        Record(topic, part, 5 + i, (hour + (i == spill)) * HOUR_MS + ms, key, value)
        for i, (ms, key, value) in enumerate(spec)
    ]
    stamp = "2026-01-02T00:00:00.000Z"
    assert bronze_body(recs, stamp) == b"".join(bronze_line(r, stamp) for r in recs)
