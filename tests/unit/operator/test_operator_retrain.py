"""The monitor's retraining request: one training run per new annotation value, none while a run is in
flight; the trainer's result fills status.champion (promoted) or only status.lastTraining (refused)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from clinops_common.contracts import FeaturizeResult, StageResult, TrainResult
from clinops_operator.core import runs
from clinops_operator.core.render import ChildState
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import Stage, StageTask, retrain_run_id

REPO = Path(__file__).resolve().parents[3]
CREATED = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 17, 40, tzinfo=UTC)


def request(evaluation: str, reason: str = "auroc_below_floor") -> str:
    return json.dumps({"reason": reason, "at": "2026-11-23T17:39:00Z", "evaluation": evaluation}, sort_keys=True)


def pipeline() -> Pipeline:
    body = yaml.safe_load((REPO / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] |= {"uid": "u1"}
    return Pipeline.from_body(body)


def merge(status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(status)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class World:
    """Children that succeed when asked, with result documents the test sets per stage."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.state: dict[str, ChildState] = {}
        self.results: dict[Stage, Any] = {}

    def observe(self, t: StageTask) -> ChildState | None:
        return self.state.get(t.name)

    def read_result(self, t: StageTask) -> StageResult | None:
        make = self.results.get(t.stage)
        return make(t) if make else None

    def step(self, p: Pipeline, status: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
        out = runs.reconcile(
            p,
            status=status,
            annotations=annotations,
            created=CREATED,
            now=NOW,
            observe=self.observe,
            read_result=self.read_result,
        )
        for t in out.start:
            self.created.append(t.name)
            self.state[t.name] = ChildState("Running")
        return merge(status, out.status)

    def finish_all(self) -> None:
        for name, st in self.state.items():
            if st.state == "Running":
                self.state[name] = ChildState("Succeeded")

    def run_to_idle(self, p: Pipeline, status: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
        for _ in range(20):
            status = self.step(p, status, annotations)
            if not status.get("currentRun"):
                return status
            self.finish_all()
        raise AssertionError(f"run did not finish: {status}")


def train_result(version: str, auroc: float, promoted: bool, reasons: tuple[str, ...]) -> Any:
    return lambda t: TrainResult(
        pipeline=t.pipeline,
        run_id=t.run_id,
        model_name="adverse-event",
        model_version=version,
        mlflow_run_id="abc",
        test_auroc=auroc,
        promoted=promoted,
        gate_reasons=reasons,
        snapshot_id=f"snap-{t.run_id}",
        metrics={"oracle_auroc": 0.71, "test_auprc": 0.2},
    )


def feature_result(t: StageTask) -> FeaturizeResult:
    return FeaturizeResult(pipeline=t.pipeline, run_id=t.run_id, snapshot_id=f"snap-{t.run_id}", files={}, bytes=0)


def test_a_new_request_starts_one_full_training_run_and_records_it() -> None:
    p, w = pipeline(), World()
    w.results = {Stage.FEATURIZER: feature_result, Stage.TRAINER: train_result("1", 0.7, True, ("auroc 0.7 >= 0.62",))}
    status = w.run_to_idle(p, {}, {runs.RUN_NOW: "first"})
    assert status["champion"]["version"] == "1"
    assert status["champion"]["metrics"] == {"auroc": 0.7, "auprc": 0.2, "oracleAuroc": 0.71}
    first = len(w.created)

    w.results[Stage.TRAINER] = train_result("2", 0.65, False, ("auroc 0.65 does not beat the champion's 0.70",))
    annotations = {runs.RUN_NOW: "first", runs.RETRAIN: request("ev-1")}
    status = w.step(p, status, annotations)
    run = status["currentRun"]
    assert run["trigger"] == "retrain"
    assert run["stages"] == ["processor", "featurizer", "materializer", "trainer"]
    assert status["lastRetrainRequest"] | {"handledAt": "x"} == {
        "value": request("ev-1"),
        "reason": "auroc_below_floor",
        "at": "2026-11-23T17:39:00Z",
        "evaluation": "ev-1",
        "runId": run["id"],
        "handledAt": "x",
    }
    w.finish_all()
    status = w.run_to_idle(p, status, annotations)
    assert len(w.created) == first + 4
    assert status["champion"]["version"] == "1", "a refused version does not become the champion"
    assert status["lastTraining"]["version"] == "2"
    assert status["lastTraining"]["promoted"] is False
    assert "does not beat" in status["lastTraining"]["gateReasons"][0]
    assert status["lastTraining"]["oracleAuroc"] == 0.71

    # The same value again (a restart, a resync) starts nothing.
    for _ in range(3):
        status = w.step(p, status, annotations)
    assert len(w.created) == first + 4
    assert status["phase"] == "Ready"


def test_a_request_during_a_run_waits_for_it_and_a_promoted_version_becomes_champion() -> None:
    p, w = pipeline(), World()
    w.results = {Stage.FEATURIZER: feature_result, Stage.TRAINER: train_result("3", 0.8, True, ("ok",))}
    status = w.step(p, {}, {runs.RUN_NOW: "first"})
    manual = status["currentRun"]["id"]
    annotations = {runs.RUN_NOW: "first", runs.RETRAIN: request("ev-2")}
    status = w.step(p, status, annotations)  # the request arrives while the processor runs
    assert status["currentRun"]["id"] == manual
    assert "lastRetrainRequest" not in status
    w.finish_all()
    for _ in range(10):
        status = w.step(p, status, annotations)
        w.finish_all()
        if status.get("currentRun", {}).get("trigger") == "retrain":
            break
    assert status["currentRun"]["trigger"] == "retrain"
    assert status["lastRuns"]["trainer"]["runId"] == manual
    status = w.run_to_idle(p, status, annotations)
    assert status["champion"]["runId"] == status["lastRetrainRequest"]["runId"]
    assert status["champion"]["version"] == "3"
    names = [n for n in w.created if "-train-" in n]
    assert len(names) == len(set(names)) == 2


def test_a_hand_written_value_still_starts_one_run_and_says_what_it_was() -> None:
    p, w = pipeline(), World()
    status = w.step(p, {}, {runs.RETRAIN: "please"})
    assert status["currentRun"]["trigger"] == "retrain"
    assert status["lastRetrainRequest"]["reason"] == "annotation is not the monitor's JSON"
    assert status["currentRun"]["id"] == retrain_run_id("please")


def test_the_trainer_gets_the_featurizers_snapshot_in_a_retraining_run() -> None:
    p, w = pipeline(), World()
    w.results = {Stage.FEATURIZER: feature_result}
    status = w.step(p, {}, {runs.RETRAIN: request("ev-3")})
    seen: list[StageTask] = []
    original = w.read_result

    def spy(t: StageTask) -> StageResult | None:
        seen.append(t)
        return original(t)

    w.read_result = spy  # type: ignore[method-assign]
    for _ in range(6):
        w.finish_all()
        out = runs.reconcile(
            p, status=status, annotations={runs.RETRAIN: request("ev-3")}, created=CREATED,
            now=NOW + timedelta(seconds=1), observe=w.observe, read_result=w.read_result,
        )  # fmt: skip
        for t in out.start:
            w.state[t.name] = ChildState("Running")
            if t.stage is Stage.TRAINER:
                assert getattr(t.arguments, "snapshot_id", None) == f"snap-{t.run_id}"
                return
        status = merge(status, out.status)
    raise AssertionError("the trainer never started")


def test_the_specs_camel_case_hyperparameters_reach_the_trainer_in_its_own_names() -> None:
    from clinops_common.contracts import TrainArgs
    from clinops_operator.core.stages import task
    from clinops_trainer.families import mlp

    t = task(pipeline(), Stage.TRAINER, "m1")
    assert isinstance(t.arguments, TrainArgs)
    hp = t.arguments.hyperparameters
    assert {"learning_rate", "hidden_units", "batch_size"} <= set(hp)
    assert mlp.params(hp)["hidden_units"] == [128, 64]  # the trainer accepts them (it refuses unknown names)
