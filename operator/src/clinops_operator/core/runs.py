"""The run state machine, pure: from a pipeline, its status and what its children say, to what to do next.

A run is an ordered list of stages with one id. It starts when the ``clinops.io/run-now`` annotation
takes a value not yet handled (every stage), or when a cron slot of a schedule passes (that schedule's
stages). Each reconcile looks at the current stage's child: missing, it is created; running, nothing
changes; succeeded, the next stage starts or the run ends Ready; failed, the run ends Failed with the
child's reason. Child names are derived from the pipeline and the run id, and the run id from the
annotation value or the cron slot, so a restarted operator finds the children it created before it
stopped (even when their status patch was lost) instead of creating them again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from clinops_operator.core.conditions import get_condition, set_condition
from clinops_operator.core.render import StageResult, child_kind
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import Stage, StageTask, manual_run_id, scheduled_run_id, task

RUN_NOW = "clinops.io/run-now"
ALL_STAGES = (Stage.PROCESSOR, Stage.FEATURIZER, Stage.TRAINER)
# Which stages each schedule runs. Monitoring is done by the monitor Deployment, not by a run.
SCHEDULED_STAGES: dict[str, tuple[Stage, ...]] = {
    "training": ALL_STAGES,
    "processing": (Stage.PROCESSOR,),
    "featurization": (Stage.FEATURIZER,),
}

Observe = Callable[[StageTask], StageResult | None]
Status = Mapping[str, Any]


@dataclass
class Outcome:
    """What a reconcile decided: a merge patch for ``.status`` and the tasks to start."""

    status: dict[str, Any] = field(default_factory=dict)
    start: list[StageTask] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def latest_slot(expr: str, now: datetime) -> datetime:
    """The most recent time at or before ``now`` that the cron expression fires (UTC)."""
    # Cron has minute resolution: look back from one second into the current minute.
    start = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(seconds=1)
    prev: datetime = croniter(expr, start).get_prev(datetime)
    return prev.astimezone(UTC)


def invalid_schedules(p: Pipeline) -> list[str]:
    return [name for name in SCHEDULED_STAGES if not croniter.is_valid(getattr(p.spec.schedules, name))]


def due_schedule(p: Pipeline, status: Status, created: datetime, now: datetime) -> tuple[str, datetime] | None:
    """The first schedule whose latest slot passed after the pipeline was created and has not run yet."""
    if p.spec.suspend:
        return None
    done: Mapping[str, str] = status.get("lastScheduledSlots") or {}
    for name in SCHEDULED_STAGES:
        expr = getattr(p.spec.schedules, name)
        if not croniter.is_valid(expr):
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
        run = {"id": manual_run_id(token), "trigger": "manual", "stages": [s.value for s in ALL_STAGES]}
        out.status["handledRunNow"] = token
    elif due := due_schedule(p, status, created, now):
        name, slot = due
        stages = SCHEDULED_STAGES[name]
        run = {
            "id": scheduled_run_id(slot),
            "trigger": "schedule",
            "schedule": name,
            "stages": [s.value for s in stages],
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


def _stage_record(t: StageTask, state: str, now: datetime, reason: str = "", message: str = "") -> dict[str, Any]:
    record: dict[str, Any] = {
        "runId": t.run_id,
        "child": f"{child_kind(t.stage)}/{t.name}",
        "state": state,
        "reason": reason,
        "message": message,
    }
    record["finishedAt" if state != "Running" else "startedAt"] = iso(now)
    return record


def reconcile(
    p: Pipeline,
    *,
    status: Status,
    annotations: Mapping[str, str],
    created: datetime,
    now: datetime,
    observe: Observe,
) -> Outcome:
    """Decide the next step for ``p``; ``observe`` reads a task's child (None when it does not exist)."""
    out = _advance(p, status=status, annotations=annotations, created=created, now=now, observe=observe)
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


def _advance(
    p: Pipeline,
    *,
    status: Status,
    annotations: Mapping[str, str],
    created: datetime,
    now: datetime,
    observe: Observe,
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
    current = task(p, stage, run["id"])
    result = observe(current)
    if result is None:
        out.start.append(current)
        out.status.setdefault("lastRuns", {})[stage.value] = _stage_record(current, "Running", now)
        return out
    if result.state == "Running":
        return out
    if result.state == "Succeeded":
        out.status.setdefault("lastRuns", {})[stage.value] = _stage_record(current, "Succeeded", now, result.reason)
        remaining = run["stages"][run["stages"].index(stage.value) + 1 :]
        if remaining:
            nxt = Stage(remaining[0])
            out.status["currentRun"] = {**run, "stage": nxt.value}
            out.status["phase"] = nxt.phase
            nxt_task = task(p, nxt, run["id"])
            out.start.append(nxt_task)
            out.status["lastRuns"][nxt.value] = _stage_record(nxt_task, "Running", now)
            out.events.append(f"run {run['id']}: {stage.value} succeeded, {nxt.value} started")
            return out
        message = f"run {run['id']} succeeded: {', '.join(run['stages'])}"
        for cond_type, value in (("Ready", "True"), ("Running", "False"), ("Failed", "False")):
            conditions = set_condition(
                conditions,
                cond_type,
                status=value,
                reason="RunSucceeded",
                message=message,
                now=now,
                generation=p.generation,
            )
        out.status |= {"phase": "Ready", "currentRun": None, "lastRunTime": iso(now), "conditions": conditions}
        out.events.append(message)
        return out
    child = f"{child_kind(stage)} {current.name}"
    message = f"{stage.value} {child} failed: {result.reason}: {result.message}".rstrip(": ")
    out.status.setdefault("lastRuns", {})[stage.value] = _stage_record(
        current, "Failed", now, result.reason, result.message
    )
    for cond_type, value in (("Failed", "True"), ("Ready", "False"), ("Running", "False")):
        conditions = set_condition(
            conditions,
            cond_type,
            status=value,
            reason=result.reason,
            message=message,
            now=now,
            generation=p.generation,
        )
    out.status |= {"phase": "Failed", "currentRun": None, "lastRunTime": iso(now), "conditions": conditions}
    out.events.append(message)
    return out
