"""The featurizer's SparkSession, and what SIGTERM does to it.

SIGTERM cancels the running Spark jobs and marks the run as stopping; the job checks the mark
before it commits a snapshot (``StopRequested``), so a stopped run leaves only files no snapshot
lists, and the command exits 128 + the signal. The handler itself only records and cancels.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import structlog

from clinops_common.settings import Connections
from clinops_featurizer.config import FeaturizerSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = structlog.get_logger("clinops.featurizer")


class StopRequested(RuntimeError):
    """A signal asked the run to stop; nothing was committed."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum} before committing")
        self.signum = signum


@dataclass
class Stop:
    """Set by the signal handler; checked by the job at its commit points."""

    signum: int | None = None

    def check(self) -> None:
        if self.signum is not None:
            raise StopRequested(self.signum)


def start(conns: Connections, name: str, settings: FeaturizerSettings) -> tuple[SparkSession, Stop]:
    from clinops_common.spark import spark_session

    spark = spark_session(name, conns, extra_conf=settings.spark_conf())
    spark.sparkContext.setLogLevel("ERROR")
    stop = Stop()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.warning("stopping on signal", signal=signum)
        stop.signum = signum
        spark.sparkContext.cancelAllJobs()

    signal.signal(signal.SIGTERM, on_signal)
    return spark, stop


@contextmanager
def sql_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """``conf`` (runtime SQL settings) in force in ``spark`` inside the block, the earlier values after:
    the featurize job plans under its own settings in a session it did not build (tests, benches)."""
    before = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, old in before.items():
            if old is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, old)
