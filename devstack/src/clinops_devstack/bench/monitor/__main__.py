"""``make bench-monitor``: one evaluation over 1,000,000 labelled window predictions, and the scenarios.

Prints one ``name=value`` per line. The window: 20,000 patients x 50 hourly batch predictions of one
model version (scores ~ Beta(1, 9), outcomes drawn from them), their 28-feature vectors (the
scenario worlds' feature order) in ``predictions``, outcomes in silver on a private MinIO, all on a
private PostgreSQL. ``monitor_eval_s`` is the first evaluation as of the window's end: reading the
window, the label join and writing 1,000,000 labels, AUROC with DeLong's interval, calibration, and
drift of a 50,000-prediction sample over every feature and the prediction. The scenario figures come
from the same four worlds the scenario tests run (evaluated every 24 hours, days 12 to 21).
``evidently_drift_s`` is Evidently 0.7.23's data-drift report (KS, then PSI, on every column) on the
same 50,000-prediction sample and reference, beside ``monitor_drift_s`` (ours: KS and PSI in one pass);
``load_average_1m`` follows each timing, since the machine may be shared.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta

import numpy as np
import pandas as pd

from clinops_common import db
from clinops_common.settings import Connections
from clinops_devstack import toolchain
from clinops_devstack.bench.monitor import scenarios
from clinops_devstack.bench.monitor.evidently_drift import evidently_drift_seconds
from clinops_devstack.bench.monitor.world import (
    FEATURES,
    START,
    World,
    WorldConfig,
    build,
    write_outcomes,
    write_predictions,
)
from clinops_devstack.scratch import scratch_stack
from clinops_devstack.settings import StackSettings
from clinops_monitor.adapters.postgres import Database
from clinops_monitor.config import MonitoringSpec, MonitorSettings, PipelineView
from clinops_monitor.core.drift import drift_report, quantile_bins
from clinops_monitor.core.evaluation import Reference
from clinops_monitor.job import drift_sample, run_evaluation

N_PATIENTS = int(os.environ.get("BENCH_MONITOR_PATIENTS", "20000"))
HOURS = 50
SCENARIO_FLOOR = 0.6
PARTS = os.environ.get("BENCH_MONITOR_PARTS", "eval,scenarios").split(",")


def _big_world(rng: np.random.Generator) -> World:
    n = N_PATIENTS * HOURS
    pid = np.repeat([f"PT{i:06d}" for i in range(N_PATIENTS)], HOURS)
    t = pd.Timestamp(START) + pd.to_timedelta(np.tile(np.arange(HOURS), N_PATIENTS), unit="h")
    score = rng.beta(1, 9, n)
    feats = {f: rng.normal(0, 1, n).astype(np.float32) for f in FEATURES}
    frame = pd.DataFrame({"patient_id": pid, "predicted_at": t, "score": score, **feats})
    frame["risk_level"] = np.where(score > 0.3, "HIGH", np.where(score > 0.15, "MEDIUM", "LOW"))
    frame["id"] = [str(uuid.uuid4()) for _ in range(n)]
    hit = rng.random(n) < score  # an event within the horizon of this prediction
    ev_t = frame.loc[hit, "predicted_at"] + pd.to_timedelta(rng.uniform(1, 86_000, int(hit.sum())), unit="s")
    outcomes = pd.DataFrame(
        {
            "event_id": [str(uuid.uuid4()) for _ in range(len(ev_t))],
            "patient_id": frame.loc[hit, "patient_id"].to_numpy(),
            "event_time": ev_t.to_numpy(),
            "source": "ehr-outcomes",
            "outcome_type": "adverse_event",
            "severity": "mild",
            "prediction_id": None,
        }
    )
    outcomes["ingested_at"] = outcomes["event_time"]
    # a late heartbeat outcome moves the watermark past every horizon
    last = pd.Timestamp(START) + timedelta(hours=HOURS + 40)
    outcomes.loc[len(outcomes)] = ["hb", "PT-none", last, "ehr-outcomes", "discharge_check", None, None, last]
    ref = {f: rng.normal(0, 1, 20_000) for f in FEATURES} | {"probability": rng.beta(1, 9, 20_000)}
    reference = Reference(FEATURES, ref, {c: quantile_bins(v) for c, v in ref.items()})
    return World(WorldConfig(), frame, reference, float("nan"), frame, outcomes)


def main() -> None:
    rng = np.random.default_rng(0)
    with scratch_stack(["postgres", "minio"]) as stack:
        conns = stack.connections()
        url = conns.database_url.get_secret_value()
        db.upgrade(url)
        if "eval" in PARTS:
            _one_evaluation(url, conns, rng)
        if "scenarios" in PARTS:
            _scenarios(url, conns)


def _one_evaluation(url: str, conns: Connections, rng: np.random.Generator) -> None:
    world = _big_world(rng)
    t0 = time.perf_counter()
    write_predictions(url, world, model_name="bench")
    lake = scenarios.lake_for(conns, "bench-lake")
    write_outcomes(lake, world)
    print(f"setup_write_s={time.perf_counter() - t0:.1f}", flush=True)
    view = PipelineView(namespace="default", name="bench", model_name="bench")
    database = Database(url)
    settings = MonitorSettings(allowed_lateness_hours=0)
    as_of = START + timedelta(hours=HOURS + 40)
    out = run_evaluation(
        view,
        as_of,
        settings=settings,
        conns=lake,
        db=database,
        references=scenarios.StaticReferences(world.reference),
        patcher=None,
    )
    champion = out.evaluation.champion
    print(f"monitor_eval_s={out.seconds:.2f}")
    print(f"load_average_1m={os.getloadavg()[0]:.1f}")
    print(f"predictions={champion.labelled if champion else 0}")
    print(f"labels_written={out.labels_written}")
    print(f"drift_sample={out.evaluation.drift_sample}")
    print(f"features_checked={len(out.evaluation.drift.features) if out.evaluation.drift else 0}")
    # the same sample again (seeded), through our drift and through Evidently's report
    start = as_of - timedelta(days=view.monitoring.window_days)
    current = drift_sample(
        database, "bench", "1", start=start, end=as_of, rows=N_PATIENTS * HOURS, size=settings.drift_sample
    )
    database.close()
    assert current is not None
    ref = world.reference
    t0 = time.perf_counter()
    drift_report(ref.sample, current, ref.features, ref.bins, psi_threshold=0.2, ks_p_value=0.01)
    print(f"monitor_drift_s={time.perf_counter() - t0:.2f}")
    theirs = evidently_drift_seconds(toolchain.evidently_python(StackSettings().cache), ref.sample, current)
    print(f"evidently_drift_s={theirs['ks'] + theirs['psi']:.2f}")
    print(f"evidently_ks_s={theirs['ks']:.2f}")
    print(f"evidently_psi_s={theirs['psi']:.2f}")
    print(f"load_average_1m={os.getloadavg()[0]:.1f}")


def _scenarios(url: str, conns: Connections) -> None:
    database = Database(url)
    settings = MonitorSettings(drift_sample=20_000)
    found: dict[str, float | None] = {}
    stable_requests, stable_evals, pre_change_requests, pre_change_evals = 0, 0, 0, 0
    for kind in scenarios.SCENARIOS:
        name = f"bench-{kind.replace('_', '-')}"
        world = build(WorldConfig(kind=kind))
        write_predictions(url, world, model_name=name)
        lake = scenarios.lake_for(conns, name)
        write_outcomes(lake, world)
        # the scenario tests' FeaturePipeline: floor 0.6, 7-day window, 200 outcomes
        monitoring = MonitoringSpec(aurocFloor=SCENARIO_FLOOR, windowDays=7, minOutcomes=200)
        view = PipelineView(namespace="default", name=name, model_name=name, monitoring=monitoring)
        outs = scenarios.run(
            world,
            view,
            settings=settings,
            conns=lake,
            db=database,
            patcher=None,
            training_in_flight=lambda _p, last: last is not None,  # no operator: a request stays in flight
            step_hours=24,
        )
        before = [o for o in outs if o.evaluation.as_of < world.change_at]
        pre_change_evals += len(before)
        pre_change_requests += sum(scenarios.requested(o) for o in before)
        if kind == "stable":
            stable_evals, stable_requests = len(outs), sum(scenarios.requested(o) for o in outs)
        elif kind == "covariate_shift":
            found[kind] = scenarios.delay_hours(outs, world.change_at, scenarios.temperature_drift)
        else:
            found[kind] = scenarios.delay_hours(outs, world.change_at, scenarios.requested)
    database.close()
    evals = stable_evals + pre_change_evals
    print(f"false_alarms_per_100_evaluations={100 * (stable_requests + pre_change_requests) / max(evals, 1):.1f}")
    print(f"false_alarm_evaluations={evals}")
    for kind, short in (
        ("concept_drift", "concept"),
        ("covariate_shift", "covariate"),
        ("calibration_drift", "calibration"),
    ):
        v = found.get(kind)
        print(f"detection_delay_h_{short}={'not-detected' if v is None else f'{v:.0f}'}")


if __name__ == "__main__":
    main()
