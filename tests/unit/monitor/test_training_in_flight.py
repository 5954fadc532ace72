"""The monitor's "training run in flight" check against the CRD's phases and the operator's stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from clinops_monitor.adapters.kube import RUN_PHASES, TRAINER_STAGE, training_in_flight
from clinops_monitor.config import PipelineView
from clinops_monitor.core.decision import ANNOTATION
from clinops_operator.core.stages import Stage

CRD = Path(__file__).resolve().parents[3] / "charts" / "clinops" / "crds" / "featurepipelines.clinops.io.yaml"


def _view(status: dict[str, Any], annotations: dict[str, str] | None = None) -> PipelineView:
    body = {
        "metadata": {"name": "p", "namespace": "ns", "annotations": annotations or {}},
        "spec": {},
        "status": status,
    }
    return PipelineView.from_body(body)


def _crd_phases() -> list[str]:
    crd = yaml.safe_load(CRD.read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    phases: list[str] = status["properties"]["phase"]["enum"]
    return phases


def test_every_phase_of_a_run_is_in_flight_and_only_those() -> None:
    """The run phases are the phases of the operator's stages; the CRD's others are at rest."""
    assert {s.phase for s in Stage} == RUN_PHASES
    assert set(_crd_phases()) - RUN_PHASES == {"Pending", "Ready", "Failed"}
    assert Stage.TRAINER.value == TRAINER_STAGE


@pytest.mark.parametrize("phase", sorted(RUN_PHASES))
def test_a_run_that_trains_is_in_flight_in_each_of_its_phases(phase: str) -> None:
    stages = [s.value for s in Stage if s is not Stage.STROKE]
    assert training_in_flight(_view({"phase": phase, "currentRun": {"stages": stages, "stage": "x"}}), None)
    assert training_in_flight(_view({"phase": phase}), None)  # no stage list: the phase decides


def test_materializing_without_a_trainer_is_not_a_training_run() -> None:
    run = {"stages": ["featurizer", "materializer"], "stage": "materializer"}
    assert not training_in_flight(_view({"phase": "Materializing", "currentRun": run}), None)


@pytest.mark.parametrize("phase", ["Pending", "Ready", "Failed", None])
def test_at_rest_nothing_is_in_flight(phase: str | None) -> None:
    assert not training_in_flight(_view({"phase": phase, "lastRunTime": "2026-03-10T00:00:00Z"}), None)


def test_our_request_newer_than_the_last_run_counts_as_in_flight() -> None:
    at_rest = {"phase": "Ready", "lastRunTime": "2026-03-10T00:00:00Z"}
    pending = _view(at_rest, {ANNOTATION: "{}"})
    assert training_in_flight(pending, "2026-03-10T06:00:00Z")
    assert not training_in_flight(pending, "2026-03-09T06:00:00Z")
