"""Fixtures of the scorer tests: an offline snapshot in MinIO, a champion in MLflow, the online store
materialized in Redis, the predictions table migrated, and one scorer server shared by the API tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis
from scorer_helpers import (
    NO_MEDS,
    SERVICE,
    STALE,
    ScorerProcess,
    World,
    register,
    run_scorer,
    scorer_env,
    this_hour,
    train_package,
    write_offline,
)

from clinops_common import db
from clinops_common.features.materialize import materialize
from clinops_common.features.offline import OfflineStore
from clinops_common.features.online import OnlineStore
from clinops_common.features.training import build_training_set
from clinops_common.settings import Connections
from clinops_common.storage import s3_client

PATIENTS = [f"PT{i:05d}" for i in range(40)] + [STALE, NO_MEDS]


@pytest.fixture(scope="session")
def world(s3: Connections, redis_url: str, mlflow_url: str, database_url: str) -> World:
    bucket = "scorer-it"
    lake = s3.model_copy(update={"lake_bucket": bucket})
    client = s3_client(lake)
    if bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=bucket)
    store = OfflineStore.for_lake(lake)
    hour = this_hour()
    write_offline(store, PATIENTS, hour)
    ents = pd.DataFrame(
        {
            "patient_id": [p for p in PATIENTS for _ in range(4)],
            "event_timestamp": [hour - pd.Timedelta(hours=k) for _ in PATIENTS for k in range(4)],
        }
    )
    frame = build_training_set(ents, SERVICE, store=store).frame
    name = f"scorer-it-{uuid.uuid4().hex[:6]}"
    pkg = train_package(frame, name)
    version = register(mlflow_url, pkg, frame)
    prefix = f"scorer-it:{uuid.uuid4().hex[:6]}"
    materialize(store, OnlineStore(redis.Redis.from_url(redis_url), prefix=prefix))
    db.upgrade(database_url)
    at_hour = frame[frame["event_timestamp"] == hour].set_index("patient_id")
    return World(store, lake, hour, prefix, name, pkg, version, at_hour)


@pytest.fixture(scope="session")
def scorer(
    world: World, redis_url: str, database_url: str, mlflow_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScorerProcess]:
    """One scorer (policy refuse, alias polled every second) for the API tests."""
    tmp = tmp_path_factory.mktemp("scorer")
    env = scorer_env(
        redis_url,
        database_url,
        mlflow_url,
        model_name=world.model_name,
        online_prefix=world.prefix,
        poll_interval_s=1,
        model_cache_dir=tmp / "cache",
        max_batch=16,
    )
    with run_scorer(env, Path(tmp / "scorer.log")) as server:
        yield server
