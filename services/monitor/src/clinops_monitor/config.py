"""The monitor's settings (``CLINOPS_MONITOR_*``) and the per-pipeline view of a FeaturePipeline.

Endpoints and credentials (PostgreSQL, the lake, MLflow) come from ``Connections``
(``CLINOPS_*``); what each pipeline wants checked comes from its ``spec.monitoring``; what the CRD
does not carry (calibration bounds, drift persistence, cooldown, outcome lateness) is set here, once
per monitor.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clinops_monitor.core.decision import Policy

GROUP, VERSION, PLURAL = "clinops.io", "v1alpha1", "featurepipelines"


class MonitorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINOPS_MONITOR_", extra="ignore")

    allowed_lateness_hours: float = Field(6.0, ge=0, description="How late an outcome may arrive after it happened.")
    oe_min: float = Field(0.8, gt=0, description="Lower bound of an acceptable observed/expected ratio.")
    oe_max: float = Field(1.25, gt=0, description="Upper bound of an acceptable observed/expected ratio.")
    slope_min: float = Field(0.7, gt=0, description="Lower bound of an acceptable calibration slope.")
    slope_max: float = Field(1.3, gt=0, description="Upper bound of an acceptable calibration slope.")
    min_calibration_events: int = Field(20, ge=1, description="Events needed before calibration can alarm.")
    drift_share: float = Field(0.3, gt=0, le=1, description="Share of drifting features that flags drift.")
    drift_evaluations: int = Field(3, ge=1, description="Consecutive drift flags that ask for retraining.")
    cooldown_hours: float = Field(24.0, ge=0, description="No second request within this time of one.")
    drift_sample: int = Field(50_000, ge=100, description="At most this many window predictions in drift tests.")
    model_alias: str = Field("champion", description="Registry alias of the model being monitored.")
    namespace: str | None = Field(None, description="Watch FeaturePipelines in this namespace only (all if unset).")
    metrics_port: int = Field(9110, ge=0, le=65535, description="Port of /metrics in serve mode (0: none).")
    poll_interval_s: float = Field(30.0, gt=0, description="How often serve mode checks the pipelines' crons.")
    cache_dir: str = Field("/tmp/clinops-monitor", description="Where downloaded training references are kept.")  # noqa: S108


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class MonitoringSpec(_Model):
    """``spec.monitoring`` of a FeaturePipeline (defaults as in the CRD)."""

    tests: tuple[str, ...] = ("auroc", "calibration", "prediction_drift", "feature_drift")
    window_days: int = Field(7, alias="windowDays")
    auroc_floor: float = Field(0.8, alias="aurocFloor")
    psi_threshold: float = Field(0.2, alias="psiThreshold")
    ks_p_value: float = Field(0.01, alias="ksPValue")
    min_outcomes: int = Field(200, alias="minOutcomes")


class PipelineView(_Model):
    """What the monitor needs of one FeaturePipeline."""

    namespace: str
    name: str
    model_name: str
    feature_service: str = "adverse_event_v1"
    horizon_hours: int = 24
    schedule: str = "0 */6 * * *"
    monitoring: MonitoringSpec = MonitoringSpec()
    mlflow_tracking_uri: str | None = None
    phase: str | None = None
    run_stages: tuple[str, ...] | None = None  # status.currentRun.stages while a run is in progress
    last_run_time: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PipelineView:
        meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
        training = spec.get("training") or {}
        run = status.get("currentRun") or {}
        return cls(
            namespace=meta.get("namespace", "default"),
            name=meta["name"],
            model_name=training.get("registeredModelName") or meta["name"],
            feature_service=(spec.get("features") or {}).get("service", "adverse_event_v1"),
            horizon_hours=(spec.get("features") or {}).get("labelHorizonHours", 24),
            schedule=(spec.get("schedules") or {}).get("monitoring", "0 */6 * * *"),
            monitoring=MonitoringSpec.model_validate(spec.get("monitoring") or {}),
            mlflow_tracking_uri=((spec.get("stores") or {}).get("mlflow") or {}).get("trackingUri"),
            phase=status.get("phase"),
            run_stages=tuple(run["stages"]) if isinstance(run.get("stages"), list) else None,
            last_run_time=status.get("lastRunTime"),
            annotations=dict(meta.get("annotations") or {}),
        )


def policy(settings: MonitorSettings, monitoring: MonitoringSpec) -> Policy:
    tests = set(monitoring.tests)
    return Policy(
        auroc_floor=monitoring.auroc_floor,
        oe_min=settings.oe_min,
        oe_max=settings.oe_max,
        slope_min=settings.slope_min,
        slope_max=settings.slope_max,
        min_calibration_events=settings.min_calibration_events,
        drift_share=settings.drift_share,
        drift_evaluations=settings.drift_evaluations,
        cooldown=timedelta(hours=settings.cooldown_hours),
        check_auroc="auroc" in tests,
        check_calibration="calibration" in tests,
        check_prediction_drift="prediction_drift" in tests,
        check_feature_drift="feature_drift" in tests,
    )
