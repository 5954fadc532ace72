"""Reading stages' result documents from the lake (``clinops_common.contracts.results``).

The operator reads with its own lake credentials (``CLINOPS_S3_*``; on a cluster the chart takes
them from a Secret) from the bucket the pipeline names (``spec.lake.bucket``), where the stage wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from clinops_common.contracts import RESULTS, StageResult, read_result
from clinops_common.settings import LakeConnection
from clinops_common.storage import s3_client
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import StageTask
from clinops_operator.errors import RetryableError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ResultReader(Protocol):
    def read(self, pipeline: Pipeline, task: StageTask) -> StageResult | None:
        """The task's result document, or None when the stage wrote none."""
        ...


class LakeResults:
    """Result documents in the pipeline's lake bucket."""

    def __init__(self, s3: S3Client) -> None:
        self.s3 = s3

    @classmethod
    def from_env(cls) -> LakeResults:
        return cls(s3_client(LakeConnection()))

    def read(self, pipeline: Pipeline, task: StageTask) -> StageResult | None:
        model = RESULTS[task.stage.contract]
        try:
            return read_result(self.s3, pipeline.spec.lake.bucket, model, task.pipeline, task.run_id)
        except (BotoCoreError, ClientError) as err:
            raise RetryableError(f"read the {task.stage.value} result of run {task.run_id}: {err}") from err
