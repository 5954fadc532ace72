"""One SparkSession for every feature-store test (wired to the harness's MinIO)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from clinops_common.settings import Connections

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark(s3: Connections, stack: Any) -> Iterator[SparkSession]:
    from clinops_common.spark import spark_session

    session = spark_session(
        "clinops-features-tests",
        s3,
        settings=stack.settings.spark("local[2]"),
        extra_conf={"spark.sql.shuffle.partitions": "2"},
    )
    yield session
    session.stop()
