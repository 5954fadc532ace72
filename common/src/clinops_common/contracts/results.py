"""A stage's result as a small JSON document in the lake, at ``runs/<pipeline>/<run id>/<stage>.json``.

Why the lake: every stage already has the lake's credentials and every executor can reach it — a
SparkApplication's driver, a Job's pod, a local process — and so can the operator, wherever it runs.
A Kubernetes termination message would work for Jobs only (a SparkApplication's status has no place
for it) and not at all for a local executor; a status patch would give every stage write access to
the pipeline. The path is derived from what the operator already knows (pipeline, run id, stage), so
nothing has to be passed back; the document is written once, after the stage's work is committed,
so its presence means the stage finished. A rerun of the same run id overwrites it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import ClientError

from clinops_common.contracts.stages import StageName, StageResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

R = TypeVar("R", bound=StageResult)
PREFIX = "runs"


def result_key(pipeline: str, run_id: str, stage: StageName | str) -> str:
    """The result's object key in the lake bucket."""
    for part, what in ((pipeline, "pipeline"), (run_id, "run id")):
        if not part or "/" in part:
            raise ValueError(f"{what} {part!r} cannot name a lake path")
    return f"{PREFIX}/{pipeline}/{run_id}/{StageName(stage).value}.json"


def write_result(s3: S3Client, bucket: str, result: StageResult) -> str:
    """Write ``result`` (after the stage's work is committed); returns its key."""
    k = result_key(result.pipeline, result.run_id, result.stage)
    s3.put_object(Bucket=bucket, Key=k, Body=result.model_dump_json().encode(), ContentType="application/json")
    return k


def read_result(s3: S3Client, bucket: str, model: type[R], pipeline: str, run_id: str) -> R | None:
    """The stage's result, or None when it has not written one."""
    try:
        body = s3.get_object(Bucket=bucket, Key=result_key(pipeline, run_id, model.stage))["Body"].read()
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return model.model_validate_json(body)
