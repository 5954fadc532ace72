"""The run state machine, pure: from a pipeline, its status and what its children say, to what to do next.

A run is an ordered list of stages with one id. It starts when the ``clinops.io/run-now`` annotation
takes a value not yet handled (every stage), when the monitor's ``clinops.io/retrain-requested``
annotation takes a value not yet handled (the training schedule's stages: fresh features, then the
trainer), or when a cron slot of a schedule passes (that schedule's stages). Only one run is in
flight at a time: a request that arrives during a run starts its own run when that one ends, and
each value starts exactly one run (its id is derived from the value).

Each reconcile looks at the current stage's child: missing, it is created; running, nothing
changes; succeeded, its result document is read (``clinops_common.contracts``), the next stage starts
with what the earlier ones produced (the featurizer's snapshot id goes to the materializer and the
trainer) or the run ends Ready (a promoted model fills ``status.champion``); failed, the run ends
Failed with the child's reason. A child the API server refuses for good (``refuse``) ends the run
the same way, once. Child names are derived from the pipeline and the run id, and the run id from
the annotation value or the cron slot, so a restarted operator finds the children it created before
it stopped (even when their status patch was lost) instead of creating them again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from clinops_common.contracts import RESULTS, StageResult, TrainResult
from clinops_operator.core.conditions import get_condition, set_condition, set_conditions
from clinops_operator.core.render import ChildState, child_kind
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import (
    BATCH_SERVICE,
    Stage,
    StageTask,
    manual_run_id,
    retrain_run_id,
    run_stages,
    scheduled_run_id,
    spec_problems,
    task,
)
from clinops_operator.core.times import iso, parse_iso

RUN_NOW = "clinops.io/run-now"
RETRAIN = "clinops.io/retrain-requested"  # set by the monitor: JSON {"reason", "at", "evaluation"}
SCHEDULES = ("training", "processing", "featurization")  # monitoring is the monitor Deployment's, not a run's

Observe = Callable[[StageTask], ChildState | None]
ReadResult = Callable[[StageTask], StageResult | None]
Status = Mapping[str, Any]


def scheduled_stages(p: Pipeline, schedule: str) -> tuple[Stage, ...]:
    """Which stages a schedule runs for this pipeline (empty: the schedule does nothing here)."""
    batch = p.spec.features.service == BATCH_SERVICE
    if schedule == "training":
        return run_stages(p)
    if schedule == "processing":
        return () if batch else (Stage.PROCESSOR,)
    return (Stage.STROKE,) if batch else (Stage.FEATURIZER, Stage.MATERIALIZER)


@dataclass
class Outcome:
    """What a reconcile decided: a merge patch for ``.status``, the tasks to start, and what to log.

    ``refused`` is set when the spec cannot run at all (a permanent error the handler reports)."""

    status: dict[str, Any] = field(default_factory=dict)
    start: list[StageTask] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    refused: str | None = None


def latest_slot(expr: str, now: datetime) -> datetime:
    """The most recent time at or before ``now`` that the cron expression fires (UTC)."""
    # Cron has minute resolution: look back from one second into the current minute.
    start = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(seconds=1)
    prev: datetime = croniter(expr, start).get_prev(datetime)
    return prev.astimezone(UTC)


def invalid_schedules(p: Pipeline) -> list[str]:
    return [name for name in SCHEDULES if not croniter.is_valid(getattr(p.spec.schedules, name))]


def due_schedule(p: Pipeline, status: Status, created: datetime, now: datetime) -> tuple[str, datetime] | None:
    """The first schedule whose latest slot passed after the pipeline was created and has not run yet."""
    if p.spec.suspend:
        return None
    done: Mapping[str, str] = status.get("lastScheduledSlots") or {}
    for name in SCHEDULES:
        expr = getattr(p.spec.schedules, name)
        if not croniter.is_valid(expr) or not scheduled_stages(p, name):
            continue
        slot = latest_slot(expr, now)
        if slot < created:
            continue
        if name in done and parse_iso(done[name]) >= slot:
            continue
        return name, slot
    return None


def _new_run(p: Pipeline, status: Status, annotations: Mapping[str, str], created: datetime, now: datetime) -> Outcome:
    out = Outcome()
    token = annotations.get(RUN_NOW)
    if token and token != status.get("handledRunNow"):
        run = {"id": manual_run_id(token), "trigger": "manual", "stages": [s.value for s in run_stages(p)]}
        out.status["handledRunNow"] = token
    elif (request := annotations.get(RETRAIN)) and request != (status.get("lastRetrainRequest") or {}).get("value"):
        run = {
            "id": retrain_run_id(request),
            "trigger": "retrain",
            "schedule": "training",
            "stages": [s.value for s in scheduled_stages(p, "training")],
        }
        out.status["lastRetrainRequest"] = {**retrain_request(request), "runId": run["id"], "handledAt": iso(now)}
    elif due := due_schedule(p, status, created, now):
        name, slot = due
        run = {
            "id": scheduled_run_id(slot),
            "trigger": "schedule",
            "schedule": name,
            "stages": [s.value for s in scheduled_stages(p, name)],
        }
        out.status["lastScheduledSlots"] = {name: iso(slot)}
    else:
        if not status.get("phase"):
            out.status["phase"] = "Pending"
        return out
    first = Stage(run["stages"][0])
    run |= {"stage": first.value, "startedAt": iso(now)}
    out.status |= {
        "currentRun": run,
        "phase": first.phase,
        "observedGeneration": p.generation,
        "conditions": set_condition(
            status.get("conditions") or [],
            "Running",
            status="True",
            reason="RunStarted",
            message=f"run {run['id']} ({run['trigger']}): {', '.join(run['stages'])}",
            now=now,
            generation=p.generation,
        ),
    }
    out.events.append(f"run {run['id']} started ({run['trigger']})")
    return out


def retrain_request(value: str) -> dict[str, str]:
    """The monitor's request as status fields: the raw value (what makes it new) and what it says.

    A value that is not the monitor's JSON still starts one run (someone asked by hand); its reason says so."""
    try:
        doc = json.loads(value)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return {"value": value, "reason": "annotation is not the monitor's JSON", "at": "", "evaluation": ""}
    return {"value": value, **{k: str(doc.get(k) or "") for k in ("reason", "at", "evaluation")}}


def last_training(result: TrainResult, now: datetime) -> dict[str, Any]:
    """``status.lastTraining``: what the last trainer run registered and what the gate decided, and why."""
    record: dict[str, Any] = {
        "runId": result.run_id,
        "modelName": result.model_name,
        "promoted": result.promoted,
        "gateReasons": list(result.gate_reasons),
        "finishedAt": iso(now),
    }
    if result.model_version is not None:
        record["version"] = result.model_version
    if result.test_auroc is not None:
        record["testAuroc"] = result.test_auroc
    if (oracle := result.metrics.get("oracle_auroc")) is not None:
        record["oracleAuroc"] = oracle
    return record


def _stage_record(
    t: StageTask,
    state: str,
    now: datetime,
    *,
    reason: str = "",
    message: str = "",
    result: StageResult | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "runId": t.run_id,
        "child": f"{child_kind(t.stage)}/{t.name}",
        "state": state,
        "reason": reason,
        "message": message,
    }
    record["finishedAt" if state != "Running" else "startedAt"] = iso(now)
    if result is not None:  # absent when a stage succeeded without a document (null would delete it in a merge patch)
        record["result"] = result.model_dump(mode="json")
    return record


def upstream_results(status: Status, run_id: str) -> dict[Stage, StageResult]:
    """The results the run's finished stages recorded in ``status.lastRuns`` (this run's only)."""
    out: dict[Stage, StageResult] = {}
    for name, record in (status.get("lastRuns") or {}).items():
        if name not in Stage.__members__.values() or record.get("runId") != run_id or not record.get("result"):
            continue
        stage = Stage(name)
        out[stage] = RESULTS[stage.contract].model_validate(record["result"])
    return out


def champion(result: TrainResult, now: datetime) -> dict[str, Any] | None:
    """``status.champion`` after a training run that promoted a version (None: it stays as it was)."""
    if not result.promoted or result.model_version is None:
        return None
    metrics = {"auroc": result.test_auroc} if result.test_auroc is not None else {}
    metrics |= {k: result.metrics[f"test_{k}"] for k in ("auprc", "brier") if f"test_{k}" in result.metrics}
    if "oracle_auroc" in result.metrics:
        metrics["oracleAuroc"] = result.metrics["oracle_auroc"]
    return {
        "modelName": result.model_name,
        "version": result.model_version,
        "runId": result.run_id,
        "promotedAt": iso(now),
        "metrics": metrics,
    }


def _end_run(
    p: Pipeline, out: Outcome, conditions: list[dict[str, Any]], *, ok: bool, reason: str, message: str, now: datetime
) -> Outcome:
    """Close the run: Ready or Failed, with the same reason and message on every condition."""
    statuses = (
        {"Ready": "True", "Running": "False", "Failed": "False"}
        if ok
        else {
            "Failed": "True",
            "Ready": "False",
            "Running": "False",
        }
    )
    conditions = set_conditions(conditions, statuses, reason=reason, message=message, now=now, generation=p.generation)
    out.status |= {
        "phase": "Ready" if ok else "Failed",
        "currentRun": None,
        "lastRunTime": iso(now),
        "conditions": conditions,
    }
    out.events.append(message)
    return out


def reconcile(
    p: Pipeline,
    *,
    status: Status,
    annotations: Mapping[str, str],
    created: datetime,
    now: datetime,
    observe: Observe,
    read_result: ReadResult,
) -> Outcome:
    """Decide the next step for ``p``; ``observe`` reads a task's child (None when it does not exist) and
    ``read_result`` the result document a succeeded stage wrote (None when there is none)."""
    problems = spec_problems(p)
    if problems:
        return _invalid_spec(p, status, "; ".join(problems), now)
    out = _advance(
        p, status=status, annotations=annotations, created=created, now=now, observe=observe, read_result=read_result
    )
    invalid = invalid_schedules(p)
    conditions: list[dict[str, Any]] = list(out.status.get("conditions") or status.get("conditions") or [])
    current = get_condition(conditions, "SchedulesValid")
    wanted = "False" if invalid else "True"
    if current is None or current.get("status") != wanted:
        out.status["conditions"] = set_condition(
            conditions,
            "SchedulesValid",
            status=wanted,
            reason="InvalidCron" if invalid else "Valid",
            message=f"invalid cron expression in: {', '.join(invalid)}" if invalid else "every schedule parses",
            now=now,
            generation=p.generation,
        )
    return out


def _invalid_spec(p: Pipeline, status: Status, message: str, now: datetime) -> Outcome:
    """No run starts while the spec is invalid; the conditions say why (reported once per change)."""
    out = Outcome()
    failed = get_condition(status.get("conditions") or [], "Failed")
    if failed and failed.get("reason") == "InvalidSpec" and failed.get("message") == message:
        return out
    out.refused = message
    return _end_run(
        p, out, list(status.get("conditions") or []), ok=False, reason="InvalidSpec", message=message, now=now
    )


def refuse(
    p: Pipeline, status: Status, out: Outcome, refused: StageTask, *, reason: str, message: str, now: datetime
) -> Outcome:
    """The API server refused ``refused``'s child for good (forbidden, invalid, no such kind): the run
    ends Failed with that reason, so the next reconcile does not try again."""
    merged: dict[str, Any] = {**status, **out.status}
    text = f"{refused.stage.value} {child_kind(refused.stage)} {refused.name} refused: {reason}: {message}"
    out.start = []
    record = _stage_record(refused, "Failed", now, reason=reason, message=message)
    out.status.setdefault("lastRuns", {})[refused.stage.value] = record
    return _end_run(p, out, list(merged.get("conditions") or []), ok=False, reason=reason, message=text, now=now)


def halt(p: Pipeline, status: Status, reason: str, message: str, now: datetime) -> Outcome:
    """A permanent error outside any child (reading one is forbidden, ...): the run ends Failed."""
    return _end_run(
        p, Outcome(), list(status.get("conditions") or []), ok=False, reason=reason, message=message, now=now
    )


def _advance(
    p: Pipeline,
    *,
    status: Status,
    annotations: Mapping[str, str],
    created: datetime,
    now: datetime,
    observe: Observe,
    read_result: ReadResult,
) -> Outcome:
    out = Outcome()
    run: dict[str, Any] | None = dict(status["currentRun"]) if status.get("currentRun") else None
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    if run is None:
        out = _new_run(p, status, annotations, created, now)
        if "currentRun" not in out.status:
            return out
        run = out.status["currentRun"]
        conditions = out.status["conditions"]
    assert run is not None
    stage = Stage(run["stage"])
    upstream = upstream_results(status, run["id"])
    current = task(p, stage, run["id"], upstream)
    state = observe(current)
    if state is None:
        out.start.append(current)
        out.status.setdefault("lastRuns", {})[stage.value] = _stage_record(current, "Running", now)
        return out
    if state.state == "Running":
        return out
    if state.state == "Failed":
        child = f"{child_kind(stage)} {current.name}"
        message = f"{stage.value} {child} failed: {state.reason}: {state.message}".rstrip(": ")
        out.status.setdefault("lastRuns", {})[stage.value] = _stage_record(
            current, "Failed", now, reason=state.reason, message=state.message
        )
        return _end_run(p, out, conditions, ok=False, reason=state.reason, message=message, now=now)
    result = read_result(current)
    if result is None:
        out.events.append(f"run {run['id']}: {stage.value} succeeded without a result document")
    out.status.setdefault("lastRuns", {})[stage.value] = _stage_record(
        current, "Succeeded", now, reason=state.reason, result=result
    )
    if isinstance(result, TrainResult):
        out.status["lastTraining"] = last_training(result, now)
        if new := champion(result, now):
            out.status["champion"] = new
            out.events.append(f"run {run['id']}: {result.model_name} version {result.model_version} is the champion")
        else:
            gate = "; ".join(result.gate_reasons) or "nothing registered"
            out.events.append(f"run {run['id']}: version {result.model_version} not promoted: {gate}")
    remaining = run["stages"][run["stages"].index(stage.value) + 1 :]
    if not remaining:
        message = f"run {run['id']} succeeded: {', '.join(run['stages'])}"
        return _end_run(p, out, conditions, ok=True, reason="RunSucceeded", message=message, now=now)
    nxt = Stage(remaining[0])
    out.status["currentRun"] = {**run, "stage": nxt.value}
    out.status["phase"] = nxt.phase
    nxt_task = task(p, nxt, run["id"], {**upstream, **({stage: result} if result else {})})
    out.start.append(nxt_task)
    out.status["lastRuns"][nxt.value] = _stage_record(nxt_task, "Running", now)
    out.events.append(f"run {run['id']}: {stage.value} succeeded, {nxt.value} started")
    return out
