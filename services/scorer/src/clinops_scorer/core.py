"""The scorer's pure core: judge the freshness of a feature vector, apply the missing/stale policy,
score, and shape the audit row. No I/O here; the adapters and the service call these.

Policy (``CLINOPS_SCORER_FEATURE_POLICY``):

- a patient with no row in any view the model reads is unknown: 404, nothing scored;
- a view that is stale (its row is older than the view's TTL) or missing (no row) is never used
  silently. ``refuse`` (default): no prediction, 409 naming the views. ``degrade``: the view's
  features are missing values, which the model package's preprocessing imputes with the training
  medians (as in training); the response and the audit row say ``degraded`` and name the views.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from clinops_common.features.definitions import feature_service
from clinops_common.features.online import Freshness

if TYPE_CHECKING:
    from clinops_common.model import ModelPackage

ViewStatus = Literal["fresh", "stale", "missing"]
Decision = Literal["serve", "degraded", "refuse", "unknown"]
# Batch rows get ids derived from what they are, so re-running a batch writes nothing twice.
BATCH_NAMESPACE = uuid.UUID("6f1d3c52-36c5-4f0e-9c1a-2f6f3f6c8a10")


@dataclass(frozen=True)
class FeatureOrder:
    """What the positions of an audit row's vectors mean (stored once in ``feature_orders``)."""

    id: str
    service: str
    names: tuple[str, ...]
    views: tuple[str, ...]


@dataclass(frozen=True)
class Champion:
    """A loaded model version; swapped as a whole, so a request sees one version from start to end."""

    package: ModelPackage
    version: str
    order: FeatureOrder

    @property
    def name(self) -> str:
        return self.package.name


def champion(package: ModelPackage, version: str) -> Champion:
    views = feature_service(package.feature_service).views_used
    order = FeatureOrder(package.feature_order_id, package.feature_service, tuple(package.feature_order), views)
    return Champion(package, str(version), order)


@dataclass(frozen=True)
class ViewState:
    view: str
    status: ViewStatus
    event_time: datetime | None
    age_s: float | None


@dataclass(frozen=True)
class Assessment:
    views: tuple[ViewState, ...]

    def named(self, status: ViewStatus) -> tuple[str, ...]:
        return tuple(v.view for v in self.views if v.status == status)

    @property
    def stale(self) -> tuple[str, ...]:
        return self.named("stale")

    @property
    def missing(self) -> tuple[str, ...]:
        return self.named("missing")

    @property
    def unknown(self) -> bool:
        return all(v.status == "missing" for v in self.views)

    @property
    def degraded_views(self) -> tuple[str, ...]:
        return tuple(v.view for v in self.views if v.status != "fresh")


def assess(freshness: Mapping[str, Freshness], views: Sequence[str]) -> Assessment:
    """The state of each view the model reads (a view absent from ``freshness`` is missing)."""
    out = []
    for name in views:
        f = freshness.get(name)
        if f is None or f.missing:
            out.append(ViewState(name, "missing", None, None))
        else:
            out.append(ViewState(name, "stale" if f.stale else "fresh", f.event_timestamp, f.age_s))
    return Assessment(tuple(out))


def decide(assessment: Assessment, policy: Literal["refuse", "degrade"]) -> Decision:
    if assessment.unknown:
        return "unknown"
    if not assessment.degraded_views:
        return "serve"
    return "degraded" if policy == "degrade" else "refuse"


def vectorize(package: ModelPackage, features: Mapping[str, Any]) -> np.ndarray:
    """The model's raw input row (float32, NaN = missing) from the online vector's values."""
    return package.vectorize({n: features.get(n) for n in package.feature_order})


@dataclass
class AuditRow:
    """One ``predictions`` row (revision 0002), before it is committed."""

    id: uuid.UUID
    patient_id: str
    predicted_at: datetime
    score: float
    risk_level: str
    model_name: str
    model_version: str
    order: FeatureOrder
    feature_values: np.ndarray
    feature_event_times: list[datetime | None]
    degraded: bool = False
    stale_views: tuple[str, ...] = ()
    missing_views: tuple[str, ...] = ()
    latency_ms: float | None = None
    source: Literal["online", "batch"] = "online"
    batch_id: str | None = None
    snapshot_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def audit_row(  # noqa: PLR0917 - the row's parts, in the table's order
    prediction_id: uuid.UUID,
    patient_id: str,
    at: datetime,
    score: float,
    champ: Champion,
    vector: np.ndarray,
    assessment: Assessment,
    **kwargs: Any,
) -> AuditRow:
    times = {v.view: v.event_time for v in assessment.views}
    return AuditRow(
        id=prediction_id,
        patient_id=patient_id,
        predicted_at=at,
        score=score,
        risk_level=champ.package.risk_level(score),
        model_name=champ.name,
        model_version=champ.version,
        order=champ.order,
        feature_values=vector,
        feature_event_times=[times.get(v) for v in champ.order.views],
        degraded=bool(assessment.degraded_views),
        stale_views=assessment.stale,
        missing_views=assessment.missing,
        **kwargs,
    )


def batch_prediction_id(model_name: str, version: str, patient_id: str, at: datetime) -> uuid.UUID:
    return uuid.uuid5(BATCH_NAMESPACE, f"{model_name}\n{version}\n{patient_id}\n{at.isoformat()}")
