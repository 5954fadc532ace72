"""Scenario tests: generated worlds whose change is known, evaluated along a simulated clock.

Each world (400 patients, 21 days, the change at day 14) is generated, featurized (hourly rows),
its model fitted and applied to every later hour (batch rows of ``predictions`` in PostgreSQL);
its outcomes go to silver in MinIO; its FeaturePipeline lives on the local control plane. The
monitor evaluates it as of every 24 hours from day 12 to day 21 and must see each change and only
what changed.

The predictions come from a logistic regression fitted in the test on the world's point-in-time
rows (a 28-feature subset of adverse_event_v1 computed with pandas), not from the trainer: the
monitor reads them exactly as it reads batch scoring's rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from clinops_common.settings import Connections
from clinops_devstack.bench.monitor import scenarios
from clinops_devstack.bench.monitor.world import FEATURES, WorldConfig, build, write_outcomes, write_predictions
from clinops_devstack.settings import REPO_ROOT
from clinops_monitor.adapters.kube import Pipelines, training_in_flight
from clinops_monitor.adapters.postgres import Database
from clinops_monitor.config import MonitorSettings
from clinops_monitor.core.decision import ANNOTATION
from clinops_monitor.job import Outcome

FLOOR = 0.6
TEMPERATURE = {f for f in FEATURES if f.startswith("temperature_")}


@dataclass
class Run:
    world: Any
    outcomes: list[Outcome]
    annotation: str | None


def _pipeline_body(namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO_ROOT / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["monitoring"] = {"aurocFloor": FLOOR, "windowDays": 7, "minOutcomes": 200}
    return body


@pytest.fixture(scope="module")
def runs(cluster: Any, monitor_db: str, s3: Connections) -> Iterator[dict[str, Run]]:
    ns = "monitor-scenarios"
    cluster.kubectl("create", "namespace", ns, check=False)
    kube = Pipelines()
    settings = MonitorSettings(drift_sample=20_000)
    database = Database(monitor_db)
    out: dict[str, Run] = {}
    try:
        for kind in scenarios.SCENARIOS:
            name = f"scn-{kind.replace('_', '-')}"
            cluster.kubectl("apply", "-f", "-", stdin=json.dumps(_pipeline_body(ns, name)))
            world = build(WorldConfig(kind=kind))
            write_predictions(monitor_db, world, model_name=name)
            lake = scenarios.lake_for(s3, name)
            write_outcomes(lake, world)
            outcomes = scenarios.run(
                scenarios.StaticReferences(world.reference),
                kube.get(ns, name),
                settings=settings,
                conns=lake,
                db=database,
                patcher=kube,
                training_in_flight=training_in_flight,
                refresh=lambda ns=ns, name=name: kube.get(ns, name),  # type: ignore[misc]
                step_hours=24,
            )
            out[kind] = Run(world, outcomes, kube.get(ns, name).annotations.get(ANNOTATION))
        yield out
    finally:
        database.close()


def _drifted(outcomes: list[Outcome]) -> dict[str, list[str]]:
    """Drifted features per evaluation (as-of date), where any drifted."""
    return {
        f"{o.evaluation.as_of:%m-%d}": o.evaluation.drift.drifted_features
        for o in outcomes
        if o.evaluation.drift and o.evaluation.drift.drifted_features
    }


def _reasons(run: Run) -> set[str]:
    return {r for o in run.outcomes for r in o.evaluation.decision.reasons}


def _requests(run: Run) -> list[Outcome]:
    return [o for o in run.outcomes if o.evaluation.decision.request]


def test_stable_world_asks_for_nothing(runs: dict[str, Run]) -> None:
    run = runs["stable"]
    assert len(run.outcomes) == 10
    assert _requests(run) == []
    assert run.annotation is None
    champion = run.outcomes[-1].evaluation.champion
    assert champion is not None
    assert champion.status == "ok"
    assert champion.auroc is not None
    assert champion.auroc.lower > FLOOR
    assert _drifted(run.outcomes) == {}


def test_concept_drift_gives_one_request_for_the_auroc_drop(runs: dict[str, Run]) -> None:
    run = runs["concept_drift"]
    requests = _requests(run)
    assert len(requests) == 1
    (req,) = requests
    assert "auroc_below_floor" in req.evaluation.decision.reasons
    assert req.evaluation.as_of > run.world.change_at
    delay = scenarios.delay_hours(run.outcomes, run.world.change_at, scenarios.requested)
    assert delay is not None
    assert delay <= 5 * 24
    assert run.annotation is not None
    assert json.loads(run.annotation)["evaluation"] == req.evaluation.id
    later = [o for o in run.outcomes if o.evaluation.as_of > req.evaluation.as_of]
    assert later
    assert all(o.evaluation.decision.suppressed == "training_in_flight" for o in later if o.evaluation.decision.reasons)
    assert _drifted(run.outcomes) == {}


def test_covariate_shift_drifts_temperature_and_nothing_else(runs: dict[str, Run]) -> None:
    run = runs["covariate_shift"]
    before = [o for o in run.outcomes if o.evaluation.as_of < run.world.change_at]
    assert _drifted(before) == {}
    drifted = {f for o in run.outcomes if o.evaluation.drift for f in o.evaluation.drift.drifted_features}
    assert drifted
    assert drifted <= TEMPERATURE
    assert "temperature_mean_6h" in drifted
    assert scenarios.delay_hours(run.outcomes, run.world.change_at, scenarios.temperature_drift) is not None


def test_calibration_drift_raises_the_oe_alarm_while_auroc_holds(runs: dict[str, Run]) -> None:
    run = runs["calibration_drift"]
    requests = _requests(run)
    assert len(requests) == 1
    (req,) = requests
    assert "calibration_out_of_bounds" in req.evaluation.decision.reasons
    assert "auroc_below_floor" not in _reasons(run)
    champion = req.evaluation.champion
    assert champion is not None
    assert champion.calibration is not None
    assert champion.calibration.oe_lower > 1.25
    assert _drifted(run.outcomes) == {}
