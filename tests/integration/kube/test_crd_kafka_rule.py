"""The CRD's CEL rule on a real API server: ``spec.sources.kafka`` may be left out only by a batch
pipeline (``features.service: stroke_risk_v1``); a streaming pipeline without it is refused with the
rule's message, whether its service is written out or defaulted."""

from __future__ import annotations

from typing import Any

import yaml
from kube_helpers import example_body

from clinops_devstack import cluster as kube

MESSAGE = "sources.kafka is required unless features.service is stroke_risk_v1"


def _create(cluster: Any, body: dict[str, Any]) -> Any:
    return kube.kubectl_run(cluster.settings, "create", "--validate=strict", "-f", "-", stdin=yaml.safe_dump(body))


def test_a_batch_pipeline_without_kafka_is_accepted(cluster: Any, namespace: str) -> None:
    body = example_body(namespace, name="stroke-risk")
    assert "kafka" not in body["spec"]["sources"]
    proc = _create(cluster, body)
    assert proc.returncode == 0, proc.stderr
    stored = cluster.get("featurepipeline", "stroke-risk", namespace)
    assert "kafka" not in stored["spec"]["sources"]
    assert stored["spec"]["features"]["service"] == "stroke_risk_v1"
    assert len(stored["spec"]["sources"]["batch"]) == 5


def test_a_streaming_pipeline_without_kafka_is_refused(cluster: Any, namespace: str) -> None:
    body = example_body(namespace, name="adverse-event")
    del body["spec"]["sources"]["kafka"]
    assert body["spec"]["features"]["service"] == "adverse_event_v1"
    proc = _create(cluster, body)
    assert proc.returncode != 0
    assert MESSAGE in proc.stderr, proc.stderr
    assert cluster.get("featurepipeline", "adverse-event", namespace) is None


def test_a_pipeline_whose_service_is_defaulted_needs_kafka(cluster: Any, namespace: str) -> None:
    body = example_body(namespace, name="stroke-risk")
    body["metadata"]["name"] = "defaulted"
    del body["spec"]["features"]  # the default service is the streaming one
    proc = _create(cluster, body)
    assert proc.returncode != 0
    assert MESSAGE in proc.stderr, proc.stderr
