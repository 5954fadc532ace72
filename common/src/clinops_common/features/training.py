"""Point-in-time training sets from a snapshot of the offline store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from clinops_common.features.definitions import (
    EVENT_TIMESTAMP,
    LABEL_VIEW,
    FeatureService,
    FeatureView,
    feature_service,
    feature_view,
)
from clinops_common.features.offline import OfflineStore
from clinops_common.features.pit import PointInTimeError, point_in_time_join, utc


@dataclass(frozen=True)
class TrainingSet:
    frame: pd.DataFrame  # the entity rows' columns, then the service's features (then labels)
    snapshot_id: str
    feature_service: str

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.frame.shape
        return int(rows), int(cols)


def _dates(entity_ts: pd.Series, ttl: timedelta, horizon: timedelta) -> list[str]:
    lo = entity_ts.min() - (ttl if ttl.total_seconds() > 0 else horizon)
    hi = entity_ts.max()
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(lo.normalize(), hi.normalize(), freq="D")]


def build_training_set(
    entity_rows: pd.DataFrame,
    service: str | FeatureService,
    snapshot: str | None = None,
    *,
    store: OfflineStore,
    guard: bool = True,
    labels: tuple[str, ...] = (),
    entity_timestamp: str = EVENT_TIMESTAMP,
) -> TrainingSet:
    """For each (patient_id, timestamp) of ``entity_rows``, the service's features as of that time.

    ``snapshot`` names the offline-store snapshot to read (default: the latest; the id comes back in
    the result, to be recorded with the model). The created-timestamp leakage guard is on unless
    ``guard=False``. ``labels`` (e.g. ``("adverse_event_24h",)``) are joined on the exact step.
    """
    svc = feature_service(service) if isinstance(service, str) else service
    snap = store.snapshot(snapshot)
    if entity_timestamp not in entity_rows.columns:
        raise PointInTimeError(f"entity rows lack column {entity_timestamp!r}")
    ents = entity_rows.reset_index(drop=True).copy()
    ents[entity_timestamp] = utc(ents[entity_timestamp])
    columns: dict[str, pd.Series] = {}
    for view_name, feats in svc.by_view().items():
        view: FeatureView = feature_view(view_name)
        dates = _dates(ents[entity_timestamp], view.ttl, horizon=timedelta(days=3650))
        rows = store.read(view, snap, feats, dates=dates)
        joined = point_in_time_join(
            ents,
            rows,
            list(feats),
            ttl=view.ttl,
            join_key=view.entity.join_key,
            entity_timestamp=entity_timestamp,
            timestamp_field=view.timestamp_field,
            created_timestamp_field=view.created_timestamp_field,
            guard=guard,
        )
        for f in feats:
            columns[f] = joined[f]
    for label in labels:
        rows = store.read(
            LABEL_VIEW, snap, [label], dates=_dates(ents[entity_timestamp], LABEL_VIEW.ttl, LABEL_VIEW.ttl)
        )
        latest = rows.sort_values([LABEL_VIEW.timestamp_field, LABEL_VIEW.created_timestamp_field]).drop_duplicates(
            [LABEL_VIEW.entity.join_key, LABEL_VIEW.timestamp_field], keep="last"
        )
        merged = ents[[LABEL_VIEW.entity.join_key, entity_timestamp]].merge(
            latest.rename(columns={LABEL_VIEW.timestamp_field: entity_timestamp})[
                [LABEL_VIEW.entity.join_key, entity_timestamp, label]
            ],
            how="left",
            on=[LABEL_VIEW.entity.join_key, entity_timestamp],
        )
        columns[label] = pd.Series(merged[label].to_numpy(), index=ents.index)
    out = pd.concat([ents, pd.DataFrame(columns, index=ents.index)], axis=1)
    return TrainingSet(out, snap.snapshot_id, svc.name)
