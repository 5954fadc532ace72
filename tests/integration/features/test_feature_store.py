"""Silver in MinIO -> featurizer -> offline snapshots -> training sets and Redis, end to end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
import redis
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from clinops_common.features.definitions import FEATURE_SERVICES, LABEL_VIEW, VITALS_VIEW
from clinops_common.features.materialize import materialize
from clinops_common.features.offline import OfflineStore, SnapshotNotFound
from clinops_common.features.online import OnlineStore
from clinops_common.features.training import build_training_set
from clinops_common.lake import SILVER_SCHEMAS, silver_path
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_featurizer import adapters, core, sample

BUCKET = f"features-it-{uuid.uuid4().hex[:8]}"  # fresh per session: no snapshots left by an earlier run


@pytest.fixture(scope="module")
def lake(s3: Connections) -> Connections:
    conns = s3.model_copy(update={"lake_bucket": BUCKET})
    client = s3_client(conns)
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)
    return conns


@pytest.fixture(scope="module")
def store(spark: SparkSession, lake: Connections) -> OfflineStore:
    """Sample silver written through s3a, featurized, committed as the first snapshot."""
    for table, rows in sample.tables().items():
        df = spark.createDataFrame(rows, SILVER_SCHEMAS[table].replace(" NOT NULL", ""))  # type: ignore[index]
        df.withColumn("date", F.to_date("event_time")).write.mode("overwrite").partitionBy("date").parquet(
            silver_path(BUCKET, table)  # type: ignore[arg-type]
        )
    silver = {
        t: adapters.read_silver(spark, BUCKET, t) for t in ("measurements", "medications", "admissions", "outcomes")
    }
    assert adapters.read_silver(spark, BUCKET, "quarantine").count() == 0  # a table never written reads empty
    views = core.streaming_features(
        silver["measurements"], silver["medications"], silver["admissions"], silver["outcomes"]
    )
    offline = OfflineStore.for_lake(lake)
    adapters.write_views(offline, views)
    return offline


@pytest.fixture
def online(redis_url: str, request: pytest.FixtureRequest) -> Iterator[OnlineStore]:
    client = redis.Redis.from_url(redis_url)
    prefix = f"test:{request.node.name}"
    yield OnlineStore(client, prefix=prefix)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def steps() -> pd.DataFrame:
    t0 = pd.Timestamp(sample.T0)
    return pd.DataFrame(
        {
            "patient_id": ["PT1", "PT1", "PT1", "PT2", "PT9"],
            "event_timestamp": [t0 + pd.Timedelta(hours=h) for h in (1, 2, 3, 2, 2)],
        }
    )


def test_training_set_is_point_in_time_and_guarded(store: OfflineStore) -> None:
    ts = build_training_set(steps(), "adverse_event_v1", store=store, labels=("adverse_event_24h",))
    frame = ts.frame
    assert ts.shape == (5, 2 + len(FEATURE_SERVICES["adverse_event_v1"].refs) + 1)
    assert ts.snapshot_id == store.latest_id()
    assert frame.loc[0, "heart_rate_mean_1h"] == pytest.approx(70)
    # the creatinine was written 5 hours late: the guard keeps every PT1 lab row out before then
    assert frame["creatinine_last_24h"].isna().all()
    unguarded = build_training_set(steps(), "adverse_event_v1", store=store, guard=False).frame
    assert unguarded.loc[0, "creatinine_last_24h"] == 2.5
    assert frame.loc[4, "heart_rate_count_1h"] is None or pd.isna(
        frame.loc[4, "heart_rate_count_1h"]
    )  # unknown patient
    assert frame["adverse_event_24h"].tolist()[:4] == [1.0, 1.0, 0.0, 0.0]  # the event at 3h is not in (3h, 27h]


def test_a_snapshot_rebuilds_the_same_training_set_bit_for_bit(spark: SparkSession, store: OfflineStore) -> None:
    first = store.snapshot()
    before = build_training_set(steps(), "adverse_event_v1", first.snapshot_id, store=store).frame
    # re-featurize the same date with different values: a new snapshot replaces that date's files
    changed = spark.createDataFrame(
        [sample.measurement("PT1", 20, "heart_rate", 150, "bpm")],
        SILVER_SCHEMAS["measurements"].replace(" NOT NULL", ""),
    )
    empty = {
        t: spark.createDataFrame([], SILVER_SCHEMAS[t].replace(" NOT NULL", ""))
        for t in ("medications", "admissions", "outcomes")
    }  # type: ignore[index]
    views = core.streaming_features(changed, empty["medications"], empty["admissions"], empty["outcomes"])
    try:
        second = adapters.write_views(store, {VITALS_VIEW.name: views[VITALS_VIEW.name]})
        assert second.parent == first.snapshot_id
        latest = build_training_set(steps(), "adverse_event_v1", store=store).frame
        assert latest.loc[0, "heart_rate_mean_1h"] == 150
        again = build_training_set(steps(), "adverse_event_v1", first.snapshot_id, store=store).frame
        pd.testing.assert_frame_equal(before, again)
        with pytest.raises(SnapshotNotFound):
            store.snapshot("20000101T000000Z-00000000")
    finally:
        # put the first snapshot's vitals back for the tests after this one, pass or fail
        store.commit({VITALS_VIEW.name: first.files(VITALS_VIEW.name)})


def as_float(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and pd.isna(v)) else v


def test_online_vector_equals_the_offline_training_row(store: OfflineStore, online: OnlineStore) -> None:
    """No training/serving skew: materialize as of T, read online at T, build the training row at T."""
    for pid, t in [
        ("PT1", pd.Timestamp(sample.T0) + pd.Timedelta(hours=3, minutes=30)),
        ("PT2", pd.Timestamp(sample.T0) + pd.Timedelta(hours=2, minutes=30)),
    ]:
        end = t.to_pydatetime()
        materialize(store, online, end=end)
        reader = OnlineStore(online.client, prefix=online.prefix, clock=end.timestamp)
        vec = reader.get_online_features("adverse_event_v1", [pid])[0]
        row = build_training_set(
            pd.DataFrame({"patient_id": [pid], "event_timestamp": [t]}), "adverse_event_v1", store=store
        ).frame.iloc[0]
        offline_values = {k: as_float(row[k]) for k in vec.features}
        assert vec.features == offline_values
        assert sum(v is not None for v in vec.features.values()) > 20
        assert all(not f.stale for f in vec.freshness.values())


def test_online_read_enforces_ttl_and_reports_freshness(store: OfflineStore, online: OnlineStore) -> None:
    end = sample.T0 + timedelta(hours=6)
    result = materialize(store, online, end=end)
    assert result.patients == 2
    assert result.rows == 8
    ttl = VITALS_VIEW.ttl
    fresh_at = sample.T0 + timedelta(hours=3) + ttl  # PT1's last step is 3h: exactly at the TTL edge
    vec = OnlineStore(online.client, prefix=online.prefix, clock=fresh_at.timestamp).get_online_features(
        "adverse_event_v1", ["PT1"]
    )[0]
    assert not vec.freshness["vitals"].stale
    assert vec.freshness["vitals"].age_s == ttl.total_seconds()
    late = fresh_at + timedelta(seconds=1)
    stale = OnlineStore(online.client, prefix=online.prefix, clock=late.timestamp).get_online_features(
        "adverse_event_v1", ["PT1", "PT404"]
    )
    assert stale[0].freshness["vitals"].stale
    assert stale[0].features["heart_rate_last_24h"] is None
    assert stale[1].freshness["vitals"].missing
    assert all(v is None for v in stale[1].features.values())
    key_ttl = online.client.ttl(online.key("PT1"))
    assert 47 * 3600 < key_ttl <= 48 * 3600  # type: ignore[operator]
    memory = online.client.memory_usage(online.key("PT1"))
    print(f"\nredis_bytes_per_patient={memory}")
    assert memory is not None
    assert memory < 16_000


def test_incremental_materialization_writes_only_newer_rows(store: OfflineStore, online: OnlineStore) -> None:
    first = materialize(store, online, end=sample.T0 + timedelta(hours=6))
    assert not first.incremental
    again = materialize(store, online, end=sample.T0 + timedelta(hours=6), incremental=True)
    assert again.incremental
    assert again.rows == 0
    labels = store.read(LABEL_VIEW, store.snapshot(), [])
    assert len(labels) > 0


def test_no_snapshot_yet_is_a_clear_error(lake: Connections) -> None:
    empty = OfflineStore(store_fs := OfflineStore.for_lake(lake).fs, f"{BUCKET}/nowhere")
    assert store_fs is empty.fs
    with pytest.raises(SnapshotNotFound, match="run the featurizer"):
        build_training_set(steps(), "adverse_event_v1", store=empty)
