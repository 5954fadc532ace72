"""The chart's PrometheusRule against the real prometheus-operator CRD's schema (monitoring.coreos.com/v1,
from the pinned prometheus-operator Go module), offline through kubeconform in strict mode.

``promtool check rules`` (tests/integration/monitor/test_dashboard.py) checks the rules' PromQL; this
checks the object the chart renders around them, as an API server with the CRD installed would.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from clinops_devstack import kubeconform, schemas, toolchain
from clinops_devstack.settings import REPO_ROOT, StackSettings

CHART = REPO_ROOT / "charts" / "clinops"


@pytest.fixture(scope="module")
def cache() -> Path:
    return StackSettings().cache


@pytest.fixture(scope="module")
def rule_schema(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    crd = toolchain.require(toolchain.PROMETHEUS_OPERATOR_CRDS, cache) / toolchain.PROMETHEUS_RULE_CRD
    out = tmp_path_factory.mktemp("prometheus-operator-schemas")
    written = schemas.write_crd_schemas([crd], out)
    assert [p.relative_to(out).as_posix() for p in written] == ["monitoring.coreos.com/prometheusrule_v1.json"]
    return out


@pytest.fixture(scope="module")
def rendered(cache: Path) -> str:
    helm = toolchain.require(toolchain.HELM, cache) / "bin" / "helm"
    argv = [str(helm), "template", "clinops", str(CHART), "--namespace", "clinops-system", "--kube-version", "1.34.4"]
    argv += ["--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=kube-prometheus"]
    argv += ["--show-only", "templates/prometheusrule.yaml"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_rendered_prometheusrule_passes_the_operator_crd_schema(cache: Path, rule_schema: Path, rendered: str) -> None:
    doc = yaml.safe_load(rendered)
    assert (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert doc["metadata"]["labels"]["release"] == "kube-prometheus"
    alerts = [r["alert"] for g in doc["spec"]["groups"] for r in g["rules"]]
    assert "ClinopsAurocBelowFloor" in alerts
    report = kubeconform.kubeconform(cache, rule_schema, [], stdin=rendered)
    assert "Valid: 1, Invalid: 0, Errors: 0, Skipped: 0" in report, report


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rule: rule.update({"expresion": rule.pop("expr")}), "additional properties 'expresion'"),
        (lambda rule: rule.update({"for": "5 minutes"}), "does not match pattern"),
        (lambda rule: rule.update({"labels": {"severity": 3}}), "got number, want string"),
    ],
    ids=["misspelt-field", "bad-duration", "non-string-label"],
)
def test_the_schema_rejects_a_broken_rule(
    cache: Path, rule_schema: Path, rendered: str, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    """The schema has teeth: each of these would be refused by an API server with the CRD."""
    doc = yaml.safe_load(rendered)
    change(doc["spec"]["groups"][0]["rules"][0])
    with pytest.raises(toolchain.ToolError, match=message):
        kubeconform.kubeconform(cache, rule_schema, [], stdin=yaml.safe_dump(doc))
