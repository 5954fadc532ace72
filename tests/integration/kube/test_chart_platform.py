"""The chart installs the whole platform: scorer Deployments from values, the monitor, their Services,
probes, PodDisruptionBudgets, NetworkPolicies; credentials only from Secrets; images as the CRD says.

Rendered objects are checked for what they promise (the kubeconform strict run over every values
file is in test_chart.py); then the chart is installed into the local control plane with the
scorer and monitor enabled and the API server's own objects are read back.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from clinops_devstack import kubeconform, schemas, toolchain
from clinops_devstack.settings import REPO_ROOT, StackSettings
from clinops_operator.core.spec import Images

CHART = REPO_ROOT / "charts" / "clinops"
RELEASE, NAMESPACE = "platform", "clinops-platform"
TWO_SCORERS = {
    "scorers": [
        {"name": "adverse-event", "modelName": "adverse-event", "replicas": 2},
        {
            "name": "stroke",
            "modelName": "stroke-risk",
            "modelAlias": "champion",
            "replicas": 1,
            "featurePolicy": "degrade",
        },
    ]
}


def _helm(*args: str, kubeconfig: Path | None = None) -> str:
    helm = toolchain.require(toolchain.HELM, StackSettings().cache) / "bin" / "helm"
    argv = [str(helm), *args, *([f"--kubeconfig={kubeconfig}"] if kubeconfig else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _render(tmp_path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(values))
    out = _helm("template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", "1.34.4", "-f", str(f))
    return [d for d in yaml.safe_load_all(out) if d]


def _by(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def test_scorers_come_from_values_with_probes_services_pdbs_and_secret_credentials(tmp_path: Path) -> None:
    objs = _render(tmp_path, TWO_SCORERS)
    deployments, services, pdbs = _by(objs, "Deployment"), _by(objs, "Service"), _by(objs, "PodDisruptionBudget")
    assert set(deployments) == {f"{RELEASE}-operator", f"{RELEASE}-monitor", f"{RELEASE}-scorer-adverse-event",
                                f"{RELEASE}-scorer-stroke"}  # fmt: skip
    for name, model in (("adverse-event", "adverse-event"), ("stroke", "stroke-risk")):
        d = deployments[f"{RELEASE}-scorer-{name}"]
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        env = {e["name"]: e for e in c["env"]}
        assert env["CLINOPS_SCORER_MODEL_NAME"]["value"] == model
        assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["image"] == f"{Images().processor}"  # the platform image, as the CRD's defaults say
        assert c["args"][0] == "scorer"
        for secret in ("CLINOPS_REDIS_URL", "CLINOPS_DATABASE_URL", "CLINOPS_S3_ACCESS_KEY", "CLINOPS_S3_SECRET_KEY"):
            assert "value" not in env[secret]
            assert env[secret]["valueFrom"]["secretKeyRef"]["name"]
        assert env["CLINOPS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "clinops-db-scorer"
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert c["resources"]["requests"]["cpu"]
        selector = d["spec"]["selector"]["matchLabels"]
        assert services[f"{RELEASE}-scorer-{name}"]["spec"]["selector"] == selector
        assert pdbs[f"{RELEASE}-scorer-{name}"]["spec"]["selector"]["matchLabels"] == selector
    monitor = deployments[f"{RELEASE}-monitor"]["spec"]["template"]["spec"]["containers"][0]
    menv = {e["name"]: e for e in monitor["env"]}
    assert menv["CLINOPS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "clinops-db-monitor"
    assert monitor["args"] == ["monitor", "serve"]
    assert monitor["livenessProbe"]["httpGet"]["port"] == "metrics"
    # No credential is ever a plain value anywhere in the release.
    for d in deployments.values():
        for c in d["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                if any(w in e["name"] for w in ("KEY", "SECRET", "PASSWORD", "DATABASE_URL", "REDIS_URL")):
                    assert "valueFrom" in e, (d["metadata"]["name"], e)


def test_network_policies_open_the_scorer_port_only_and_limit_egress(tmp_path: Path) -> None:
    objs = _render(tmp_path, {})
    policies = _by(objs, "NetworkPolicy")
    scorer = policies[f"{RELEASE}-scorer"]["spec"]
    assert scorer["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in scorer["ingress"] for p in rule["ports"]] == [3000]
    egress_ports = sorted(p["port"] for rule in scorer["egress"] for p in rule["ports"])
    assert egress_ports == sorted([53, 53, 6379, 5432, 5000, 9000])  # DNS, Redis, PostgreSQL, MLflow, S3
    monitor = policies[f"{RELEASE}-monitor"]["spec"]
    assert sorted(p["port"] for rule in monitor["egress"] for p in rule["ports"]) == sorted(
        [53, 53, 6443, 5432, 9000, 5000]
    )
    operator = policies[f"{RELEASE}-operator"]["spec"]
    assert sorted(p["port"] for rule in operator["egress"] for p in rule["ports"]) == [53, 53, 6443, 9000]
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "stores"}}}]
    narrowed = _by(_render(tmp_path, {"networkPolicy": {"storesPeers": peers}}), "NetworkPolicy")
    assert narrowed[f"{RELEASE}-scorer"]["spec"]["egress"][1]["to"] == peers
    assert not _by(_render(tmp_path, {"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def test_values_schema_refuses_plain_mistakes(tmp_path: Path) -> None:
    for bad in (
        {"scorers": [{"name": "Bad_Name", "modelName": "m"}]},
        {"scorers": [{"name": "x"}]},
        {"database": {"scorer": {"secretName": "Not A Name", "key": "url"}}},
        {"scorer": {"port": 70000}},
        {"image": {"pullPolicy": "Sometimes", "repository": "r"}},
    ):
        f = tmp_path / "bad.yaml"
        f.write_text(yaml.safe_dump(bad))
        helm = toolchain.require(toolchain.HELM, StackSettings().cache) / "bin" / "helm"
        proc = subprocess.run(
            [str(helm), "template", RELEASE, str(CHART), "--kube-version", "1.34.4", "-f", str(f)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode != 0, bad
        assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr


def test_crd_image_defaults_are_the_charts_images() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    crd = yaml.safe_load((CHART / "crds" / "featurepipelines.clinops.io.yaml").read_text())
    images = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["images"]
    defaults = {k: v["default"] for k, v in images["properties"].items() if k != "pullPolicy"}
    platform = f"{values['image']['repository']}:{app_version}"
    trainer = f"{values['trainerImage']['repository']}:{app_version}"
    assert defaults == {"ingest": platform, "processor": platform, "featurizer": platform, "monitor": platform,
                        "trainer": trainer}  # fmt: skip
    assert Images().model_dump() | {"pull_policy": None} == {**defaults, "pull_policy": None}


def test_rendered_platform_passes_kubeconform_strict(tmp_path: Path) -> None:
    cache = StackSettings().cache
    crds = tmp_path / "crd-schemas"
    crds.mkdir()
    spark = toolchain.require(toolchain.SPARK_OPERATOR_CRDS, cache) / toolchain.SPARK_APPLICATION_CRD
    schemas.write_crd_schemas([spark, *sorted((CHART / "crds").glob("*.yaml"))], crds)
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(TWO_SCORERS))
    rendered = _helm("template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", "1.34.4", "-f", str(f))
    report = kubeconform.kubeconform(cache, crds, [], stdin=rendered)
    assert "Invalid: 0, Errors: 0, Skipped: 0" in report, report


@pytest.fixture(scope="module")
def installed(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    f = tmp_path_factory.mktemp("platform") / "values.yaml"
    f.write_text(yaml.safe_dump(TWO_SCORERS))
    args = ["install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace", "--wait", "--timeout", "180s"]
    _helm(*args, "-f", str(f), kubeconfig=cluster.kubeconfig)
    yield
    _helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", kubeconfig=cluster.kubeconfig)


def test_install_runs_scorers_and_monitor_pods_the_api_server_accepted(cluster: Any, installed: None) -> None:
    """What the control plane did with the release (containers start only where a kubelet runs: kwok
    binds and marks the pods, which proves the objects and the scheduling, not the images)."""
    for name, replicas in (("scorer-adverse-event", 2), ("scorer-stroke", 1), ("monitor", 1), ("operator", 1)):
        d = cluster.get("deployment", f"{RELEASE}-{name}", NAMESPACE)
        assert d is not None, name
        assert d["status"].get("replicas") == replicas, (name, d["status"])
        selector = ",".join(f"{k}={v}" for k, v in d["spec"]["selector"]["matchLabels"].items())
        pods = json.loads(cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json"))["items"]
        assert len(pods) == replicas, name
        assert all(p["spec"]["nodeName"] for p in pods), name
    pdb = cluster.get("poddisruptionbudget", f"{RELEASE}-scorer-adverse-event", NAMESPACE)
    assert pdb["status"]["expectedPods"] == 2
    assert pdb["status"]["disruptionsAllowed"] == 1
    assert cluster.get("networkpolicy", f"{RELEASE}-scorer", NAMESPACE) is not None
    svc = cluster.get("service", f"{RELEASE}-scorer-stroke", NAMESPACE)
    assert [p["port"] for p in svc["spec"]["ports"]] == [3000]
    monitor_sa = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-monitor"
    from clinops_devstack import cluster as kube

    def can(verb: str, resource: str, who: str) -> str:
        return kube.kubectl_run(
            cluster.settings, "auth", "can-i", verb, resource, f"--as={who}", "-n", "default"
        ).stdout.strip()

    assert can("patch", "featurepipelines.clinops.io", monitor_sa) == "yes"
    assert can("get", "secrets", monitor_sa) == "no"
    assert can("patch", "featurepipelines.clinops.io", f"system:serviceaccount:{NAMESPACE}:{RELEASE}-scorer") == "no"
