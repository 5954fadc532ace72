"""``make bench-monitor``: one evaluation over 1,000,000 labelled window predictions, and the scenarios.

Prints one ``name=value`` per line. The window (``window.py``): 20,000 patients x 50 hourly batch
predictions of one model version (scores ~ Beta(1, 9), outcomes drawn from them), their 28-feature
vectors (the scenario worlds' feature order) in ``predictions``, outcomes in silver on a private
MinIO, all on a private PostgreSQL. ``monitor_eval_s`` is the first evaluation as of the window's end:
reading the window, the label join and writing 1,000,000 labels, AUROC with DeLong's interval,
calibration, and drift of a 50,000-prediction sample over every feature and the prediction; each of
its steps follows (``monitor_eval_<step>_s``), then AUROC and calibration timed alone, and the label
insert side by side with revision 0004's foreign key, revision 0005's per-statement check and none
(``labels_insert_*_s``). ``evidently_drift_s`` is Evidently 0.7.23's data-drift report (KS, then
PSI, on every column) on the same 50,000-prediction sample and reference, beside ``monitor_drift_s``
(ours: KS and PSI in one pass). The scenario figures come from the same four worlds the scenario
tests run (evaluated every 24 hours, days 12 to 21). ``load_average_1m`` follows each timing, since
the machine may be shared. ``BENCH_MONITOR_PARTS=eval`` or ``scenarios`` runs one part.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import numpy as np
import sqlalchemy as sa

from clinops_common import db
from clinops_common.settings import Connections
from clinops_devstack import toolchain
from clinops_devstack.bench.monitor import scenarios, window
from clinops_devstack.bench.monitor.evidently_drift import evidently_drift_seconds
from clinops_devstack.bench.monitor.world import START, WorldConfig, build, write_outcomes, write_predictions
from clinops_devstack.scratch import scratch_stack
from clinops_devstack.settings import StackSettings
from clinops_monitor.adapters.postgres import Database
from clinops_monitor.config import MonitoringSpec, MonitorSettings, PipelineView
from clinops_monitor.core.calibration import calibration
from clinops_monitor.core.discrimination import auroc
from clinops_monitor.core.drift import drift_report
from clinops_monitor.job import drift_sample, run_evaluation

N_PATIENTS = int(os.environ.get("BENCH_MONITOR_PATIENTS", "20000"))
HOURS = 50
SCENARIO_FLOOR = 0.6
PARTS = os.environ.get("BENCH_MONITOR_PARTS", "eval,scenarios").split(",")


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


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _one_evaluation(url: str, conns: Connections, rng: np.random.Generator) -> None:
    big = window.world(rng, N_PATIENTS, HOURS)
    t0 = time.perf_counter()
    window.write(url, big, model_name="bench")
    lake = scenarios.lake_for(conns, "bench-lake")
    write_outcomes(lake, big)
    _analyze(url)
    print(f"setup_write_s={time.perf_counter() - t0:.1f}", flush=True)
    view = PipelineView(namespace="default", name="bench", model_name="bench")
    database = Database(url)
    settings = MonitorSettings(allowed_lateness_hours=0)
    as_of = START + timedelta(hours=HOURS + 40)
    print(f"load_average_1m={_load()}", flush=True)
    out = run_evaluation(
        view,
        as_of,
        settings=settings,
        conns=lake,
        db=database,
        references=scenarios.StaticReferences(big.reference),
        patcher=None,
    )
    champion = out.evaluation.champion
    print(f"monitor_eval_s={out.seconds:.2f}")
    for step, seconds in out.steps.items():
        print(f"monitor_eval_{step}_s={seconds:.2f}")
    print(f"load_average_1m={_load()}")
    print(f"predictions={champion.labelled if champion else 0}")
    print(f"labels_written={out.labels_written}")
    print(f"drift_sample={out.evaluation.drift_sample}")
    print(f"features_checked={len(out.evaluation.drift.features) if out.evaluation.drift else 0}", flush=True)
    # the parts of "compute" on the same rows, one at a time
    labelled = database.labelled("bench", as_of - timedelta(days=view.monitoring.window_days), as_of)
    y, p = labelled["label"].to_numpy(), labelled["score"].to_numpy()
    t0 = time.perf_counter()
    auroc(y, p)
    print(f"auroc_with_interval_s={time.perf_counter() - t0:.2f}")
    t0 = time.perf_counter()
    calibration(y, p)
    print(f"calibration_s={time.perf_counter() - t0:.2f}", flush=True)
    # the same sample again (seeded), through our drift and through Evidently's report
    start = as_of - timedelta(days=view.monitoring.window_days)
    current = drift_sample(
        database, "bench", "1", start=start, end=as_of, rows=N_PATIENTS * HOURS, size=settings.drift_sample
    )
    database.close()
    assert current is not None
    ref = big.reference
    t0 = time.perf_counter()
    drift_report(ref.sample, current, ref.features, ref.bins, psi_threshold=0.2, ks_p_value=0.01)
    print(f"monitor_drift_s={time.perf_counter() - t0:.2f}")
    print(f"drift_sample_rows={len(current['probability'])}")
    theirs = evidently_drift_seconds(toolchain.evidently_python(StackSettings().cache), ref.sample, current)
    print(f"evidently_drift_s={theirs['ks'] + theirs['psi']:.2f}")
    print(f"evidently_ks_s={theirs['ks']:.2f}")
    print(f"evidently_psi_s={theirs['psi']:.2f}")
    print(f"load_average_1m={_load()}", flush=True)
    _integrity_side_by_side(url)


def _analyze(url: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE predictions"))
    engine.dispose()


# The labels just written, copied again into three tables alike but for the integrity check: revision
# 0004's per-row foreign key, revision 0005's per-statement check, none. Same rows, same order, one run.
INTEGRITY = {
    "foreign_key": "ALTER TABLE {t} ADD FOREIGN KEY (prediction_id, predicted_at)"
    " REFERENCES predictions (id, predicted_at)",
    "statement_check": "CREATE TRIGGER {t}_check AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_labels"
    " FOR EACH STATEMENT EXECUTE FUNCTION clinops_check_labels_name_predictions()",
    "unchecked": "",
}


def _integrity_side_by_side(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        for name, ddl in INTEGRITY.items():
            table = f"bench_labels_{name}"
            with engine.begin() as conn:
                conn.execute(sa.text(f"CREATE TABLE {table} (LIKE prediction_outcomes INCLUDING ALL)"))
                if ddl:
                    conn.execute(sa.text(ddl.format(t=table)))
            with engine.begin() as conn:
                t0 = time.perf_counter()
                copy = f"INSERT INTO {table} SELECT * FROM prediction_outcomes ORDER BY prediction_id"  # noqa: S608
                conn.execute(sa.text(copy))
                seconds = time.perf_counter() - t0
            print(f"labels_insert_{name}_s={seconds:.2f}")
            print(f"load_average_1m={_load()}", flush=True)
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE {table}"))
    finally:
        engine.dispose()


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
