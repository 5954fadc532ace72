"""The streaming featurizer and the batch featurizer compute the same rows.

One generated data set with every fault (late, out of order, duplicated, invalid, wrong units) goes
down both paths: the batch path through the processor's and the featurizer's own Spark
transformations (bronze lines -> silver -> feature views), the stream path through the streaming
core in Kafka send order. Every (patient, hour) row the stream holds once its hour has closed must
equal the batch row to 1e-9 relative per feature, except rows whose windows hold an event that came
later than the allowed lateness (the batch's to fix). In Redis, the batch materialization then
corrects exactly those, and nothing moves an online row backwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import redis
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from clinops_common.events import utc_iso
from clinops_common.features.definitions import LABS_VIEW, VITALS_VIEW, FeatureView
from clinops_common.features.online import OnlineStore, latest_rows
from clinops_common.lake import SILVER_SCHEMAS, SilverTable
from clinops_common.synthetic import FaultRates, GeneratorConfig, generate
from clinops_common.synthetic.stream import Message
from clinops_common.vocabulary import LABS, VITALS
from clinops_featurizer import core as batch_core
from clinops_featurizer.stream import core
from clinops_ingest.core import Record, bronze_line, validate
from clinops_processor import core as processor

LATENESS = timedelta(minutes=45)
INGEST_DELAY_MS = 1500  # bronze ingested_at = the record's time + this: later than the stream saw it
START = datetime(2026, 3, 1, tzinfo=UTC)
FAULTS = FaultRates(
    duplicate=0.03,
    late=0.01,
    out_of_order=0.03,
    out_of_range=0.01,
    malformed_json=0.005,
    missing_field=0.005,
    unknown_field=0.005,
    unknown_measurement=0.005,
    unknown_unit=0.005,
    epoch_time=0.005,
)
VIEWS = (VITALS_VIEW, LABS_VIEW)


@pytest.fixture(scope="module")
def messages() -> list[Message]:
    cfg = GeneratorConfig(patients=8, days=1.5, seed=16, start=START, topics=("vitals", "labs"), faults=FAULTS)
    return generate(cfg).messages


def batch_rows(spark: SparkSession, messages: list[Message]) -> dict[str, pd.DataFrame]:
    """The batch path on the same messages: ingest's bronze lines, the processor's silver, the featurizer's views."""
    lines = []
    for i, m in enumerate(messages):
        entry = validate(Record(m.topic, 0, i, m.timestamp_ms, m.key, m.value))
        if entry.reason is None:  # ingest dead-letters the rest
            at = datetime.fromtimestamp((m.timestamp_ms + INGEST_DELAY_MS) / 1000, UTC)
            lines.append((bronze_line(entry.record, utc_iso(at)).decode().rstrip("\n"), "bronze"))
    events = processor.parse_bronze(spark.createDataFrame(lines, "value STRING, file STRING"))
    silver, _ = processor.measurement_tables(events, F.current_timestamp())
    measurements = silver.drop("date").cache()

    def empty(table: SilverTable) -> Any:
        return spark.createDataFrame([], SILVER_SCHEMAS[table].replace(" NOT NULL", ""))

    views = batch_core.streaming_features(measurements, empty("medications"), empty("admissions"), empty("outcomes"))
    return {v.name: views[v.name].toPandas() for v in VIEWS}


def stream_rows(messages: list[Message]) -> tuple[dict[tuple[str, str, int], dict[str, Any]], list[core.Reading]]:
    """The stream path: each (view, patient, step) row as it stands when its hour closes, and the
    readings dropped as too late."""
    state = core.StreamState(lateness_us=LATENESS // timedelta(microseconds=1))
    closed: dict[tuple[str, str, int], dict[str, Any]] = {}
    first_step: dict[str, int] = {}
    too_late: list[core.Reading] = []
    next_close: int | None = None

    def close(step: int) -> None:
        for pid, p in state.patients.items():
            if first_step[pid] <= step <= p.step:
                for view in VIEWS:
                    closed[(view.name, pid, step)] = state.row(view, pid, step)

    for m in messages:
        verdict = core.judge(m.topic, m.value, m.timestamp_ms)
        if not isinstance(verdict, core.Reading):
            continue
        if state.add(verdict) == "too_late":
            too_late.append(verdict)
            continue
        first_step.setdefault(verdict.patient_id, core.step_of(verdict.t_us))
        if next_close is None:
            next_close = core.step_of(verdict.t_us)
        while next_close < state.closed_before():
            close(next_close)
            next_close += core.HOUR_US
            state.evict()
    assert next_close is not None
    last = max(p.step for p in state.patients.values())
    while next_close <= last:  # the end of the data closes every hour left
        close(next_close)
        next_close += core.HOUR_US
    return closed, too_late


@pytest.fixture(scope="module")
def both(
    spark: SparkSession, messages: list[Message]
) -> tuple[dict[str, pd.DataFrame], dict[tuple[str, str, int], dict[str, Any]], list[core.Reading]]:
    closed, too_late = stream_rows(messages)
    return batch_rows(spark, messages), closed, too_late


def us(ts: Any) -> int:
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value // 1000)


def touched_by(view: FeatureView, too_late: list[core.Reading]) -> dict[tuple[str, int], set[str]]:
    """Per (patient, step) row, the measurements whose windows hold a reading the stream dropped as
    too late (the batch's to fix)."""
    names = set(VITALS if view is VITALS_VIEW else LABS)
    out: dict[tuple[str, int], set[str]] = {}
    for r in too_late:
        if r.measurement in names:
            for k in range(24):
                out.setdefault((r.patient_id, core.step_of(r.t_us) + k * core.HOUR_US), set()).add(r.measurement)
    return out


def comparable(view: FeatureView, touched: set[str]) -> list[str]:
    """The features of a row that no too-late reading reaches (derived vitals: none touched)."""
    names = VITALS if view is VITALS_VIEW else LABS
    own = [f for f in view.feature_names if any(f.startswith(f"{m}_") and f.count("_trend_") == 0 for m in names)]
    keep = [f for f in own if not any(f.startswith(f"{m}_") for m in touched)]
    derived = [f for f in view.feature_names if f not in own]
    return keep + (derived if not touched else [])


def same(a: Any, b: Any) -> bool:
    a = None if a is None or (isinstance(a, float) and math.isnan(a)) else a
    b = None if b is None or (isinstance(b, float) and math.isnan(b)) else b
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_every_closed_hour_of_the_stream_equals_the_batch_row(both: Any, messages: list[Message]) -> None:
    batch, closed, too_late = both
    assert too_late, "the data set should hold events later than the allowed lateness"
    rows_compared = features_compared = 0
    for view in VIEWS:
        rows = batch[view.name]
        late = touched_by(view, too_late)
        for rec in rows.to_dict("records"):
            key = (rec["patient_id"], us(rec["event_timestamp"]))
            mine = closed.get((view.name, *key))
            if mine is None:  # only where a too-late first reading opened the patient's hours
                assert key in late, f"the stream has no {view.name} row for step {key[1]}"
                continue
            feats = comparable(view, late.get(key, set()))
            bad = {f: (mine[f], rec[f]) for f in feats if not same(mine[f], rec[f])}
            assert not bad, f"{view.name} {key}: stream vs batch differ on {sorted(bad)[:5]}: {list(bad.values())[:3]}"
            rows_compared += 1
            features_compared += len(feats)
        # and the stream has no hour the batch has not
        stream_keys = {(p, s) for (v, p, s) in closed if v == view.name}
        assert stream_keys <= {(r["patient_id"], us(r["event_timestamp"])) for r in rows.to_dict("records")}
    assert rows_compared > 500
    assert features_compared > 50_000


@pytest.fixture
def online(redis_url: str) -> Iterator[OnlineStore]:
    client = redis.Redis.from_url(redis_url)
    store = OnlineStore(client, prefix=f"test-stream-{datetime.now(UTC).timestamp()}")
    yield store
    for key in client.scan_iter(f"{store.prefix}:*"):
        client.delete(key)
    client.close()


def raw(store: OnlineStore, view: FeatureView, pid: str) -> dict[str, Any]:
    from clinops_common.features.online import decode

    row = decode(view, store.client.hget(store.key(pid), view.name))  # type: ignore[arg-type]
    assert row is not None
    return {"event_us": row.event_us, "created_us": row.created_us, **row.values}


def test_batch_materialization_corrects_late_rows_and_nothing_goes_backwards(both: Any, online: OnlineStore) -> None:
    batch, closed, _ = both
    for view in VIEWS:
        latest: dict[str, dict[str, Any]] = {}
        for (v, pid, _), row in sorted(closed.items(), key=lambda kv: kv[0][2]):
            if v == view.name:
                latest[pid] = row
        # the stream writes every hour's row in turn: the newest stays
        for step_rows in _by_step(closed, view):
            online.write({view.name: core.frame(view, step_rows)})
        for pid, row in latest.items():
            assert raw(online, view, pid)["event_us"] == row["event_us"]
        # an older write (an earlier hour, whoever sends it) is ignored
        older = [r for (v, p, s), r in closed.items() if v == view.name and s < latest[p]["event_us"]]
        assert online.write({view.name: core.frame(view, older)}) == 0
        # the hourly batch materializes its rows: same hour, later created time -> the batch values
        rows = batch[view.name]
        online.write({view.name: latest_rows(view, rows)})
        want = {r["patient_id"]: r for r in latest_rows(view, rows).to_dict("records")}
        for pid, row in latest.items():
            stored = raw(online, view, pid)
            b = want[pid]
            assert stored["event_us"] == us(b["event_timestamp"]) == row["event_us"]
            assert all(same(stored[f], b[f]) for f in view.feature_names), pid
        # and the stream's next write for that hour, computed before the batch ran, is older: ignored
        assert online.write({view.name: core.frame(view, list(latest.values()))}) == 0


def _by_step(closed: dict[tuple[str, str, int], dict[str, Any]], view: FeatureView) -> list[list[dict[str, Any]]]:
    steps: dict[int, list[dict[str, Any]]] = {}
    for (v, _, s), row in closed.items():
        if v == view.name:
            steps.setdefault(s, []).append(row)
    return [steps[s] for s in sorted(steps)]
