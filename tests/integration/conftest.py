"""Fixtures shared by every integration test folder.

One SparkSession for the whole test session: ``SparkSession.builder.getOrCreate`` returns the first
session created in a process, whatever settings a later builder asks for, so two fixtures with
different settings would silently share whichever ran first. This one holds the union of what the
streaming and feature tests need.
"""

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
    from clinops_processor.job import SPARK_CONF

    session = spark_session(
        "clinops-tests",
        s3,
        settings=stack.settings.spark("local[2]"),
        extra_conf={**SPARK_CONF, "spark.sql.shuffle.partitions": "2"},
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
