"""The clinops image (`make image`) runs a stage for real on the real node: non-root, read-only root fs,
host network to the harness's Kafka and MinIO, and the stage's result lands in the lake."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from real_node_helpers import pod_on_real_node, wait_terminated

from clinops_common.contracts.results import read_result
from clinops_common.contracts.stages import IngestResult
from clinops_common.settings import Connections
from clinops_common.storage import s3_client


def _stage_pod(name: str, image: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    return pod_on_real_node(
        name,
        [
            {
                "name": "stage",
                "image": image,
                "imagePullPolicy": "Never",
                "args": args,
                "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "securityContext": {
                    "runAsNonRoot": True,
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            }
        ],
        volumes=[{"name": "tmp", "emptyDir": {}}],
    )


def test_the_image_runs_the_ingest_stage_on_the_real_node(
    cluster: Any, clinops_image: str, kafka: Connections, namespace: str
) -> None:
    prefix = f"img-{uuid.uuid4().hex[:6]}-"
    started = datetime.now(UTC)
    run_id = f"r-{uuid.uuid4().hex[:8]}"
    args = ["ingest", "--pipeline", "image-test", "--run-id", run_id, "--topic-prefix", prefix, "--idle-exit-s", "5"]
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=json.dumps(_stage_pod("ingest", clinops_image, args, kafka.as_env()))
    )
    done = wait_terminated(cluster.kubectl, "ingest", namespace, timeout_s=240)
    state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 0, state.get("message")
    result = read_result(s3_client(kafka), kafka.lake_bucket, IngestResult, "image-test", run_id)
    assert result is not None, "the stage in the pod wrote no result to the lake"
    assert result.finished_at >= started
    assert result.messages == 0  # its own fresh topics: nothing to drain


def test_the_image_runs_as_its_non_root_user_with_a_read_only_root(
    cluster: Any, clinops_image: str, namespace: str
) -> None:
    probe = (
        "import os, pathlib, clinops_operator, clinops_scorer;"
        "ro = False\n"
        "try:\n    pathlib.Path('/opt/clinops/x').write_text('x')\nexcept OSError:\n    ro = True\n"
        "pathlib.Path('/dev/termination-log').write_text(f'{os.getuid()} {ro}')"
    )
    pod = _stage_pod("probe", clinops_image, ["python", "-c", probe], {})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(pod))
    done = wait_terminated(cluster.kubectl, "probe", namespace, timeout_s=120)
    state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 0, state.get("message")
    assert state["message"].strip() == "10001 True"
