"""``make demo-stroke`` on the default ports: the manifest's sources are the local stack's own (the
pointing changes nothing but the lake's in-cluster endpoint), a harness stack's ports and a suffix
reach every source, and the expected view rows follow the generator's tables."""

from __future__ import annotations

from datetime import date

import yaml

from clinops_common.contracts import StrokeArgs
from clinops_devstack.settings import Ports, StackSettings
from clinops_devstack.stroke_demo import MANIFEST, expected_view_rows, point_at_stack, secret_values
from clinops_operator.core.stages import Stage, task


def _sources(settings: StackSettings, suffix: str = "") -> dict[str, str]:
    p = point_at_stack(yaml.safe_load(MANIFEST.read_text()), settings, suffix=suffix)
    args = task(p, Stage.STROKE, "m1").arguments
    assert isinstance(args, StrokeArgs)
    return {s.table: s.uri for s in args.sources}


def test_default_ports_leave_the_manifests_sources_as_written() -> None:
    body = yaml.safe_load(MANIFEST.read_text())
    written = {b["name"]: b["uri"] for b in body["spec"]["sources"]["batch"]}
    settings = StackSettings()
    got = _sources(settings)
    assert sorted(got.values()) == sorted(written.values())
    p = point_at_stack(body, settings)
    assert p.spec.lake.endpoint == "http://127.0.0.1:19000"
    env = dict(task(p, Stage.STROKE, "m1").env)
    assert env["CLINOPS_S3_ENDPOINT_URL"] == "http://127.0.0.1:19000"


def test_a_harness_stack_and_a_suffix_reach_every_source() -> None:
    settings = StackSettings(ports=Ports(ferretdb=30001, postgres=30002, minio=30003), lake_bucket="it-lake")
    got = _sources(settings, "_x1")
    assert got == {
        "demographics": "mongodb://127.0.0.1:30001/cohort/demographics_x1",
        "clinical_measurements": "postgresql://127.0.0.1:30002/cohort?table=clinical_measurements_x1",
        "hospital_admin": "postgresql://127.0.0.1:30002/hospital?table=administration_x1",
        "lifestyle": "s3a://it-lake/batch/lifestyle_x1/",
        "conditions": "s3a://it-lake/batch/conditions_x1/",
    }
    secrets = secret_values(settings, "_x1")
    assert secrets["CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL"].endswith(":30002/cohort?table=clinical_measurements_x1")
    assert secrets["CLINOPS_SOURCE_HOSPITAL_ADMIN_URL"].endswith(":30002/hospital?table=administration_x1")


def test_expected_rows_follow_the_generators_tables() -> None:
    d = date
    batch = {
        "demographics": [
            {"patient_id": "A", "registration_date": d(2024, 1, 1)},
            {"patient_id": "B", "registration_date": d(2025, 6, 1)},
        ],
        "clinical_measurements": [
            {"patient_id": "A", "visit_date": d(2024, 3, 1)},
            {"patient_id": "A", "visit_date": d(2025, 3, 1)},  # after A's stroke: no training row
            {"patient_id": "B", "visit_date": d(2025, 5, 1)},  # before B's registration: no row at all
            {"patient_id": "B", "visit_date": d(2025, 7, 1)},
        ],
        "hospital_admin": [
            {"patient_id": "A", "admission_date": d(2024, 9, 1)},
            {"patient_id": "B", "admission_date": None},
        ],
        "lifestyle": [{"patient_id": "A"}, {"patient_id": "B"}],
        "conditions": [
            {"patient_id": "A", "stroke_occurred": True, "stroke_date": d(2024, 10, 1)},
            {"patient_id": "B", "stroke_occurred": False, "stroke_date": None},
        ],
    }
    rows = expected_view_rows(batch, d(2026, 1, 1))  # type: ignore[arg-type]
    assert rows == {
        "stroke_demographics": 2,
        "stroke_clinical": 4,
        "stroke_hospital": 1,
        "stroke_lifestyle": 2,
        "stroke_conditions": 2,
        "stroke_risk": 3 + 2,  # three registered visits, one row per patient at the as-of date
        "stroke_label": 2,
    }
