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

import functools
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from clinops_common.features.definitions import feature_service, feature_view
from clinops_common.features.online import Freshness, StoredRow, row_features

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
class ViewLayout:
    """Where one view's stored values go in the model's raw row (positions in the feature order)."""

    view: str
    num_src: np.ndarray  # index in the view's packed numbers
    num_dst: np.ndarray  # position in the raw row
    int_dst: np.ndarray  # positions holding int64 features (truncated, as the decoded value is)
    bool_dst: np.ndarray  # positions holding bool features (0 or 1)
    strings: tuple[tuple[int, int, dict[str, float]], ...]  # (index in the packed strings, position, codes)


@dataclass(frozen=True)
class Champion:
    """A loaded model version; swapped as a whole, so a request sees one version from start to end."""

    package: ModelPackage
    version: str
    order: FeatureOrder
    layout: tuple[ViewLayout, ...] | None = None  # None: vectorize from decoded values instead

    @property
    def name(self) -> str:
        return self.package.name


def champion(package: ModelPackage, version: str) -> Champion:
    views = feature_service(package.feature_service).views_used
    order = FeatureOrder(package.feature_order_id, package.feature_service, tuple(package.feature_order), views)
    return Champion(package, str(version), order, layout(package, views))


def layout(package: ModelPackage, views: Sequence[str]) -> tuple[ViewLayout, ...] | None:
    """How each view's packed row fills the package's raw row; None when the package encodes a
    feature otherwise than its view stores it (a numeric view feature the model treats as a
    category, or the reverse): such a model is served through ``vectorize`` of decoded values."""
    position = {n: i for i, n in enumerate(package.feature_order)}
    specs = {f.name: f for f in package.preprocessing.features}
    out = []
    placed = 0
    for name in views:
        view = feature_view(name)
        numeric = [f for f in view.features if f.dtype != "string"]
        strings = [f for f in view.features if f.dtype == "string"]
        num_src, num_dst, int_dst, bool_dst = [], [], [], []
        for k, f in enumerate(numeric):
            if f.name not in position:
                continue
            if specs[f.name].kind != "numeric":
                return None
            num_src.append(k)
            num_dst.append(position[f.name])
            if f.dtype == "int64":
                int_dst.append(position[f.name])
            elif f.dtype == "bool":
                bool_dst.append(position[f.name])
        cats = []
        for k, f in enumerate(strings):
            if f.name not in position:
                continue
            spec = specs[f.name]
            if spec.kind != "categorical":
                return None
            cats.append((k, position[f.name], {c: float(i) for i, c in enumerate(spec.categories)}))
        placed += len(num_dst) + len(cats)
        ints = functools.partial(np.asarray, dtype=np.int64)
        out.append(ViewLayout(name, ints(num_src), ints(num_dst), ints(int_dst), ints(bool_dst), tuple(cats)))
    if placed != len(position):
        return None  # a feature no view the service reads holds
    return tuple(out)


def vectorize_rows(champ: Champion, rows: Mapping[str, StoredRow]) -> np.ndarray:
    """The model's raw input row (float32, NaN = missing) straight from the packed online rows: the
    same numbers as ``vectorize`` of the decoded values, without a Python value per feature."""
    if champ.layout is None:
        raise ValueError("this champion has no layout: use vectorize")
    raw = np.full(len(champ.order.names), np.nan, dtype=np.float64)
    for lay in champ.layout:
        row = rows.get(lay.view)
        if row is None or row.packed is None:  # missing or stale: missing values
            continue
        raw[lay.num_dst] = row.packed.numbers[lay.num_src]
        if lay.int_dst.size:
            raw[lay.int_dst] = np.trunc(raw[lay.int_dst])
        if lay.bool_dst.size:
            b = raw[lay.bool_dst]
            raw[lay.bool_dst] = np.where(np.isnan(b), np.nan, b != 0)
        for k, pos, codes in lay.strings:
            value = row.packed.strings[k]
            raw[pos] = math.nan if value is None else codes.get(str(value), math.nan)
    return raw.astype(np.float32)


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


def raw_row(champ: Champion, rows: Mapping[str, StoredRow]) -> np.ndarray:
    """The model's raw input row from one patient's online rows, by the champion's layout when it
    has one, else through the decoded values."""
    if champ.layout is not None:
        return vectorize_rows(champ, rows)
    return vectorize(champ.package, row_features(feature_service(champ.order.service), rows))


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
