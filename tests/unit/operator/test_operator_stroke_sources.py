"""The stroke stage of a batch pipeline: its sources rendered from spec.sources.batch, credentials
only from Secrets, and no Kafka needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from clinops_common.contracts import StrokeArgs, parse
from clinops_operator.core import stages
from clinops_operator.core.spec import Pipeline
from clinops_operator.errors import InvalidSpecError

REPO = Path(__file__).resolve().parents[3]


def body() -> dict[str, Any]:
    b: dict[str, Any] = yaml.safe_load((REPO / "manifests" / "stroke-risk.yaml").read_text())
    b["metadata"] |= {"uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}
    return b


def test_the_stroke_stage_gets_every_batch_source_and_their_secrets() -> None:
    p = Pipeline.from_body(body())
    assert p.spec.sources.kafka is None
    task = stages.task(p, stages.Stage.STROKE, "m1")
    args = task.arguments
    assert isinstance(args, StrokeArgs)
    by_table = {s.table: s for s in args.sources}
    assert set(by_table) == {"demographics", "clinical_measurements", "hospital_admin", "lifestyle", "conditions"}
    admin = by_table["hospital_admin"]
    assert (admin.format, admin.timestamp_column, admin.credentials_env) == (
        "postgres",
        "admission_date",
        "CLINOPS_SOURCE_HOSPITAL_ADMIN_URL",
    )
    assert by_table["demographics"].credentials_env is None
    secrets = {(s.env, s.secret, s.key) for s in task.secret_env if s.env.startswith("CLINOPS_SOURCE_")}
    assert secrets == {
        ("CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL", "clinops-cohort-db", "url"),
        ("CLINOPS_SOURCE_HOSPITAL_ADMIN_URL", "clinops-hospital-db", "url"),
    }
    assert dict(task.env)["CLINOPS_KAFKA_BOOTSTRAP_SERVERS"] == ""
    # the command line the stage parses gives the same sources back
    assert parse(StrokeArgs, list(task.args)) == args
    trainer = stages.task(p, stages.Stage.TRAINER, "m1")
    assert not [s for s in trainer.secret_env if s.env.startswith("CLINOPS_SOURCE_")]


def test_a_source_the_stroke_job_cannot_read_is_an_invalid_spec() -> None:
    b = body()
    b["spec"]["sources"]["batch"][3]["format"] = "csv"
    with pytest.raises(InvalidSpecError, match="lifestyle: format 'csv'"):
        stages.task(Pipeline.from_body(b), stages.Stage.STROKE, "m1")


def test_the_stroke_pipelines_trainer_trains_on_the_visit_label() -> None:
    from clinops_common.contracts import StrokeResult, TrainArgs

    p = Pipeline.from_body(body())
    made = StrokeResult(
        pipeline=p.name, run_id="m1", snapshot_id="20260301T000000Z-abcdef12", patients=1, high_risk=0, checks=1
    )
    args = stages.task(p, stages.Stage.TRAINER, "m1", {stages.Stage.STROKE: made}).arguments
    assert isinstance(args, TrainArgs)
    assert (args.feature_service, args.label, args.snapshot_id) == (
        "stroke_risk_v1",
        "stroke_within_1y",
        "20260301T000000Z-abcdef12",
    )
    assert parse(TrainArgs, list(stages.task(p, stages.Stage.TRAINER, "m1").args)).label == "stroke_within_1y"
