"""Each stage reads the lake with its own credentials when its FeaturePipeline names a Secret for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clinops_operator.core import render, stages
from clinops_operator.core.spec import Pipeline

REPO = Path(__file__).resolve().parents[3]


def _pipeline(stage_refs: dict[str, Any]) -> Pipeline:
    body: dict[str, Any] = yaml.safe_load((REPO / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] |= {"uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "generation": 1}
    body["spec"]["lake"]["stageCredentialsSecretRefs"] = stage_refs
    return Pipeline.from_body(body)


def _lake_secrets(obj: dict[str, Any]) -> set[tuple[str, str, str]]:
    if obj["kind"] == "SparkApplication":
        envs = [obj["spec"]["driver"]["env"], obj["spec"]["executor"]["env"]]
    else:
        envs = [c["env"] for c in obj["spec"]["template"]["spec"]["containers"]]
    return {
        (e["name"], e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for env in envs
        for e in env
        if e["name"] in ("CLINOPS_S3_ACCESS_KEY", "CLINOPS_S3_SECRET_KEY")
    }


def test_a_stage_named_in_stage_credentials_reads_only_its_own_secret() -> None:
    p = _pipeline(
        {
            "processor": {"name": "clinops-lake-processor"},
            "featurizer": {"name": "clinops-lake-featurizer", "accessKeyIdKey": "id", "secretAccessKeyKey": "key"},
            "trainer": {"name": "clinops-lake-trainer"},
        }
    )
    seen = {}
    for stage in stages.run_stages(p):
        seen[stage] = _lake_secrets(render.render(stages.task(p, stage, "m1"), p))
    assert seen[stages.Stage.PROCESSOR] == {
        ("CLINOPS_S3_ACCESS_KEY", "clinops-lake-processor", "accessKeyId"),
        ("CLINOPS_S3_SECRET_KEY", "clinops-lake-processor", "secretAccessKey"),
    }
    assert seen[stages.Stage.FEATURIZER] == {
        ("CLINOPS_S3_ACCESS_KEY", "clinops-lake-featurizer", "id"),
        ("CLINOPS_S3_SECRET_KEY", "clinops-lake-featurizer", "key"),
    }
    assert {name for _, name, _ in seen[stages.Stage.TRAINER]} == {"clinops-lake-trainer"}
    # a stage the pipeline does not name keeps the pipeline's credentialsSecretRef
    assert {name for _, name, _ in seen[stages.Stage.MATERIALIZER]} == {"clinops-lake"}


def test_without_stage_credentials_every_stage_uses_the_pipelines_secret() -> None:
    p = _pipeline({})
    for stage in stages.run_stages(p):
        assert {n for _, n, _ in _lake_secrets(render.render(stages.task(p, stage, "m1"), p))} == {"clinops-lake"}


def test_the_crd_documents_a_secret_per_stage() -> None:
    crd = yaml.safe_load((REPO / "charts" / "clinops" / "crds" / "featurepipelines.clinops.io.yaml").read_text())
    lake = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["lake"]
    refs = lake["properties"]["stageCredentialsSecretRefs"]
    # (no additionalProperties: a structural schema refuses it beside properties; unknown names are pruned)
    assert "additionalProperties" not in refs
    assert set(refs["properties"]) == {s.value for s in stages.Stage}
