"""One training run: snapshot -> training set -> split -> fit -> evaluate -> log -> register -> gate.

Nothing is registered before the model has been evaluated and exported; registration, the champion's
re-scoring, the gate and the alias move happen last, and any failure (or SIGTERM) in that section
deletes the version it created, so a failed run leaves the registry and the alias as they were.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from clinops_common.contracts import TrainArgs, TrainResult, write_result
from clinops_common.features.definitions import (
    STROKE_EXCLUDED,
    STROKE_HORIZON,
    UnknownFeatureService,
    feature_service,
)
from clinops_common.features.offline import Snapshot, SnapshotNotFound
from clinops_common.model import (
    ModelInputError,
    ModelPackage,
    ModelPackageError,
    Thresholds,
    build_reference,
    fit_preprocessing,
    load_version,
    service_schema_ids,
)
from clinops_common.model.mlflow_model import log_package, log_reference
from clinops_common.settings import TrainingConnections
from clinops_common.storage import s3_client
from clinops_trainer import evaluation as ev
from clinops_trainer import families, plots
from clinops_trainer.config import TrainerSettings
from clinops_trainer.gate import ChampionScore, decide
from clinops_trainer.importance import gain_importance, permutation_importance
from clinops_trainer.lake import STROKE_LABEL, Lake, attach_oracle, attach_patient_oracle
from clinops_trainer.split import Parts, SplitError, check_parts, grouped_split, time_split
from clinops_trainer.thresholds import confusion, set_thresholds
from clinops_trainer.tracking import PIPELINE_TAG, RESULT_TAG, RUN_TAG, Tracking, TrackingUnavailable

FAMILIES = ("pytorch-mlp", "gradient-boosted-trees")
# Fields of the stroke cohort that encode its label: never features of a stroke model.
STROKE_LABEL_FIELDS = frozenset(
    {
        STROKE_LABEL,
        "stroke_occurred",
        "stroke_date",
        "days_since_stroke",
        "stroke_severity",
        "recovery_status",
        "stroke_probability",
    }
)

Say = Callable[[str], None]


class TrainingError(RuntimeError):
    """A run that cannot train: the message says why; nothing was registered."""


class Terminated(BaseException):
    """SIGTERM arrived: abandon the run (MLflow status KILLED), register nothing."""


@dataclass
class Data:
    frame: pd.DataFrame  # entity columns, features, label (labelled rows only)
    y: np.ndarray
    oracle: np.ndarray
    parts: Parts
    counts: dict[str, dict[str, int]]
    unlabeled: int
    in_window: int
    data_end: str


def check_stroke_service(name: str, features: Iterable[str]) -> None:
    """A stroke model's feature service holds no field that encodes the label and no sensitive field."""
    feats = set(features)
    leaks = sorted(feats & STROKE_LABEL_FIELDS)
    if leaks:
        raise TrainingError(f"feature service {name!r} holds fields that encode the label: {leaks}")
    sensitive = sorted(feats & set(STROKE_EXCLUDED))
    if sensitive:
        raise TrainingError(f"feature service {name!r} holds sensitive fields (never model inputs): {sensitive}")


def _package_version() -> str:
    return metadata.version("clinops-trainer")


def load_data(args: TrainArgs, lake: Lake, snap: Snapshot, settings: TrainerSettings, say: Say) -> Data:
    svc = feature_service(args.feature_service)
    fractions = (args.split.train, args.split.validation, args.split.test)
    horizon = timedelta(hours=settings.label_horizon_hours)
    if args.label == STROKE_LABEL:
        check_stroke_service(svc.name, svc.feature_names)
        visits = lake.stroke_entities(snap)
        say(
            f"stroke training rows: {visits.in_window} visits before a stroke in the stroke_label view of snapshot "
            f"{snap.snapshot_id}; {visits.unlabeled} within {STROKE_HORIZON.days} days of the as-of date "
            f"{visits.end} (outcome not known yet) left out"
        )
        if visits.rows.empty:
            raise TrainingError(
                f"no labelled stroke rows in snapshot {snap.snapshot_id}: {visits.in_window} visits, "
                f"{visits.unlabeled} of them within the horizon of the as-of date"
            )
        ents = visits.rows[["patient_id", "event_timestamp"]]
        say(f"point-in-time join of {len(ents)} visits x {len(svc.refs)} features ({svc.name})")
        labelled = lake.training_frame(ents, svc.name, snap, label=None)
        labelled[STROKE_LABEL] = visits.rows[STROKE_LABEL].to_numpy()
        in_window, unlabeled = visits.in_window, visits.unlabeled
        y = labelled[STROKE_LABEL].to_numpy(dtype=np.int8)
        oracle = attach_patient_oracle(labelled, lake.stroke_oracle())
        seed = int(args.hyperparameters.get("seed", 0))
        parts = grouped_split(labelled["patient_id"], y, fractions, seed)
        data_end = str(visits.end)
    else:
        ents = lake.streaming_entities(snap, timedelta(days=args.lookback_days), horizon)
        say(
            f"entity rows: {ents.in_window} (patient, hour) steps in the {args.lookback_days}-day lookback to "
            f"{ents.end}; {ents.unlabeled} unlabeled (horizon past the end of the data) left out"
        )
        if ents.rows.empty:
            raise TrainingError(
                f"no labelled rows in snapshot {snap.snapshot_id}: {ents.in_window} steps in the lookback window, "
                f"{ents.unlabeled} of them unlabeled"
            )
        say(f"point-in-time join of {len(ents.rows)} rows x {len(svc.refs)} features ({svc.name})")
        frame = lake.training_frame(ents.rows, svc.name, snap, args.label)
        labelled = frame[frame[args.label].notna()].reset_index(drop=True)
        unlabeled = ents.unlabeled + (len(frame) - len(labelled))
        in_window = ents.in_window
        y = labelled[args.label].to_numpy(dtype=np.int8)
        oracle = attach_oracle(labelled, lake.oracle())
        parts = time_split(labelled["event_timestamp"], fractions, horizon)
        data_end = str(ents.end)
    if len(labelled) == 0:
        raise TrainingError(f"the training set is empty: {in_window} rows, {unlabeled} unlabeled")
    counts = check_parts(parts, y)
    say(
        "split: "
        + ", ".join(f"{k} {v['rows']} rows / {v['positives']} positives" for k, v in counts.items())
        + f"; {parts.purged} purged"
    )
    return Data(labelled, y, oracle, parts, counts, unlabeled, in_window, data_end)


@dataclass
class Trained:
    fitted: families.Fitted
    platt: tuple[float, float]
    p_val: np.ndarray
    p_test: np.ndarray


@dataclass
class Context:
    """What one run works with, passed to each of its steps."""

    args: TrainArgs
    settings: TrainerSettings
    tracking: Tracking
    lake: Lake
    snap: Snapshot
    data: Data
    say: Say
    mlflow_run_id: str = ""

    @property
    def baseline_family(self) -> str:
        """The other family, or "" where its library is not installed (torch, in the clinops image)."""
        return baseline_family(self.args.model_family, families.available)


@dataclass
class Candidate:
    pkg: ModelPackage
    raw: np.ndarray  # raw matrix of every labelled row (package feature order)
    p_val: np.ndarray  # the package's outputs on validation and test rows
    p_test: np.ndarray
    test: dict[str, float]
    oracle: dict[str, float]
    baseline_p_test: np.ndarray
    baseline_test: dict[str, float]
    importance: dict[str, float]
    importance_kind: str
    history: list[dict[str, float]]


def baseline_family(model_family: str, available: Callable[[str], bool]) -> str:
    """The baseline beside ``model_family``: the other family where ``available`` says its library is
    installed, else "" (no baseline; the candidate is trained, evaluated and gated all the same)."""
    other = next(f for f in FAMILIES if f != model_family)
    return other if available(other) else ""


def _fit_and_calibrate(ctx: Context, family: str, hp: dict[str, Any], x: np.ndarray) -> Trained:
    d = ctx.data
    tr, va, te = d.parts.train, d.parts.validation, d.parts.test

    def progress(step: int, row: dict[str, float]) -> None:
        ctx.tracking.metrics(row, step=step)
        ctx.say(f"  {family} step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()))

    is_candidate = family == ctx.args.model_family
    fitted = families.fit(
        family,
        x[tr],
        d.y[tr],
        x[va],
        d.y[va],
        hp,
        threads=ctx.settings.threads,
        progress=progress if is_candidate else None,
    )
    a, c = ev.platt(d.y[va], fitted.margin(x[va]))
    return Trained(fitted, (a, c), fitted.native_proba(x[va], a, c), fitted.native_proba(x[te], a, c))


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def existing_result(tracking: Tracking, args: TrainArgs) -> TrainResult | None:
    mv = tracking.version_for_run(args.registered_model_name, args.pipeline, args.run_id)
    if mv is None or RESULT_TAG not in mv.tags:
        return None
    result = TrainResult.model_validate_json(mv.tags[RESULT_TAG])
    champion = tracking.champion(args.registered_model_name)
    return result.model_copy(update={"promoted": champion == result.model_version})


def train(args: TrainArgs, conns: TrainingConnections, settings: TrainerSettings, say: Say) -> TrainResult:
    """Run the stage; raises ``TrainingError`` (clear message) or ``Terminated``."""
    if args.model_family not in FAMILIES:
        raise TrainingError(f"unknown model family {args.model_family!r}; known: {FAMILIES}")
    if not families.available(args.model_family):
        lib = families.LIBRARY[args.model_family]
        raise TrainingError(
            f"the {args.model_family} family needs {lib}, which this environment lacks: "
            "run the trainer in the clinops-trainer image"
        )
    try:
        svc = feature_service(args.feature_service)
    except UnknownFeatureService as err:
        raise TrainingError(str(err.args[0])) from None
    try:
        tracking = Tracking(conns.mlflow_tracking_uri)
    except TrackingUnavailable as err:
        raise TrainingError(str(err)) from None
    done = existing_result(tracking, args)
    if done is not None:
        say(
            f"run {args.run_id} of {args.pipeline} already registered version {done.model_version} "
            f"of {done.model_name}: nothing to do"
        )
        return done
    lake = Lake(conns, settings.oracle_key)
    try:
        snap = lake.snapshot(args.snapshot_id)
        say(f"snapshot {snap.snapshot_id}")
        data = load_data(args, lake, snap, settings, say)
    except SnapshotNotFound as err:
        raise TrainingError(str(err)) from None
    except SplitError as err:
        raise TrainingError(f"cannot split the training set: {err}") from None
    except OSError as err:
        raise TrainingError(f"cannot read the lake at {conns.s3_endpoint_url}: {err}") from None

    ctx = Context(args, settings, tracking, lake, snap, data, say)
    ctx.mlflow_run_id = tracking.start(
        args.pipeline,
        f"{args.pipeline}-{args.run_id}",
        {
            PIPELINE_TAG: args.pipeline,
            RUN_TAG: args.run_id,
            "clinops.snapshot_id": snap.snapshot_id,
            "clinops.package_version": _package_version(),
            "clinops.model_family": args.model_family,
            "clinops.baseline_family": ctx.baseline_family or "none",
            "clinops.feature_service": svc.name,
            "clinops.label": args.label,
            "clinops.registered_model_name": args.registered_model_name,
        },
    )
    say(f"MLflow run {ctx.mlflow_run_id} in experiment clinops/{args.pipeline}")
    status = "FAILED"
    try:
        cand = _train_and_evaluate(ctx)
        _log_artifacts(ctx, cand)
        result = _register_and_gate(ctx, cand)
        status = "FINISHED"
        return result
    except Terminated:
        status = "KILLED"
        raise
    finally:
        tracking.end(status)


def _log_params(ctx: Context, width: int) -> None:
    args, d = ctx.args, ctx.data
    svc = feature_service(args.feature_service)
    ctx.tracking.params(
        {
            "model_family": args.model_family,
            "baseline_family": ctx.baseline_family or "none",
            **{f"hp.{k}": v for k, v in args.hyperparameters.items()},
            "split.train": args.split.train,
            "split.validation": args.split.validation,
            "split.test": args.split.test,
            "split.rule": d.parts.rule[:500],
            **{f"split.{k}_times": v for k, v in d.parts.bounds.items()},
            "purge_hours": ctx.settings.label_horizon_hours if args.label != STROKE_LABEL else 0,
            "lookback_days": args.lookback_days,
            "feature_service": svc.name,
            **{f"schema_id.{v}": s for v, s in service_schema_ids(svc.name).items()},
            "label": args.label,
            "snapshot_id": ctx.snap.snapshot_id,
            "data_end": d.data_end,
            "feature_count": len(svc.feature_names),
            "model_columns": width,
            "calibration": "Platt scaling fitted on the validation part",
            "min_auroc": args.min_auroc,
            "must_beat_champion": args.must_beat_champion,
        }
    )
    ctx.tracking.metrics(
        {
            **{f"rows_{k}": v["rows"] for k, v in d.counts.items()},
            **{f"positives_{k}": v["positives"] for k, v in d.counts.items()},
            "rows_unlabeled": d.unlabeled,
            "rows_purged": d.parts.purged,
            "rows_in_window": d.in_window,
        }
    )


def _train_and_evaluate(ctx: Context) -> Candidate:
    args, d, settings, say = ctx.args, ctx.data, ctx.settings, ctx.say
    svc = feature_service(args.feature_service)
    order = svc.feature_names
    schema_ids = service_schema_ids(svc.name)
    va, te = d.parts.validation, d.parts.test
    pre = fit_preprocessing(d.frame.iloc[d.parts.train], order)
    shell = ModelPackage(args.registered_model_name, svc.name, schema_ids, pre, Thresholds(0, 0), b"")
    raw = shell.vectorize_frame(d.frame)
    x = pre.transform(raw)
    say(f"preprocessing fitted on the training part: {len(order)} features -> {pre.width} model columns")
    _log_params(ctx, pre.width)

    say(f"training the candidate ({args.model_family}) on {len(d.parts.train)} rows")
    cand = _fit_and_calibrate(ctx, args.model_family, args.hyperparameters, x)
    a, c = cand.platt
    pkg = ModelPackage(
        name=args.registered_model_name,
        feature_service=svc.name,
        schema_ids=schema_ids,
        preprocessing=pre,
        thresholds=set_thresholds(d.y[va], cand.p_val),
        onnx_model=cand.fitted.onnx(a, c),
        model_family=args.model_family,
        label=args.label,
        metadata={"snapshot_id": ctx.snap.snapshot_id, "pipeline": args.pipeline, "run_id": args.run_id},
    )
    p_test = pkg.predict_proba(raw[te])
    gap = float(np.max(np.abs(p_test.astype(np.float64) - cand.p_test.astype(np.float64))))
    if gap > settings.onnx_tolerance:
        raise TrainingError(
            f"the ONNX export differs from the native model by {gap:.2e} on the test rows (Platt slope {a:.3g}, "
            f"intercept {c:.3g}: a large slope, from a candidate that barely separates the validation rows, "
            "multiplies float32 rounding; more labelled data or another family)"
        )
    p_val = pkg.predict_proba(raw[va])
    y_te = d.y[te]
    test = ev.evaluate(y_te, p_test, samples=settings.bootstrap_samples)
    oracle = ev.oracle_comparison(y_te, p_test.astype(np.float64), d.oracle[te])
    ctx.tracking.params({f"effective.{k}": v for k, v in cand.fitted.params.items()})
    ctx.tracking.metrics(
        {
            **_prefixed("test_", test),
            **oracle,
            "onnx_max_abs_diff": gap,
            "val_auroc_best": ev.auroc(d.y[va], p_val),
            "best_iteration": cand.fitted.best_iteration,
            "platt_a": a,
            "platt_c": c,
            "threshold_medium": pkg.thresholds.medium,
            "threshold_high": pkg.thresholds.high,
        }
    )
    say(
        f"test AUROC {test['auroc']:.4f} [{test['auroc_ci_low']:.4f}, {test['auroc_ci_high']:.4f}], "
        f"Brier {test['brier']:.4f}, calibration slope {test['calibration_slope']:.2f}"
        + (f"; oracle AUROC {oracle['oracle_auroc']:.4f} (gap {oracle['auroc_gap_to_oracle']:+.4f})" if oracle else "")
    )

    base_p_test = np.full(len(y_te), np.nan)
    base_test: dict[str, float] = {}
    if ctx.baseline_family:
        say(f"training the baseline ({ctx.baseline_family}, its defaults)")
        seed = {"seed": args.hyperparameters["seed"]} if "seed" in args.hyperparameters else {}
        base_p_test = _fit_and_calibrate(ctx, ctx.baseline_family, seed, x).p_test
        base_test = ev.evaluate(y_te, base_p_test.astype(np.float64), samples=settings.bootstrap_samples)
        ctx.tracking.metrics(_prefixed("baseline_test_", base_test))
        say(f"baseline test AUROC {base_test['auroc']:.4f}")
    else:
        other = next(f for f in FAMILIES if f != args.model_family)
        say(f"no baseline: {other} needs {families.LIBRARY[other]}, not installed here (clinops-trainer has it)")

    if args.model_family == "pytorch-mlp":
        importance = permutation_importance(pkg.predict_proba, raw[va], d.y[va], order, rows=settings.importance_rows)
        kind = "permutation importance (AUROC drop, validation)"
    else:
        importance = gain_importance(cand.fitted.gain, pre)
        kind = "total gain"
    return Candidate(
        pkg, raw, p_val, p_test, test, oracle, base_p_test, base_test, importance, kind, cand.fitted.history
    )


def _log_artifacts(ctx: Context, cand: Candidate) -> None:
    d, tracking = ctx.data, ctx.tracking
    va, te = d.parts.validation, d.parts.test
    y_te = d.y[te]
    order = list(cand.pkg.feature_order)
    curves: dict[str, np.ndarray] = {ctx.args.model_family: cand.p_test}
    if ctx.baseline_family:
        curves[f"baseline {ctx.baseline_family}"] = cand.baseline_p_test
    if np.all(~np.isnan(d.oracle[te])):
        curves["oracle"] = d.oracle[te]
    tracking.figure(plots.roc_figure(y_te, curves), "plots/roc.png")
    tracking.figure(plots.calibration_figure(y_te, curves), "plots/calibration.png")
    th = cand.pkg.thresholds
    table = confusion(y_te, cand.p_test, th)
    thresholds = {"medium": th.medium, "high": th.high, "rule": th.rule}
    tracking.json({"thresholds": thresholds, "test": table}, "evaluation/confusion.json")
    tracking.figure(plots.confusion_figure(table), "plots/confusion_matrix.png")
    tracking.json({"kind": cand.importance_kind, "importance": cand.importance}, "evaluation/feature_importance.json")
    tracking.figure(plots.importance_figure(cand.importance, cand.importance_kind), "plots/feature_importance.png")
    tracking.json({"history": cand.history}, "evaluation/history.json")
    predictions = pd.DataFrame(
        {
            "patient_id": d.frame["patient_id"].iloc[te].to_numpy(),
            "event_timestamp": d.frame["event_timestamp"].iloc[te].to_numpy(),
            "label": y_te,
            "probability": cand.p_test,
            "baseline_probability": cand.baseline_p_test,
            "oracle": d.oracle[te],
        }
    )
    tracking.frame(predictions, "predictions/test.parquet")
    features_val = d.frame.iloc[va][order].reset_index(drop=True)
    log_reference(build_reference(features_val, cand.p_val, d.y[va], max_rows=ctx.settings.reference_rows))
    label = ctx.args.label
    tracking.dataset(
        d.frame[["patient_id", "event_timestamp", *order, label]],
        source=ctx.lake.snapshot_uri(ctx.snap),
        name=f"{cand.pkg.feature_service}@{ctx.snap.snapshot_id}",
        label=label,
        context="training",
    )


def _rescore_champion(ctx: Context, cand: Candidate, version: str) -> tuple[ChampionScore | None, dict[str, float]]:
    name = ctx.args.registered_model_name
    champion_version = ctx.tracking.champion(name)
    if champion_version is None or champion_version == version:
        return None, {}
    te = ctx.data.parts.test
    y_te = ctx.data.y[te]
    try:
        champ = load_version(ctx.tracking.uri, name, champion_version, ctx.settings.model_cache_dir)
        p_champ = champ.predict_frame(ctx.data.frame.iloc[te]).astype(np.float64)
    except (ModelInputError, ModelPackageError, KeyError, ValueError) as err:
        return ChampionScore(champion_version, None, error=str(err)), {}
    champ_auroc = ev.auroc(y_te, p_champ)
    ci = ev.bootstrap_auroc(y_te, cand.p_test.astype(np.float64), ctx.settings.bootstrap_samples, other=p_champ)
    extra = {
        "champion_test_auroc": champ_auroc,
        "auroc_diff_vs_champion": cand.test["auroc"] - champ_auroc,
        "auroc_diff_ci_low": ci[0],
        "auroc_diff_ci_high": ci[1],
    }
    ctx.say(f"champion version {champion_version} re-scored on the same test rows: AUROC {champ_auroc:.4f}")
    return ChampionScore(champion_version, champ_auroc, ci), extra


SUMMARY = ("auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "brier", "calibration_slope", "calibration_intercept",
           "oe_ratio")  # fmt: skip


def _register_and_gate(ctx: Context, cand: Candidate) -> TrainResult:
    args, d, tracking = ctx.args, ctx.data, ctx.tracking
    name = args.registered_model_name
    version: str | None = None
    promoted = False
    try:
        info = log_package(cand.pkg, d.frame.iloc[d.parts.validation], registered_model_name=name)
        version = str(info.registered_model_version)
        tags = {RUN_TAG: args.run_id, PIPELINE_TAG: args.pipeline, "clinops.snapshot_id": ctx.snap.snapshot_id}
        tracking.tag_version(name, version, tags)
        ctx.say(f"registered {name} version {version}")
        champion, extra = _rescore_champion(ctx, cand, version)
        decision = decide(cand.test["auroc"], args.min_auroc, args.must_beat_champion, champion)
        tracking.metrics(extra)
        metrics = {
            **_prefixed("test_", {k: cand.test[k] for k in SUMMARY}),
            **cand.oracle,
            **_prefixed(
                "baseline_test_", {k: cand.baseline_test[k] for k in ("auroc", "brier") if k in cand.baseline_test}
            ),
            **extra,
            **{f"rows_{k}": float(v["rows"]) for k, v in d.counts.items()},
            **{f"positives_{k}": float(v["positives"]) for k, v in d.counts.items()},
            "rows_unlabeled": float(d.unlabeled),
        }
        result = TrainResult(
            pipeline=args.pipeline,
            run_id=args.run_id,
            model_name=name,
            model_version=version,
            mlflow_run_id=ctx.mlflow_run_id,
            test_auroc=cand.test["auroc"],
            promoted=decision.promote,
            gate_reasons=decision.reasons,
            snapshot_id=ctx.snap.snapshot_id,
            metrics=_finite(metrics),
        )
        gate = "promoted" if decision.promote else "refused"
        reasons = json.dumps(decision.reasons)
        tracking.tag_version(
            name, version, {"clinops.gate": gate, "clinops.gate_reasons": reasons, RESULT_TAG: result.model_dump_json()}
        )
        tracking.tags({"clinops.model_version": version, "clinops.gate": gate, "clinops.gate_reasons": reasons})
        if decision.promote:
            tracking.promote(name, version)
            promoted = True
        ctx.say(f"gate {gate}: " + "; ".join(decision.reasons))
        return result
    except BaseException:
        if version is not None and not promoted:
            tracking.delete_version(name, version)
        raise


def write_stage_result(conns: TrainingConnections, result: TrainResult) -> str:
    return write_result(s3_client(conns), conns.lake_bucket, result)
