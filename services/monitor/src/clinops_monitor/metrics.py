"""Prometheus gauges of the last evaluation of each pipeline (base units; no patient anywhere).

Labels: ``namespace``, ``pipeline``, ``model_version`` and, for drift, ``feature`` (a feature
*name*, a few hundred per pipeline at most). Ratios are plain numbers; times are Unix seconds.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from clinops_monitor.core.evaluation import Evaluation

P = ("namespace", "pipeline")
PV = ("namespace", "pipeline", "model_version")


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r

        def g(name: str, doc: str, labels: tuple[str, ...] = PV) -> Gauge:
            return Gauge(f"clinops_monitor_{name}", doc, labels, registry=r)

        self.auroc = g("auroc", "Rolling-window AUROC of the model version's labelled predictions.")
        self.auroc_lower = g("auroc_lower", "Lower end of AUROC's 95% interval (DeLong).")
        self.auroc_upper = g("auroc_upper", "Upper end of AUROC's 95% interval (DeLong).")
        self.auroc_floor = g("auroc_floor", "The pipeline's spec.monitoring.aurocFloor.", P)
        self.oe = g("observed_expected_ratio", "Observed events / sum of predicted probabilities.")
        self.oe_lower = g("observed_expected_ratio_lower", "Lower end of O/E's 95% interval.")
        self.oe_upper = g("observed_expected_ratio_upper", "Upper end of O/E's 95% interval.")
        self.intercept = g("calibration_intercept", "Calibration intercept (calibration-in-the-large; target 0).")
        self.slope = g("calibration_slope", "Calibration slope (target 1).")
        self.brier = g("brier_score", "Brier score of the labelled predictions in the window.")
        self.labelled = g("labelled_predictions", "Labelled predictions in the window.")
        self.events = g("labelled_events", "Labelled predictions followed by an adverse event in the window.")
        self.insufficient = g("insufficient_data", "1 when the version has fewer than minOutcomes labelled outcomes.")
        self.pending = g("pending_predictions", "Window predictions whose horizon or outcomes are not complete.", P)
        self.psi = Gauge(
            "clinops_monitor_feature_psi",
            "PSI of a served feature against the reference.",
            (*PV, "feature"),
            registry=r,
        )
        self.ks = Gauge(
            "clinops_monitor_feature_ks_statistic", "KS statistic of a served feature.", (*PV, "feature"), registry=r
        )
        self.drifted = Gauge(
            "clinops_monitor_feature_drifted",
            "1 when the feature drifts (PSI and KS agree).",
            (*PV, "feature"),
            registry=r,
        )
        self.prediction_psi = g("prediction_psi", "PSI of the predicted probabilities against the reference.")
        self.prediction_ks = g("prediction_ks_statistic", "KS statistic of the predicted probabilities.")
        self.drift_share = g("drifting_features_ratio", "Share of served features that drift.")
        self.drift_sample = g("drift_sample_predictions", "Window predictions in the drift tests.")
        self.volume = Gauge(
            "clinops_monitor_window_predictions",
            "The champion's predictions in the window, per risk level.",
            (*PV, "risk_level"),
            registry=r,
        )
        self.last = g("last_evaluation_timestamp_seconds", "As-of time of the last evaluation (Unix seconds).", P)
        self.duration = g("evaluation_duration_seconds", "Wall time of the last evaluation.", P)
        self.requested = g("retrain_requested", "1 when the last evaluation asked for retraining.", P)
        self.requests = Counter(
            "clinops_monitor_retrain_requests", "Retraining requests written.", (*P, "reason"), registry=r
        )
        self.evaluations = Counter("clinops_monitor_evaluations", "Evaluations run.", (*P, "result"), registry=r)

    def publish(self, namespace: str, pipeline: str, floor: float, ev: Evaluation, seconds: float) -> None:
        p = (namespace, pipeline)
        self.auroc_floor.labels(*p).set(floor)
        self.pending.labels(*p).set(ev.pending)
        self.last.labels(*p).set(ev.as_of.timestamp())
        self.duration.labels(*p).set(seconds)
        self.requested.labels(*p).set(1 if ev.decision.request else 0)
        self.evaluations.labels(*p, "requested" if ev.decision.request else "ok").inc()
        for reason in ev.decision.reasons if ev.decision.request else ():
            self.requests.labels(*p, reason).inc()
        for version, perf in ev.performance.items():
            v = (*p, version)
            self.labelled.labels(*v).set(perf.labelled)
            self.events.labels(*v).set(perf.events)
            self.insufficient.labels(*v).set(1 if perf.status == "insufficient_data" else 0)
            if perf.auroc is not None:
                self.auroc.labels(*v).set(perf.auroc.value)
                self.auroc_lower.labels(*v).set(perf.auroc.lower)
                self.auroc_upper.labels(*v).set(perf.auroc.upper)
            if perf.calibration is not None:
                c = perf.calibration
                self.oe.labels(*v).set(c.oe)
                self.oe_lower.labels(*v).set(c.oe_lower)
                self.oe_upper.labels(*v).set(c.oe_upper)
                self.intercept.labels(*v).set(c.intercept)
                self.slope.labels(*v).set(c.slope)
                self.brier.labels(*v).set(c.brier)
        if ev.champion_version is not None:
            v = (*p, ev.champion_version)
            for level in ("LOW", "MEDIUM", "HIGH"):
                self.volume.labels(*v, level).set(ev.volume.get(level, 0))
            if ev.drift is not None:
                self.drift_share.labels(*v).set(ev.drift.share)
                self.drift_sample.labels(*v).set(ev.drift_sample)
                if ev.drift.prediction is not None:
                    self.prediction_psi.labels(*v).set(ev.drift.prediction.psi)
                    self.prediction_ks.labels(*v).set(ev.drift.prediction.ks_statistic)
                for col in ev.drift.features:
                    self.psi.labels(*v, col.column).set(col.psi)
                    self.ks.labels(*v, col.column).set(col.ks_statistic)
                    self.drifted.labels(*v, col.column).set(1 if col.drifted else 0)
