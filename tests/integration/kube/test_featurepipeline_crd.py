"""The FeaturePipeline CRD on a real API server: valid examples pass, invalid ones are rejected by field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from kube_helpers import example_body

from clinops_devstack import cluster as kube

Patch = dict[str, Any]


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    node = body
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value


_DELETE = object()

INVALID: list[tuple[str, str, Any, str]] = [
    # (case, path to change, new value, text the API server's message must contain)
    ("lake is required", "spec.lake", _DELETE, "spec.lake: Required value"),
    ("endpoint must be a URL", "spec.lake.endpoint", "minio:9000", "spec.lake.endpoint"),
    ("bucket name pattern", "spec.lake.bucket", "Lake_Bucket", "spec.lake.bucket"),
    ("model family enum", "spec.training.modelFamily", "random-forest", "spec.training.modelFamily"),
    ("lookback minimum", "spec.training.lookbackDays", 0, "spec.training.lookbackDays"),
    ("split must sum to 1", "spec.training.split", {"train": 0.8, "validation": 0.15, "test": 0.15}, "sum to 1"),
    ("cron needs five fields", "spec.schedules.processing", "hourly", "spec.schedules.processing"),
    ("at least one topic", "spec.sources.kafka.topics", [], "spec.sources.kafka.topics"),
    ("kafka unless batch", "spec.sources.kafka", _DELETE, "sources.kafka is required unless features.service is"),
    ("auroc floor at most 1", "spec.monitoring.aurocFloor", 1.5, "spec.monitoring.aurocFloor"),
    ("window enum", "spec.features.windows", ["1h", "2h"], "spec.features.windows"),
    ("feature service enum", "spec.features.service", "everything_v9", "spec.features.service"),
    ("pull policy enum", "spec.images.pullPolicy", "Sometimes", "spec.images.pullPolicy"),
    ("secret name is a DNS name", "spec.stores.redis.secretRef.name", "Not A Name", "spec.stores.redis.secretRef.name"),
    ("maxDepth only for trees", "spec.training.hyperparameters.maxDepth", 4, "maxDepth applies to"),
    ("unknown field", "spec.lake.bukcet", "lake", 'unknown field "spec.lake.bukcet"'),
    ("name short enough for children", "metadata.name", "p" * 41, "metadata.name must be at most 40"),
]


@pytest.mark.parametrize(("case", "path", "value", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_pipeline_is_rejected_naming_the_field(
    cluster: Any, namespace: str, case: str, path: str, value: Any, expected: str
) -> None:
    body = copy.deepcopy(example_body(namespace))
    _set(body, path, value)
    proc = kube.kubectl_run(cluster.settings, "create", "--validate=strict", "-f", "-", stdin=yaml.safe_dump(body))
    assert proc.returncode != 0, f"{case}: accepted"
    assert expected in proc.stderr, f"{case}: {proc.stderr}"


def test_examples_are_accepted_with_defaults_applied(cluster: Any, namespace: str) -> None:
    for name in ("adverse-event", "stroke-risk"):
        body = example_body(namespace, name=name)
        cluster.kubectl("create", "--validate=strict", "-f", "-", stdin=yaml.safe_dump(body))
    stored = cluster.get("featurepipeline", "stroke-risk", namespace)
    assert stored["spec"]["training"]["split"] == {"train": 0.7, "validation": 0.15, "test": 0.15}
    assert stored["spec"]["images"]["pullPolicy"] == "IfNotPresent"
    assert cluster.names("fp", namespace) == ["adverse-event", "stroke-risk"]


def test_explain_documents_the_fields(cluster: Any) -> None:
    text = cluster.kubectl("explain", "featurepipeline.spec.training")
    for field in ("modelFamily", "promotionGate", "split", "lookbackDays", "hyperparameters"):
        assert field in text
    assert "Time-ordered split" in cluster.kubectl("explain", "featurepipeline.spec.training.split")


def test_printer_columns(cluster: Any, namespace: str) -> None:
    cluster.kubectl("create", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))
    header = cluster.kubectl("get", "fp", "-n", namespace).splitlines()[0].split()
    assert header == ["NAME", "PHASE", "CHAMPION", "AUROC", "LAST", "RUN", "AGE"]
