"""The batch pipeline's stroke stage runs for real as the operator renders it: ``manifests/stroke-risk.yaml``
pointed at the harness's FerretDB, PostgreSQL and MinIO (``sources.batch`` and the lake), the
generator's tables written to those systems, the command line and environment from
``clinops_operator.core.stages.task`` (Secret references resolved from the harness, as a local
executor resolves them). The stage must exit 0, leave a result the operator's reader reads back,
build every view with the row counts the generator's tables imply, and its snapshot id must reach
the trainer's rendered arguments. This is the code path of ``make demo-stroke``."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pymongo
import pytest
import yaml

from clinops_common.contracts import StrokeArgs, TrainArgs, parse
from clinops_common.settings import Connections
from clinops_devstack.stroke_demo import MANIFEST, point_at_stack, report, run_stroke_stage, secret_values
from clinops_operator.core.stages import Stage, task

PATIENTS = 300
RUN_ID = "m5a1b2c3d"


@pytest.fixture(scope="module")
def sources_up(stack: Any, s3: Connections, database_url: str, mongodb_url: str) -> Any:
    return stack.settings


def test_stroke_stage_runs_its_rendered_command_on_the_harness_sources(sources_up: Any) -> None:
    settings = sources_up
    suffix = f"_{uuid.uuid4().hex[:6]}"
    p = point_at_stack(
        yaml.safe_load(MANIFEST.read_text()), settings, name=f"stroke-{suffix.strip('_')}", suffix=suffix
    )
    t = task(p, Stage.STROKE, RUN_ID)
    args = t.arguments
    assert isinstance(args, StrokeArgs)
    uris = {s.table: s.uri for s in args.sources}
    assert uris["demographics"] == f"mongodb://{settings.host}:{settings.ports.ferretdb}/cohort/demographics{suffix}"
    pg = f"postgresql://{settings.host}:{settings.ports.postgres}"
    assert uris["clinical_measurements"] == f"{pg}/cohort?table=clinical_measurements{suffix}"
    assert uris["hospital_admin"] == f"{pg}/hospital?table=administration{suffix}"
    assert uris["lifestyle"] == f"s3a://{settings.lake_bucket}/batch/lifestyle{suffix}/"
    assert parse(StrokeArgs, list(t.args)) == args  # the command line carries the sources
    assert {s.env for s in t.secret_env} >= {
        "CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL",
        "CLINOPS_SOURCE_HOSPITAL_ADMIN_URL",
    }

    lines: list[str] = []
    out = run_stroke_stage(
        p,
        settings,
        patients=PATIENTS,
        seed=4,
        run_id=RUN_ID,
        secrets=secret_values(settings, suffix),
        say=lines.append,
        timeout_s=float(os.environ.get("CLINOPS_TEST_STAGE_TIMEOUT_S", "900")),  # longer on a loaded machine
    )
    report(out, lines.append)
    text = "\n".join(lines)
    assert out.mismatches == {}, text
    r = out.result
    assert (r.pipeline, r.run_id, r.patients) == (p.name, RUN_ID, PATIENTS)
    assert set(r.sources) == set(uris)
    assert all(c["quarantined"] == 0 for c in r.sources.values()), r.sources
    assert r.training_rows == out.views["stroke_label"] > PATIENTS
    assert out.views["stroke_risk"] > PATIENTS  # a row per visit and one per patient at the as-of date
    # the tables really are in the harness's FerretDB (the stage read them there, not from the lake's batch/)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(settings.mongodb_url())
    try:
        assert client["cohort"][f"demographics{suffix}"].count_documents({}) == PATIENTS
    finally:
        client.close()
    train = task(p, Stage.TRAINER, RUN_ID, {Stage.STROKE: r})
    assert isinstance(train.arguments, TrainArgs)
    assert (train.arguments.snapshot_id, train.arguments.label) == (r.snapshot_id, "stroke_within_1y")
