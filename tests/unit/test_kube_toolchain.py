"""Pure pieces of the local control plane: Kubernetes build pins, certificates, offline schemas."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from clinops_devstack import cluster, pki, schemas, toolchain
from clinops_devstack.settings import REPO_ROOT

GOMOD = """module k8s.io/kubernetes

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kube-openapi => k8s.io/kube-openapi v0.0.0-2025
)
"""


def test_staging_modules_are_replaced_by_their_published_versions() -> None:
    assert toolchain.kubernetes_staging_replaces(GOMOD, "v1.34.4") == {
        "k8s.io/api": "v0.34.4",
        "k8s.io/client-go": "v0.34.4",
    }


def test_version_stamps_reach_both_version_packages() -> None:
    flags = toolchain.kubernetes_ldflags("v1.34.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in flags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=34" in flags


def test_pki_gives_each_identity_its_user_and_groups(tmp_path: Path) -> None:
    pki.ensure_pki(tmp_path, "127.0.0.1")
    admin = x509.load_pem_x509_certificate((tmp_path / "admin.crt").read_bytes())
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "clinops-admin"
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    server = x509.load_pem_x509_certificate((tmp_path / "apiserver.crt").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    assert admin.issuer == ca.subject
    before = (tmp_path / "ca.crt").read_bytes()
    pki.ensure_pki(tmp_path, "127.0.0.1")  # idempotent: the cluster's identities survive restarts
    assert (tmp_path / "ca.crt").read_bytes() == before


def test_kwok_stages_cover_nodes_pods_and_spark_applications() -> None:
    stages = {d["metadata"]["name"]: d for d in yaml.safe_load_all(cluster.STAGES.read_text())}
    assert {"node-initialize", "pod-ready", "pod-complete", "pod-fail", "pod-delete"} <= stages.keys()
    spark = [d for d in stages.values() if d["spec"]["resourceRef"]["kind"] == "SparkApplication"]
    states = {
        re.search(r"state: (\w+)", d["spec"]["next"]["statusTemplate"]).group(1)  # type: ignore[union-attr]
        for d in spark
    }
    assert states == {"SUBMITTED", "RUNNING", "COMPLETED", "FAILED"}


def test_crd_schema_is_closed_and_keeps_bounds(tmp_path: Path) -> None:
    crd = REPO_ROOT / "charts" / "clinops" / "crds" / "featurepipelines.clinops.io.yaml"
    [path] = schemas.write_crd_schemas([crd], tmp_path)
    assert path == tmp_path / "clinops.io" / "featurepipeline_v1alpha1.json"
    schema = yaml.safe_load(path.read_text())
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["lake"]["additionalProperties"] is False
    assert "x-kubernetes-validations" not in spec["properties"]["training"]["properties"]["split"]
    lr = spec["properties"]["training"]["properties"]["hyperparameters"]["properties"]["learningRate"]
    assert (lr["minimum"], lr["exclusiveMinimum"]) == (0, True)


def test_self_contained_schema_carries_every_definition_it_reaches() -> None:
    definitions = {
        "A": {"properties": {"b": {"$ref": "#/$defs/B"}}},
        "B": {"items": {"$ref": "#/$defs/A"}},  # recursive, as JSONSchemaProps is
        "C": {"type": "string"},
    }
    schema = {"properties": {"a": {"$ref": "/api/_definitions.json#/$defs/A"}}}
    out = schemas.self_contained(schema, definitions)
    assert out["properties"]["a"]["$ref"] == "#/$defs/A"
    assert sorted(out["$defs"]) == ["A", "B"]


def test_every_crd_field_has_a_description() -> None:
    crd = yaml.safe_load((REPO_ROOT / "charts" / "clinops" / "crds" / "featurepipelines.clinops.io.yaml").read_text())
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    missing: list[str] = []

    def walk(node: dict, path: str) -> None:  # type: ignore[type-arg]
        if path != "metadata" and "description" not in node:
            missing.append(path)
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{name}" if path else name)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}{{}}")

    walk(root, "")
    assert missing in ([], ["metadata"]), missing


def test_served_group_versions_lists_every_served_version_and_skips_unserved() -> None:
    crds = {
        "items": [
            {"spec": {"group": "sparkoperator.k8s.io", "versions": [{"name": "v1beta2", "served": True}]}},
            {
                "spec": {
                    "group": "clinops.io",
                    "versions": [{"name": "v1alpha1", "served": True}, {"name": "v0", "served": False}],
                }
            },
        ]
    }
    assert cluster.served_group_versions(crds) == {
        "apis/sparkoperator.k8s.io/v1beta2",
        "apis/clinops.io/v1alpha1",
    }
