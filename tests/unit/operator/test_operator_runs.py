"""The run state machine without a cluster: children are a dict the test controls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from clinops_common.contracts import StageResult
from clinops_operator.core import runs
from clinops_operator.core.render import ChildState
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import StageTask

REPO = Path(__file__).resolve().parents[3]
CREATED = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)


class Children:
    """Stand-in for the executor's observe(): what each child says, by name."""

    def __init__(self) -> None:
        self.results: dict[str, ChildState] = {}
        self.documents: dict[str, StageResult] = {}  # result documents, by child name

    def observe(self, task: StageTask) -> ChildState | None:
        return self.results.get(task.name)

    def read_result(self, task: StageTask) -> StageResult | None:
        return self.documents.get(task.name)


def pipeline(**spec_changes: Any) -> Pipeline:
    body = yaml.safe_load((REPO / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] |= {"uid": "u1", "generation": 2}
    body["spec"] |= spec_changes
    return Pipeline.from_body(body)


def merge(status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch, as the API server applies kopf's status patch."""
    out = dict(status)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def step(
    p: Pipeline,
    status: dict[str, Any],
    children: Children,
    now: datetime,
    token: str = "go",  # noqa: S107 (the run-now annotation value)
) -> tuple[dict[str, Any], runs.Outcome]:
    annotations = {runs.RUN_NOW: token} if token else {}
    outcome = runs.reconcile(
        p,
        status=status,
        annotations=annotations,
        created=CREATED,
        now=now,
        observe=children.observe,
        read_result=children.read_result,
    )
    return merge(status, outcome.status), outcome


def test_run_now_goes_through_every_stage_to_ready() -> None:
    p, children, now = pipeline(), Children(), datetime(2026, 11, 23, 17, 40, tzinfo=UTC)
    status, out = step(p, {}, children, now)
    assert status["phase"] == "Processing"
    assert status["handledRunNow"] == "go"
    assert [t.stage.value for t in out.start] == ["processor"]
    proc = out.start[0].name

    status, out = step(p, status, children, now)  # the child exists now but says nothing yet
    children.results[proc] = ChildState("Running")
    status, out = step(p, status, children, now)
    assert out.start == []
    assert status["phase"] == "Processing"

    children.results[proc] = ChildState("Succeeded", "SparkApplicationCompleted")
    status, out = step(p, status, children, now)
    assert status["phase"] == "Featurizing"
    assert [t.stage.value for t in out.start] == ["featurizer"]
    children.results[out.start[0].name] = ChildState("Succeeded")
    status, out = step(p, status, children, now)
    assert status["phase"] == "Materializing"
    children.results[out.start[0].name] = ChildState("Succeeded", "JobComplete")
    status, out = step(p, status, children, now)
    assert status["phase"] == "Training"
    children.results[out.start[0].name] = ChildState("Succeeded", "JobComplete")
    status, out = step(p, status, children, now)
    assert status["phase"] == "Ready"
    assert "currentRun" not in status
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert ready["reason"] == "RunSucceeded"
    assert {s: r["state"] for s, r in status["lastRuns"].items()} == dict.fromkeys(
        ("processor", "featurizer", "materializer", "trainer"), "Succeeded"
    )
    # The same annotation value does not start the run again.
    status, out = step(p, status, children, now)
    assert out.start == []
    assert status["phase"] == "Ready"


def test_a_failed_child_fails_the_pipeline_with_its_reason() -> None:
    p, children, now = pipeline(), Children(), datetime(2026, 11, 23, 17, 40, tzinfo=UTC)
    status, out = step(p, {}, children, now)
    children.results[out.start[0].name] = ChildState("Failed", "SparkApplicationFailed", "driver exited 1")
    status, out = step(p, status, children, now)
    assert out.start == []
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True"
    assert failed["reason"] == "SparkApplicationFailed"
    assert "driver exited 1" in failed["message"]
    assert status["lastRuns"]["processor"]["state"] == "Failed"


def test_a_restart_that_lost_the_status_patch_finds_the_same_child() -> None:
    """The child was created but the status never written: the next reconcile must not make another."""
    p, children, now = pipeline(), Children(), datetime(2026, 11, 23, 17, 40, tzinfo=UTC)
    _, out = step(p, {}, children, now)
    children.results[out.start[0].name] = ChildState("Running")
    status, again = step(p, {}, children, now)
    assert again.start == []
    assert status["currentRun"]["id"] == out.status["currentRun"]["id"]


def test_schedules_start_runs_once_per_slot_and_not_before_creation() -> None:
    p, children = pipeline(), Children()
    before_first_slot = datetime(2026, 11, 23, 17, 59, tzinfo=UTC)
    status, out = step(p, {}, children, before_first_slot, token="")
    assert out.start == []
    assert status["phase"] == "Pending"

    at_slot = datetime(2026, 11, 23, 18, 0, 30, tzinfo=UTC)
    status, out = step(p, status, children, at_slot, token="")
    assert status["currentRun"] | {"startedAt": "x"} == {
        "id": "s2611231800",
        "trigger": "schedule",
        "schedule": "processing",
        "stages": ["processor"],
        "stage": "processor",
        "startedAt": "x",
    }
    children.results[out.start[0].name] = ChildState("Succeeded")
    status, out = step(p, status, children, at_slot + timedelta(seconds=5), token="")
    assert status["phase"] == "Ready"
    status, out = step(p, status, children, at_slot + timedelta(minutes=5), token="")
    assert out.start == []  # the 18:00 slot ran already; next is featurization at 18:15


def test_suspend_stops_schedules_but_not_run_now() -> None:
    p, children = pipeline(suspend=True), Children()
    at_slot = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    _, out = step(p, {}, children, at_slot, token="")
    assert out.start == []
    _, out = step(p, {}, children, at_slot, token="go")
    assert len(out.start) == 1


@pytest.mark.parametrize(
    ("expr", "now", "slot"),
    [
        ("0 * * * *", datetime(2026, 1, 1, 10, 0, tzinfo=UTC), datetime(2026, 1, 1, 10, 0, tzinfo=UTC)),
        ("0 * * * *", datetime(2026, 1, 1, 10, 59, 59, tzinfo=UTC), datetime(2026, 1, 1, 10, 0, tzinfo=UTC)),
        ("0 */6 * * *", datetime(2026, 1, 1, 5, 0, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_latest_slot(expr: str, now: datetime, slot: datetime) -> None:
    assert runs.latest_slot(expr, now) == slot


def test_invalid_cron_is_reported_not_run() -> None:
    p = pipeline(schedules={"processing": "61 * * * *"})
    assert runs.invalid_schedules(p) == ["processing"]
