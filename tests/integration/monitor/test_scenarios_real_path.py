"""Scenario tests: generated worlds whose change is known, run through the product's own stages and
evaluated along a simulated clock.

Each world (the generator with its scenario switch: 200 patients, 15 days, the change at day 10) is
written to silver in its own lake, featurized by the featurizer's batch job, and batch-scored by
``clinops_scorer.batch`` from day 7 on with one model: the trainer's, trained on the stable world's
first 7 days (``clinops_devstack.bench.monitor.pipeline``). Each world's FeaturePipeline lives on the
local control plane; the monitor reads the champion and its training reference from MLflow and
evaluates each world as of every 24 hours from day 8 to day 15: it must see each change and only
what changed.

The AUROC floor is set from the model: its test AUROC less ``FLOOR_MARGIN`` (the example manifests
set theirs from the oracle's AUROC the same way).

Not part of ``make test`` yet: the stable world asks for retraining (its cohort, admitted at the
start, only ages: README, Monitor, Scenarios); the whole build takes about 4 minutes on a quiet
machine. ``make test-scenarios`` runs this file (``CLINOPS_SCENARIOS_REAL_PATH=1``);
``test_scenarios.py`` keeps the fast stand-in in the suite.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import yaml

from clinops_common.settings import Connections
from clinops_devstack.bench.monitor import pipeline, scenarios
from clinops_devstack.settings import REPO_ROOT
from clinops_monitor.adapters.kube import Pipelines, training_in_flight
from clinops_monitor.adapters.postgres import Database
from clinops_monitor.adapters.reference import MlflowReferences
from clinops_monitor.config import MonitorSettings
from clinops_monitor.core.decision import ANNOTATION
from clinops_monitor.job import Outcome

FLOOR_MARGIN = 0.08
WINDOW_DAYS = 7
# The module's fixture builds four worlds and a model inside the first test's timeout.
pytestmark = [
    pytest.mark.timeout(3600),
    pytest.mark.skipif(
        os.environ.get("CLINOPS_SCENARIOS_REAL_PATH") != "1",
        reason="five Spark featurizer runs, beyond make test's budget: make test-scenarios runs them",
    ),
]


def temperature(feature: str) -> bool:
    return "temperature" in feature  # temperature_*, hr_x_temperature


@dataclass
class Run:
    world: pipeline.PathWorld
    outcomes: list[Outcome]
    annotation: str | None


@dataclass
class Scenarios:
    model: pipeline.PathModel
    floor: float
    runs: dict[str, Run]
    hours_scored: int  # (patient, hour) steps each world's batch scoring must score


def _pipeline_body(namespace: str, name: str, model_name: str, floor: float) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO_ROOT / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["training"]["registeredModelName"] = model_name
    body["spec"]["monitoring"] = {"aurocFloor": floor, "windowDays": WINDOW_DAYS, "minOutcomes": 200}
    return body


@pytest.fixture(scope="module")
def worlds(cluster: Any, spark: Any, s3: Connections, database_url: str, mlflow_url: str) -> Scenarios:
    ns = "monitor-scenarios"
    cluster.kubectl("create", "namespace", ns, check=False)
    cfg = pipeline.PathConfig()
    model, built = pipeline.build(spark, s3, database_url, mlflow_url, cfg=cfg)
    assert model.result.test_auroc is not None
    floor = round(model.result.test_auroc - FLOOR_MARGIN, 2)
    kube = Pipelines()
    references = MlflowReferences(mlflow_url)
    settings = MonitorSettings(drift_sample=20_000)
    runs: dict[str, Run] = {}
    for kind, world in built.items():
        name = f"scn-{kind.replace('_', '-')}"
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(_pipeline_body(ns, name, model.name, floor)))
        database = Database(world.database_url)
        try:
            outcomes = scenarios.run(
                references,
                kube.get(ns, name),
                settings=settings,
                conns=world.lake,
                db=database,
                patcher=kube,
                training_in_flight=training_in_flight,
                refresh=lambda ns=ns, name=name: kube.get(ns, name),  # type: ignore[misc]
                step_hours=24,
                start_day=cfg.evaluate_days[0],
                end_day=cfg.evaluate_days[1],
            )
        finally:
            database.close()
        runs[kind] = Run(world, outcomes, kube.get(ns, name).annotations.get(ANNOTATION))
    for label, run in runs.items():  # what the monitor saw, beside the oracle on the same rows
        for o in run.outcomes:
            ev, c = o.evaluation, o.evaluation.champion
            oracle = pipeline.oracle_auroc(run.world, model.name, ev.as_of - timedelta(days=WINDOW_DAYS), ev.as_of)
            print(
                f"{label} {ev.as_of:%m-%d} auroc={c.auroc.value if c and c.auroc else None} oracle={oracle} "
                f"oe={c.calibration.oe if c and c.calibration else None} reasons={list(ev.decision.reasons)} "
                f"drifted={ev.drift.drifted_features if ev.drift else None}"
            )
    return Scenarios(model, floor, runs, cfg.patients * (cfg.days - cfg.score_from_day) * 24)


def _drifted(outcomes: list[Outcome]) -> dict[str, set[str]]:
    """Drifted features per evaluation (as-of date)."""
    return {
        f"{o.evaluation.as_of:%m-%d}": set(o.evaluation.drift.drifted_features) if o.evaluation.drift else set()
        for o in outcomes
    }


def _beyond_stable(s: Scenarios, kind: str) -> dict[str, set[str]]:
    """Features that drift in the world but not in the stable world as of the same time."""
    stable = _drifted(s.runs["stable"].outcomes)
    return {d: f - stable.get(d, set()) for d, f in _drifted(s.runs[kind].outcomes).items() if f - stable.get(d, set())}


def _reasons(run: Run) -> set[str]:
    return {r for o in run.outcomes for r in o.evaluation.decision.reasons}


def _requests(run: Run) -> list[Outcome]:
    return [o for o in run.outcomes if o.evaluation.decision.request]


def test_the_model_comes_from_the_trainer_and_every_world_is_batch_scored(worlds: Scenarios) -> None:
    r = worlds.model.result
    assert r.promoted
    assert r.test_auroc is not None
    assert r.metrics["oracle_auroc"] > r.test_auroc - 0.05  # the oracle is a reference, measured on the same rows
    for run in worlds.runs.values():
        assert run.world.scoring is not None
        assert run.world.scoring.scored == worlds.hours_scored  # every patient, every hour from score_from_day
        assert run.world.scoring.written == run.world.scoring.scored


def test_stable_world_asks_for_nothing(worlds: Scenarios) -> None:
    run = worlds.runs["stable"]
    assert len(run.outcomes) == 8
    assert _requests(run) == []
    assert run.annotation is None
    champion = run.outcomes[-1].evaluation.champion
    assert champion is not None
    assert champion.status == "ok"
    assert champion.auroc is not None
    assert champion.auroc.lower > worlds.floor
    assert not any(o.evaluation.decision.drift_flag for o in run.outcomes)


def test_concept_drift_gives_one_request_for_the_auroc_drop(worlds: Scenarios) -> None:
    m = worlds.model.result.metrics
    if m["test_auroc_ci_low"] <= 0.5:  # seen with vitals every 4 h: 0.525 [0.491, 0.564], the oracle 0.686
        pytest.xfail(
            f"the trainer's model ranks no better than chance on its own test rows (AUROC interval from "
            f"{m['test_auroc_ci_low']:.3f}; the oracle {m['oracle_auroc']:.3f}): it has no AUROC to lose"
        )
    run = worlds.runs["concept_drift"]
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
    assert _beyond_stable(worlds, "concept_drift") == {}


def test_covariate_shift_drifts_temperature_and_nothing_else(worlds: Scenarios) -> None:
    run = worlds.runs["covariate_shift"]
    before = {o for o in run.outcomes if o.evaluation.as_of < run.world.change_at}
    beyond = _beyond_stable(worlds, "covariate_shift")
    assert all(f"{o.evaluation.as_of:%m-%d}" not in beyond for o in before)
    extra = set().union(*beyond.values()) if beyond else set()
    assert extra
    assert all(temperature(f) for f in extra), extra
    assert "temperature_mean_6h" in extra
    assert scenarios.delay_hours(run.outcomes, run.world.change_at, scenarios.temperature_drift) is not None


def test_calibration_drift_raises_the_oe_alarm_while_auroc_holds(worlds: Scenarios) -> None:
    run = worlds.runs["calibration_drift"]
    requests = _requests(run)
    assert len(requests) == 1
    (req,) = requests
    assert "calibration_out_of_bounds" in req.evaluation.decision.reasons
    assert "auroc_below_floor" not in _reasons(run)
    champion = req.evaluation.champion
    assert champion is not None
    assert champion.calibration is not None
    assert champion.calibration.oe_lower > 1.25
    assert _beyond_stable(worlds, "calibration_drift") == {}
