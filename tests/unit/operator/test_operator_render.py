"""Render functions: a pipeline and a run give the same children, with names, labels and owners."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from clinops_operator.core import render, stages
from clinops_operator.core.spec import Pipeline

REPO = Path(__file__).resolve().parents[3]


def example(name: str = "adverse-event") -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "manifests" / f"{name}.yaml").read_text())
    body["metadata"] |= {"uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "generation": 3}
    return body


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline.from_body(example())


def test_child_names_are_deterministic_and_fit_a_label_value(pipeline: Pipeline) -> None:
    run_id = stages.manual_run_id("first-run")
    assert run_id == stages.manual_run_id("first-run")
    assert run_id != stages.manual_run_id("second-run")
    names = [stages.task(pipeline, s, run_id).name for s in stages.run_stages(pipeline)]
    assert names == [f"adverse-event-{short}-{run_id}" for short in ("proc", "feat", "mat", "train")]
    longest = stages.child_name(
        "x" * 40, stages.Stage.FEATURIZER, stages.scheduled_run_id(datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    )
    assert len(longest) <= 63


def test_spark_stages_render_owned_sparkapplications(pipeline: Pipeline) -> None:
    t = stages.task(pipeline, stages.Stage.PROCESSOR, "m1234abcd")
    obj = render.render(t, pipeline)
    assert obj["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    assert obj["kind"] == "SparkApplication"
    owner = obj["metadata"]["ownerReferences"][0]
    assert owner == {
        "apiVersion": "clinops.io/v1alpha1",
        "kind": "FeaturePipeline",
        "name": "adverse-event",
        "uid": pipeline.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    spec = obj["spec"]
    assert {"type", "sparkVersion", "mainApplicationFile", "driver", "executor"} <= spec.keys()
    assert spec["arguments"][:5] == ["process", "--pipeline", "adverse-event", "--run-id", "m1234abcd"]
    env = {e["name"]: e for e in spec["driver"]["env"]}
    assert env["CLINOPS_LAKE_BUCKET"]["value"] == "lake"
    assert env["CLINOPS_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "clinops-lake",
        "key": "secretAccessKey",
    }


def test_trainer_renders_a_hardened_job_with_the_training_settings(pipeline: Pipeline) -> None:
    t = stages.task(pipeline, stages.Stage.TRAINER, "m1234abcd")
    obj = render.render(t, pipeline)
    assert obj["kind"] == "Job"
    pod = obj["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["restartPolicy"] == "Never"
    args = container["args"]
    assert args[args.index("--split") + 1] == '{"test":0.15,"train":0.7,"validation":0.15}'
    assert args[args.index("--model-family") + 1] == "pytorch-mlp"
    assert obj["spec"]["template"]["metadata"]["labels"]["clinops.io/stage"] == "trainer"


def test_standard_labels_win_over_the_pipeline_labels_which_are_propagated() -> None:
    body = example()
    body["metadata"]["labels"] = {"team": "icu", "app.kubernetes.io/component": "spoofed"}
    p = Pipeline.from_body(body)
    labels = stages.task(p, stages.Stage.FEATURIZER, "m1").labels
    assert labels["team"] == "icu"
    assert labels["app.kubernetes.io/component"] == "featurizer"
    assert labels["app.kubernetes.io/managed-by"] == "clinops-operator"
    assert labels["clinops.io/run-id"] == "m1"


def test_rendering_is_pure(pipeline: Pipeline) -> None:
    before = copy.deepcopy(pipeline.model_dump())
    first = [render.render(stages.task(pipeline, s, "m1"), pipeline) for s in stages.Stage]
    second = [render.render(stages.task(pipeline, s, "m1"), pipeline) for s in stages.Stage]
    assert first == second
    assert pipeline.model_dump() == before


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, "Running"),
        ({"applicationState": {"state": "SUBMITTED"}}, "Running"),
        ({"applicationState": {"state": "RUNNING"}}, "Running"),
        ({"applicationState": {"state": "COMPLETED"}}, "Succeeded"),
        ({"applicationState": {"state": "FAILED", "errorMessage": "driver OOM"}}, "Failed"),
        ({"applicationState": {"state": "SUBMISSION_FAILED"}}, "Failed"),
    ],
)
def test_spark_application_states(status: dict[str, Any], expected: str) -> None:
    result = render.observe({"kind": "SparkApplication", "status": status})
    assert result.state == expected
    if status.get("applicationState", {}).get("errorMessage"):
        assert result.message == "driver OOM"


def test_job_states() -> None:
    assert render.observe({"kind": "Job", "status": {}}).state == "Running"
    done = {"conditions": [{"type": "Complete", "status": "True"}]}
    assert render.observe({"kind": "Job", "status": done}).state == "Succeeded"
    failed = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "m"}]}
    result = render.observe({"kind": "Job", "status": failed})
    assert (result.state, result.reason, result.message) == ("Failed", "BackoffLimitExceeded", "m")
