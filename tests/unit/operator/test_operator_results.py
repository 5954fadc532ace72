"""Results flow through a run: the featurizer's snapshot id to the next stages, a promoted model to status.champion."""

from __future__ import annotations

from datetime import UTC, datetime

from test_operator_runs import Children, pipeline, step

from clinops_common.contracts import FeaturizeResult, MaterializeArgs, TrainArgs, TrainResult
from clinops_operator.core import runs
from clinops_operator.core.render import ChildState
from clinops_operator.core.stages import Stage

NOW = datetime(2026, 11, 23, 17, 40, tzinfo=UTC)


def _finish(children: Children, out: runs.Outcome, result: object = None) -> None:
    t = out.start[0]
    children.results[t.name] = ChildState("Succeeded")
    if result is not None:
        children.documents[t.name] = result  # type: ignore[assignment]


def test_snapshot_id_reaches_materializer_and_trainer_and_a_promotion_fills_the_champion() -> None:
    p, children = pipeline(stores={"redis": {"secretRef": {"name": "r"}, "ttlHours": 6},
                                   "postgres": {"secretRef": {"name": "pg"}}}), Children()  # fmt: skip
    status, out = step(p, {}, children, NOW)
    run_id = status["currentRun"]["id"]
    _finish(children, out)
    status, out = step(p, status, children, NOW)  # featurizer starts
    assert "result" not in status["lastRuns"]["processor"]  # succeeded without a document
    feat = FeaturizeResult(pipeline=p.name, run_id=run_id, snapshot_id="snap-1", files={"vitals": 1}, bytes=10)
    _finish(children, out, feat)
    status, out = step(p, status, children, NOW)
    mat = out.start[0].arguments
    assert isinstance(mat, MaterializeArgs)
    assert (mat.snapshot_id, mat.key_ttl_hours) == ("snap-1", 6)
    assert status["lastRuns"]["featurizer"]["result"]["snapshot_id"] == "snap-1"
    _finish(children, out)
    status, out = step(p, status, children, NOW)
    train = out.start[0]
    assert train.stage is Stage.TRAINER
    assert isinstance(train.arguments, TrainArgs)
    assert train.arguments.snapshot_id == "snap-1"  # rebuilt from status.lastRuns, not from memory
    result = TrainResult(
        pipeline=p.name,
        run_id=run_id,
        model_name="adverse-event",
        model_version="3",
        mlflow_run_id="abc",
        test_auroc=0.81,
        promoted=True,
        gate_reasons=("auroc 0.81 >= 0.75",),
        snapshot_id="snap-1",
    )
    _finish(children, out, result)
    status, _ = step(p, status, children, NOW)
    assert status["phase"] == "Ready"
    assert status["champion"] | {"promotedAt": "x"} == {
        "modelName": "adverse-event",
        "version": "3",
        "runId": run_id,
        "promotedAt": "x",
        "metrics": {"auroc": 0.81},
    }


def test_a_refused_child_ends_the_run_with_the_reason_and_is_not_tried_again() -> None:
    p, children = pipeline(), Children()
    status, out = step(p, {}, children, NOW)
    out = runs.refuse(p, {}, out, out.start[0], reason="Forbidden", message="exceeded quota", now=NOW)
    from test_operator_runs import merge

    status = merge({}, out.status)
    assert out.start == []
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "Forbidden")
    assert "exceeded quota" in failed["message"]
    status, again = step(p, status, children, NOW)
    assert again.start == []  # the same run-now value: no new attempt


def test_an_invalid_spec_starts_nothing_and_says_why_once() -> None:
    p, children = pipeline(features={"service": "adverse_event_v1", "windows": ["1h"]}), Children()
    status, out = step(p, {}, children, NOW)
    assert out.start == []
    assert out.refused is not None
    assert "features.windows" in out.refused
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "InvalidSpec"
    _, again = step(p, status, children, NOW)
    assert again.refused is None  # reported once; nothing starts either
    assert again.start == []
