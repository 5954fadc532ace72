"""Run a scenario world through the monitor along a simulated clock, and measure what it saw."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import boto3

from clinops_common.settings import Connections
from clinops_common.synthetic.config import ScenarioKind
from clinops_devstack.bench.monitor.world import START
from clinops_monitor.adapters.postgres import Database
from clinops_monitor.config import MonitorSettings, PipelineView
from clinops_monitor.core.evaluation import Reference
from clinops_monitor.job import Outcome, PipelinePatcher, ReferenceSource, run_evaluation

SCENARIOS: tuple[ScenarioKind, ...] = ("stable", "concept_drift", "covariate_shift", "calibration_drift")


@dataclass(frozen=True)
class StaticReferences:
    """The world's model as the champion (version ``1``) and its validation rows as the reference."""

    reference_: Reference
    version: str = "1"

    def champion(self, model_name: str) -> str | None:
        return self.version

    def reference(self, model_name: str, version: str) -> Reference:
        return self.reference_


def lake_for(conns: Connections, bucket: str) -> Connections:
    """The same S3 endpoint with its own bucket (each world is its own lake)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=conns.s3_endpoint_url,
        aws_access_key_id=conns.s3_access_key.get_secret_value(),
        aws_secret_access_key=conns.s3_secret_key.get_secret_value(),
        region_name=conns.s3_region,
    )
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    return conns.model_copy(update={"lake_bucket": bucket})


def clock(start_day: float, end_day: float, step_hours: float) -> list[datetime]:
    out, t = [], START + timedelta(days=start_day)
    while t <= START + timedelta(days=end_day):
        out.append(t)
        t += timedelta(hours=step_hours)
    return out


def run(
    references: ReferenceSource,
    pipeline: PipelineView,
    *,
    settings: MonitorSettings,
    conns: Connections,
    db: Database,
    patcher: PipelinePatcher | None,
    training_in_flight: Callable[[PipelineView, str | None], bool],
    refresh: Callable[[], PipelineView] | None = None,
    start_day: float = 12.0,
    end_day: float = 21.0,
    step_hours: float = 12.0,
) -> list[Outcome]:
    """Evaluate the pipeline as of each tick of the simulated clock (``refresh`` re-reads the CR)."""
    outcomes = []
    for as_of in clock(start_day, end_day, step_hours):
        view = refresh() if refresh else pipeline
        outcomes.append(
            run_evaluation(
                view,
                as_of,
                settings=settings,
                conns=conns,
                db=db,
                references=references,
                patcher=patcher,
                training_in_flight=training_in_flight,
            )
        )
    return outcomes


def first(outcomes: list[Outcome], after: datetime, seen: Callable[[Outcome], bool]) -> Outcome | None:
    return next((o for o in outcomes if o.evaluation.as_of >= after and seen(o)), None)


def delay_hours(outcomes: list[Outcome], change_at: datetime, seen: Callable[[Outcome], bool]) -> float | None:
    hit = first(outcomes, change_at, seen)
    return None if hit is None else (hit.evaluation.as_of - change_at).total_seconds() / 3600


def requested(o: Outcome) -> bool:
    return o.evaluation.decision.request


def temperature_drift(o: Outcome) -> bool:
    d = o.evaluation.drift
    return bool(d and any(f.startswith("temperature_") for f in d.drifted_features))
