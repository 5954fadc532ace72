"""``make bench-train``: build a cohort big enough to mean something, build its training set, train
both families and print one ``name=value`` a line.

How it gets there fast: the generator's fault-free events are written as silver directly (no Kafka,
ingest or processor, which have their own benchmark) and featurized by the featurizer's own Spark code
into a snapshot in a private MinIO (``clinops_devstack.cohort``); vitals every 30 minutes keep Spark's
input small while every feature is still computed. The training set is then built exactly as a run
builds it (``job.load_data``: entity rows, point-in-time join with the leakage guard, purged time
split). Both families train with their defaults on the same parts, Platt-calibrated on validation,
and are evaluated on the test part beside the generator's oracle on the same rows.
``train_s_per_1m_rows_<family>`` trains again on 1,000,000 rows drawn with replacement from the
training part's model matrix (the same shape), with the same hyperparameters and validation part.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

import numpy as np

from clinops_common.contracts import TrainArgs
from clinops_common.features.definitions import feature_service
from clinops_common.model import Thresholds, fit_preprocessing, service_schema_ids
from clinops_common.model.package import ModelPackage
from clinops_common.synthetic import FaultRates, GeneratorConfig
from clinops_devstack.scratch import scratch_stack
from clinops_trainer import evaluation as ev
from clinops_trainer import families
from clinops_trainer.config import TrainerSettings
from clinops_trainer.job import FAMILIES, Data, load_data
from clinops_trainer.lake import Lake


def emit(name: str, value: float | int | str) -> None:
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    print(f"{name}={text}", flush=True)


def note(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--days", type=float, default=16)
    ap.add_argument("--vitals-interval-min", type=float, default=30)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--scale-rows", type=int, default=1_000_000, help="Rows of the scaling run (0: skip it).")
    ap.add_argument("--threads", type=int, default=2)
    opts = ap.parse_args(argv)

    from clinops_common.spark import spark_session
    from clinops_devstack.cohort import build_cohort

    cfg = GeneratorConfig(
        seed=opts.seed,
        patients=opts.patients,
        days=opts.days,
        start=datetime(2026, 1, 5, tzinfo=UTC),
        vitals_interval_min=opts.vitals_interval_min,
        faults=FaultRates.none(),
    )
    settings = TrainerSettings(threads=opts.threads)
    with scratch_stack(["minio"]) as stack:
        conns = stack.connections()
        t0 = time.monotonic()
        spark = spark_session(
            "clinops-bench-train",
            conns,
            settings=stack.spark("local[2]"),
            extra_conf={"spark.sql.shuffle.partitions": "4"},
        )
        spark.sparkContext.setLogLevel("ERROR")
        cohort = build_cohort(conns, spark, cfg, stroke=False)
        spark.stop()
        emit("cohort_build_s", time.monotonic() - t0)
        note(f"cohort: {cohort.patients} patients x {cohort.hours} h, silver rows {cohort.silver_rows}")

        args = TrainArgs(pipeline="bench", run_id="b", registered_model_name="bench", lookback_days=90)
        lake = Lake(conns, settings.oracle_key)
        t0 = time.monotonic()
        data = load_data(args, lake, lake.snapshot(None), settings, say=note)
        emit("build_training_set_s", time.monotonic() - t0)
    emit("rows", len(data.frame))
    emit("positives", int(data.y.sum()))
    emit("rows_unlabeled", data.unlabeled)
    emit("rows_purged", data.parts.purged)
    for part, count in data.counts.items():
        emit(f"rows_{part}", count["rows"])
        emit(f"positives_{part}", count["positives"])
    _train_and_report(data, args.feature_service, opts.threads, opts.scale_rows)


def _train_and_report(data: Data, service: str, threads: int, scale_rows: int) -> None:

    order = feature_service(service).feature_names
    tr, va, te = data.parts.train, data.parts.validation, data.parts.test
    pre = fit_preprocessing(data.frame.iloc[tr], order)
    shell = ModelPackage("bench", service, service_schema_ids(service), pre, Thresholds(0, 0), b"")
    x = pre.transform(shell.vectorize_frame(data.frame))
    y = data.y
    oracle = data.oracle[te]
    covered = ~np.isnan(oracle)
    emit("oracle_auroc", ev.auroc(y[te][covered], oracle[covered]))
    emit("brier_oracle", ev.brier(y[te][covered], oracle[covered]))

    results: dict[str, dict[str, float]] = {}
    for family in FAMILIES:
        t0 = time.monotonic()
        fitted = families.fit(family, x[tr], y[tr], x[va], y[va], {}, threads=threads)
        a, c = ev.platt(y[va], fitted.margin(x[va]))
        p = fitted.native_proba(x[te], a, c).astype(np.float64)
        emit(f"train_s_{family}", time.monotonic() - t0)
        m = ev.evaluate(y[te], p, samples=200)
        o = ev.oracle_comparison(y[te], p, data.oracle[te])
        results[family] = {**m, **o}
        emit(f"test_auroc_{family}", m["auroc"])
        emit(f"auroc_gap_to_oracle_{family}", o["auroc_gap_to_oracle"])
        emit(f"calibration_slope_{family}", m["calibration_slope"])
        emit(f"brier_{family}", m["brier"])
        emit(f"best_iteration_{family}", fitted.best_iteration)
    cand = results["pytorch-mlp"]  # the default modelFamily is the candidate
    emit("auroc_gap_to_oracle", cand["auroc_gap_to_oracle"])
    emit("calibration_slope", cand["calibration_slope"])
    emit("brier", cand["brier"])
    emit("mlp_minus_trees_auroc", cand["auroc"] - results["gradient-boosted-trees"]["auroc"])

    if scale_rows:
        rng = np.random.default_rng(0)
        idx = rng.choice(tr, scale_rows, replace=True)
        xs, ys = x[idx], y[idx]
        for family in FAMILIES:
            t0 = time.monotonic()
            fitted = families.fit(family, xs, ys, x[va], y[va], {}, threads=threads)
            seconds = time.monotonic() - t0
            emit(f"train_s_per_1m_rows_{family}", seconds * 1_000_000 / scale_rows)
            emit(f"scale_best_iteration_{family}", fitted.best_iteration)
        del xs, ys
    emit("threads", threads)


if __name__ == "__main__":
    main()
