"""What the featurizer's inspection commands print: the catalogue, one online vector, a training set's shape."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from clinops_common.features.definitions import FEATURE_SERVICES, FEATURE_VIEWS, LABEL_VIEW, PATIENT, feature_service
from clinops_common.features.offline import OfflineStore
from clinops_common.features.online import OnlineStore


class NothingMaterialized(LookupError):
    """The online store holds no patient yet."""


def catalogue(console: Console, *, features: bool) -> None:
    console.print(f"[bold]entity[/] {PATIENT.name} (join key {PATIENT.join_key}): {PATIENT.description}")
    views = Table("view", "source", "ttl", "features", "online", "schema", "description", title="feature views")
    for v in FEATURE_VIEWS.values():
        views.add_row(v.name, v.source, str(v.ttl), str(len(v.features)), str(v.online), v.schema_id, v.description)
    console.print(views)
    services = Table("service", "features", "views", "description", title="feature services")
    for s in FEATURE_SERVICES.values():
        services.add_row(s.name, str(len(s.refs)), ", ".join(s.views_used), s.description)
    console.print(services)
    if features:
        table = Table("view", "feature", "dtype", "description")
        for v in FEATURE_VIEWS.values():
            for f in v.features:
                table.add_row(v.name, f.name, f.dtype, f.description)
        console.print(table)


def online_vector(
    console: Console, store: OnlineStore, service: str, patient_id: str | None, *, at: str | None, show: int
) -> None:
    """``at``: an ISO time to read as of, or 'materialized' (the last run's as-of); default now."""
    if at:
        when = datetime.fromisoformat(store.state()["end"] if at == "materialized" else at).timestamp()
        store = OnlineStore(store.client, clock=lambda: when)
    if patient_id is None:
        keys = sorted(k.decode() for k in store.client.scan_iter(f"{store.prefix}:patient:*", count=1000))
        if not keys:
            raise NothingMaterialized("nothing materialized yet: run `python -m clinops_featurizer materialize`")
        patient_id = keys[0].rsplit(":", 1)[1]
    vec = store.get_online_features(feature_service(service), [patient_id])[0]
    present = {k: v for k, v in vec.features.items() if v is not None}
    console.print(f"[bold]{service}[/] for {patient_id}: {len(present)}/{len(vec.features)} features present")
    for k, v in list(present.items())[:show]:
        console.print(f"  {k} = {v}")
    for view, f in vec.freshness.items():
        state = "missing" if f.missing else "STALE (nulled)" if f.stale else "fresh"
        age = f"{f.age_s / 60:.0f} min old" if f.age_s is not None else "-"
        console.print(f"  freshness {view}: {state}, step {f.event_timestamp}, {age}")


def training_set_shape(console: Console, store: OfflineStore, service: str, snapshot: str | None) -> None:
    from clinops_common.features.training import build_training_set

    snap = store.snapshot(snapshot)
    entity = store.read(LABEL_VIEW, snap, [])[["patient_id", "event_timestamp"]]
    ts = build_training_set(entity, service, snap.snapshot_id, store=store, labels=("adverse_event_24h",))
    rate = ts.frame["adverse_event_24h"].mean() if len(ts.frame) else float("nan")
    console.print(
        f"training set {service}: {ts.shape[0]} rows x {ts.shape[1]} columns, snapshot {ts.snapshot_id}, "
        f"label rate {rate:.3f}"
    )
