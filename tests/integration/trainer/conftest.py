"""One generated cohort in the harness's MinIO, featurized once, for every trainer test; MLflow is
the harness's real server (PostgreSQL registry, MinIO artifacts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_common.synthetic import FaultRates, GeneratorConfig
from clinops_devstack.cohort import Cohort, build_cohort
from clinops_trainer.config import TrainerSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

BUCKET = "trainer-it"
# 48 inpatients over 7 days, vitals every 15 minutes: 8,064 hourly steps, 6,912 labelled; a stroke
# cohort (batch tables only) of 1,500 patients.
COHORT = GeneratorConfig(
    seed=21,
    patients=48,
    days=7,
    cohort=1500,
    start=datetime(2026, 3, 1, tzinfo=UTC),
    vitals_interval_min=15,
    faults=FaultRates.none(),
)


@pytest.fixture(scope="session")
def trainer_spark(spark: SparkSession) -> SparkSession:
    """The session-wide SparkSession (tests/integration/conftest.py): getOrCreate would return it anyway."""
    return spark


@pytest.fixture(scope="session")
def lake(s3: Connections) -> Connections:
    conns = s3.model_copy(update={"lake_bucket": BUCKET})
    client = s3_client(conns)
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)
    return conns


@pytest.fixture(scope="session")
def cohort(lake: Connections, trainer_spark: SparkSession) -> Cohort:
    return build_cohort(lake, trainer_spark, COHORT)


@pytest.fixture(scope="session")
def conns(lake: Connections, mlflow_url: str, cohort: Cohort) -> Connections:
    return lake.model_copy(update={"mlflow_tracking_uri": mlflow_url})


@pytest.fixture
def settings(tmp_path_factory: pytest.TempPathFactory) -> TrainerSettings:
    return TrainerSettings(bootstrap_samples=200, model_cache_dir=tmp_path_factory.mktemp("models"), threads=2)
