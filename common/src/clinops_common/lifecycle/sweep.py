"""The offline store's sweep: expire old snapshots, then delete the files no kept snapshot lists.

A snapshot is kept when it is the newest (``LATEST``), when a registered model version names it
(its ``clinops.snapshot_id`` tag in the MLflow registry: that model's training set must stay
rebuildable), or when it is younger than the features' retention. Every other manifest is expired.
Then a data file goes when no kept snapshot lists it and it is older than the grace period (a
featurizer may be writing files its next snapshot will list). ``plan`` is pure; ``execute`` deletes.

On the versioned lake bucket a delete leaves a noncurrent version; the ``offline-features``
lifecycle rule removes those ``noncurrent_days`` later (so a mistaken sweep can be undone that long).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow.fs as pafs

from clinops_common.features.offline import SNAPSHOTS, OfflineStore, Snapshot

SNAPSHOT_TAG = "clinops.snapshot_id"


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to the store root
    modified: datetime


@dataclass(frozen=True)
class SweepPlan:
    kept: dict[str, str]  # snapshot id -> why it is kept (newest | model <name> v<version> | young)
    expired: list[str]  # snapshot ids whose manifests go
    deleted: list[str]  # data files that go
    spared_young: list[str] = field(default_factory=list)  # unlisted files inside the grace period
    kept_files: int = 0


def plan(
    snapshots: Iterable[Snapshot],
    latest: str | None,
    named: dict[str, str],
    files: Iterable[StoredFile],
    *,
    now: datetime,
    retention: timedelta,
    grace: timedelta,
) -> SweepPlan:
    """What a sweep at ``now`` deletes. ``named``: snapshot id -> the model version naming it."""
    snaps = {s.snapshot_id: s for s in snapshots}
    kept: dict[str, str] = {}
    for sid, snap in sorted(snaps.items()):
        if sid == latest:
            kept[sid] = "newest"
        elif sid in named:
            kept[sid] = named[sid]
        elif datetime.fromisoformat(snap.created_at) >= now - retention:
            kept[sid] = "young"
    if latest is None and snaps:  # no LATEST pointer: never leave the store without its newest snapshot
        newest = max(snaps)
        kept.setdefault(newest, "newest")
    listed = {f.path for sid in kept for view in snaps[sid].views for f in snaps[sid].files(view)}
    deleted: list[str] = []
    young: list[str] = []
    for f in sorted(files, key=lambda f: f.path):
        if f.path in listed:
            continue
        (deleted if f.modified < now - grace else young).append(f.path)
    expired = sorted(set(snaps) - set(kept))
    return SweepPlan(kept, expired, deleted, young, kept_files=len(listed))


def stored_files(store: OfflineStore) -> list[StoredFile]:
    """Every data file under the store (not the manifests), with its modification time."""
    sel = pafs.FileSelector(store.root, allow_not_found=True, recursive=True)
    out = []
    for info in store.fs.get_file_info(sel):
        if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
            continue
        rel = info.path[len(store.root) + 1 :]
        if rel.startswith(f"{SNAPSHOTS}/"):
            continue
        assert info.mtime is not None
        mtime = info.mtime if info.mtime.tzinfo else info.mtime.replace(tzinfo=UTC)
        out.append(StoredFile(rel, mtime))
    return out


def snapshots(store: OfflineStore) -> list[Snapshot]:
    sel = pafs.FileSelector(f"{store.root}/{SNAPSHOTS}", allow_not_found=True)
    ids = [
        i.base_name.removesuffix(".json")
        for i in store.fs.get_file_info(sel)
        if i.type == pafs.FileType.File and i.base_name.endswith(".json")
    ]
    return [store.snapshot(sid) for sid in sorted(ids)]


def named_snapshots(tracking_uri: str) -> dict[str, str]:
    """Snapshot id -> ``<model> v<version>`` for every registered model version that names one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    named: dict[str, str] = {}
    token = None
    while True:
        page = client.search_model_versions(max_results=1000, page_token=token)
        for mv in page:
            sid = (mv.tags or {}).get(SNAPSHOT_TAG)
            if sid:
                named.setdefault(sid, f"{mv.name} v{mv.version}")
        token = page.token
        if not token:
            return named


def execute(store: OfflineStore, sweep: SweepPlan) -> None:
    """Delete the expired manifests first (so no snapshot ever lists a missing file), then the files."""
    for sid in sweep.expired:
        store.fs.delete_file(f"{store.root}/{SNAPSHOTS}/{sid}.json")
    for rel in sweep.deleted:
        store.fs.delete_file(f"{store.root}/{rel}")
