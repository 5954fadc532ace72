"""The local spark-operator's wiring (devstack spark_operator.py) and kwok's stand-in leaving the real
node's SparkApplications to it."""

from __future__ import annotations

from pathlib import Path

import yaml

from clinops_devstack import spark_operator, toolchain
from clinops_devstack.cluster import STAGES
from clinops_devstack.scratch import free_ports
from clinops_devstack.settings import StackSettings


def _settings(tmp_path: Path) -> StackSettings:
    return StackSettings(home=tmp_path, ports=free_ports())


def test_webhooks_call_the_local_webhook_only_for_the_given_namespaces_and_spark_pods(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    mutating, validating = spark_operator.webhook_configurations(s, ["team-a"])
    assert mutating["kind"] == "MutatingWebhookConfiguration"
    assert validating["kind"] == "ValidatingWebhookConfiguration"
    hooks = {h["name"]: h for h in mutating["webhooks"] + validating["webhooks"]}
    assert set(hooks) == {
        "mutate--v1-pod.sparkoperator.k8s.io",
        "mutate-sparkoperator-k8s-io-v1beta2-sparkapplication.sparkoperator.k8s.io",
        "validate-sparkoperator-k8s-io-v1beta2-sparkapplication.sparkoperator.k8s.io",
    }
    for h in hooks.values():
        url = h["clientConfig"]["url"]
        # the webhook's own certificate is valid for localhost; its CA is written in by the webhook itself
        assert url.startswith(f"https://localhost:{s.ports.spark_operator_webhook}/")
        assert "caBundle" not in h["clientConfig"]
        assert h["namespaceSelector"]["matchExpressions"][0]["values"] == ["team-a"]
        assert h["failurePolicy"] == "Fail"
    pod_hook = hooks["mutate--v1-pod.sparkoperator.k8s.io"]
    assert pod_hook["objectSelector"] == {"matchLabels": {spark_operator.LAUNCHED_BY: "true"}}
    assert pod_hook["rules"][0]["resources"] == ["pods"]


def test_the_controller_submits_with_pysparks_spark_submit_to_the_loopback_api_server(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    controller = spark_operator.controller(s, ["team-a"])
    assert (Path(controller.env["SPARK_HOME"]) / "bin" / "spark-submit").exists()
    assert controller.env["KUBERNETES_SERVICE_HOST"] == s.host
    assert controller.env["KUBERNETES_SERVICE_PORT"] == str(s.ports.kube_apiserver)
    assert "--namespaces=team-a" in controller.argv
    assert controller.argv[1:3] == ["controller", "start"]
    assert spark_operator.webhook(s, ["team-a"]).argv[1:3] == ["webhook", "start"]


def test_it_needs_namespaces(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ValueError, match="namespaces"):
        spark_operator.components(_settings(tmp_path), [])


def test_the_binary_is_the_version_whose_crd_the_cluster_installs() -> None:
    assert toolchain.SPARK_OPERATOR.version == toolchain.SPARK_OPERATOR_CRDS.version
    assert toolchain.SPARK_OPERATOR in toolchain.TOOLS


def test_go_mod_replaces_are_read_as_module_versions() -> None:
    gomod = "module x\n\nreplace (\n\tk8s.io/api => k8s.io/api v0.32.5\n\tfoo/bar => ./local\n)\n"
    gomod += "replace example.com/a => example.com/b v1.2.3\n"
    assert toolchain.go_mod_replaces(gomod) == {
        "k8s.io/api": "k8s.io/api@v0.32.5",
        "example.com/a": "example.com/b@v1.2.3",
    }


def test_kwoks_spark_stand_in_leaves_the_real_operators_applications_alone() -> None:
    docs = [
        d
        for d in yaml.safe_load_all(STAGES.read_text())
        if d and d["spec"]["resourceRef"]["kind"] == "SparkApplication"
    ]
    assert docs
    for stage in docs:
        exprs = stage["spec"]["selector"]["matchExpressions"]
        key = f'.metadata.labels["{spark_operator.RUNNER_LABEL}"]'
        assert {"key": key, "operator": "NotIn", "values": [spark_operator.RUNNER]} in exprs, stage["metadata"]
