"""Pure logic of the ingest consumer: validate a record, batch records, render bronze and dead-letter
objects. No Kafka, no S3 here.

A bronze line is an envelope around the event exactly as received::

    {"topic": "vitals", "partition": 0, "offset": 42, "timestamp": "2026-01-01T10:00:00.123Z",
     "key": "PT00001", "ingested_at": "2026-01-01T10:00:05.000Z", "event": {...}}

``timestamp`` is the Kafka record timestamp (it picks the bronze hour), ``ingested_at`` when clinops
wrote the object. A dead-letter line carries ``reason``, ``detail`` and the ``raw`` value instead.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

from clinops_common.events import InvalidEvent, check_event, utc_iso
from clinops_common.lake import bronze_object_key, deadletter_object_key


@dataclass(slots=True)  # not frozen: a frozen dataclass costs five times as much to build, per message
class Record:
    """One Kafka record, with the logical topic name (any test prefix removed)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class Entry:
    """A record and the verdict of validation (``reason`` is None for a valid event)."""

    record: Record
    reason: str | None = None
    detail: str | None = None


def validate(record: Record) -> Entry:
    """Parse the value against its topic's schema; never raises."""
    if record.value is None:
        return Entry(record, "malformed_json", "empty message (tombstone)")
    try:
        check_event(record.topic, record.value)
    except InvalidEvent as err:
        return Entry(record, err.reason, err.detail)
    return Entry(record)


HOUR_MS = 3_600_000


def hour_of(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms // HOUR_MS * 3600, tz=UTC)


class _Stamps:
    """Formats record timestamps fast: the hour part once per hour, the rest by arithmetic."""

    def __init__(self) -> None:
        self.hours: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        hour, rem = divmod(ms, HOUR_MS)
        prefix = self.hours.get(hour)
        if prefix is None:
            prefix = self.hours[hour] = hour_of(ms).strftime("%Y-%m-%dT%H:")
        return f"{prefix}{rem // 60_000:02d}:{rem // 1000 % 60:02d}.{rem % 1000:03d}Z"


def _minute_second_milli(rem: Any) -> list[bytes]:
    """``b"MM:SS.fff"`` of each millisecond of an hour in a numpy array, digit by digit in numpy (a
    ``%02d`` per field in the line's format would cost more than the rest of the line)."""
    import numpy as np

    minute, second, milli = rem // 60_000, rem // 1000 % 60, rem % 1000
    digits = np.full((len(rem), 9), ord(":"), dtype=np.uint8)  # MM:SS.fff, columns 2 and 5 the separators
    digits[:, 5] = ord(".")
    columns = {0: minute // 10, 1: minute % 10, 3: second // 10, 4: second % 10}
    columns |= {6: milli // 100, 7: milli // 10 % 10, 8: milli % 10}
    for col, digit in columns.items():
        digits[:, col] = digit + ord("0")
    stamps: list[bytes] = digits.view("S9").ravel().tolist()
    return stamps


def bronze_body(records: list[Record], ingested_at: str) -> bytes:
    """``bronze_line`` of each record, joined, byte for byte, made in one formatting call: the shared
    parts (and the hour of the timestamps, when they share one) are in the format once, the rest of
    each timestamp comes from numpy arithmetic, each key is encoded once."""
    if not records:
        return b""
    import numpy as np

    ms = np.fromiter((r.timestamp_ms for r in records), dtype=np.int64, count=len(records))
    hour = int(ms[0]) // HOUR_MS
    if not ((ms >= hour * HOUR_MS) & (ms < (hour + 1) * HOUR_MS)).all():  # render's groups never span hours
        return b"".join(bronze_line(r, ingested_at) for r in records)
    r0 = records[0]
    shared = (
        f'{{"topic":"{r0.topic}","partition":{r0.partition},"offset":'.encode(),
        hour_of(hour * HOUR_MS).strftime("%Y-%m-%dT%H:").encode(),
        ingested_at.encode(),
    )
    head, prefix, ing = (part.replace(b"%", b"%%") for part in shared)
    line = head + b'%d,"timestamp":"' + prefix + b'%sZ","key":%s,"ingested_at":"' + ing + b'","event":%s}\n'
    keys = {k: _key_json(k).encode() for k in {r.key for r in records}}
    columns = (
        [r.offset for r in records],
        _minute_second_milli(ms - hour * HOUR_MS),
        [keys[r.key] for r in records],
        [r.value or b"null" for r in records],
    )
    body: bytes = (line * len(records)) % tuple(chain.from_iterable(zip(*columns, strict=True)))
    if body.count(b"\n") != len(records) or b"\r" in body:  # a value spans lines: re-encode those (rare)
        return b"".join(bronze_line(r, ingested_at) for r in records)
    return body


@lru_cache(maxsize=65536)
def _key_json(key: bytes | None) -> str:
    return json.dumps(key.decode("utf-8", errors="replace")) if key is not None else "null"


def bronze_line(r: Record, ingested_at: str, stamp: Callable[[int], str] | None = None) -> bytes:
    value = r.value or b"null"
    if b"\n" in value or b"\r" in value:  # keep one event per line
        value = json.dumps(json.loads(value), separators=(",", ":")).encode()
    ts = (stamp or _Stamps())(r.timestamp_ms)
    head = (
        f'{{"topic":"{r.topic}","partition":{r.partition},"offset":{r.offset},"timestamp":"{ts}",'
        f'"key":{_key_json(r.key)},"ingested_at":"{ingested_at}","event":'
    )
    return head.encode() + value + b"}\n"


def deadletter_line(e: Entry, ingested_at: str) -> bytes:
    r = e.record
    doc = {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": _Stamps()(r.timestamp_ms),
        "key": r.key.decode("utf-8", errors="replace") if r.key is not None else None,
        "reason": e.reason,
        "detail": e.detail,
        "ingested_at": ingested_at,
        "raw": r.value.decode("utf-8", errors="replace") if r.value is not None else None,
    }
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class LakeObject:
    key: str
    body: bytes
    lines: int
    layer: str  # "bronze" or "deadletter"


def render(entries: list[Entry], ingested_at: datetime) -> list[LakeObject]:
    """The objects for a batch of one topic-partition: split at hour boundaries of the record
    timestamps; each named by partition and first/last offset, so a replay rewrites the same object."""
    stamp = utc_iso(ingested_at)
    groups: dict[tuple[str, int, int, bool], list[Entry]] = defaultdict(list)
    for e in entries:
        r = e.record
        groups[(r.topic, r.partition, r.timestamp_ms // HOUR_MS, e.reason is None)].append(e)
    objects = []
    for (topic, part, hour_index, ok), group in sorted(groups.items()):
        first, last = group[0].record.offset, group[-1].record.offset
        hour = hour_of(hour_index * HOUR_MS)
        if ok:
            key = bronze_object_key(topic, hour, part, first, last)
            body = bronze_body([e.record for e in group], stamp)
        else:
            key = deadletter_object_key(topic, hour, part, first, last)
            body = b"".join(deadletter_line(e, stamp) for e in group)
        objects.append(LakeObject(key, body, len(group), "bronze" if ok else "deadletter"))
    return objects


@dataclass
class Batch:
    """Records buffered for one topic-partition since its last flush."""

    started: float  # monotonic seconds
    entries: list[Entry] = field(default_factory=list)
    size: int = 0  # bytes of values

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.size += len(entry.record.value or b"")

    @property
    def next_offset(self) -> int:
        return self.entries[-1].record.offset + 1

    def due(self, now: float, max_records: int, max_bytes: int, max_age_s: float) -> bool:
        return len(self.entries) >= max_records or self.size >= max_bytes or now - self.started >= max_age_s
