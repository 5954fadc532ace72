"""The offline store: Parquet per feature view, partitioned by date, versioned by snapshot manifests.

Layout under ``features/offline/`` in the lake bucket::

    <view>/write=<write id>/date=YYYY-MM-DD/part-*.parquet   data files; written once, never modified
    _snapshots/<snapshot id>.json                           the manifest: every data file of every view
    _snapshots/LATEST                                       the id of the newest snapshot (the commit point)

A write adds new files, each write in a folder of its own (``write=<write id>``, never written
again: see ``write_uri``); re-featurizing a date writes new files for it and the next manifest lists
those instead of the old ones. A snapshot therefore names an exact, immutable set of files, and a
training set built from it can be rebuilt bit for bit later. Files no manifest lists any more are
left for a retention sweep. One writer at a time (the operator runs one featurizer per pipeline).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from clinops_common.features.definitions import FEATURE_VIEWS, FeatureView
from clinops_common.features.pit import utc
from clinops_common.settings import LakeConnection
from clinops_common.storage import s3_filesystem

SNAPSHOTS = "_snapshots"


# The partition of a view recomputed whole by each run (the stroke cohort's batch views): ``date=all``.
# It holds rows of every date, so a read limited to some dates still reads it.
WHOLE_VIEW = "all"


class SnapshotNotFound(LookupError):
    pass


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the store root
    size: int
    date: str


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    parent: str | None
    created_at: str
    views: dict[str, dict[str, object]] = field(default_factory=dict)  # view -> {schema_id, files}
    # What the writer read to make it (the featurizer's fingerprint: clinops_featurizer.inputs); "" unknown
    inputs: str = ""

    def files(self, view: str) -> list[DataFile]:
        entry = self.views.get(view)
        if not entry:
            return []
        return [DataFile(**f) for f in entry["files"]]  # type: ignore[attr-defined]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def new_snapshot_id(now: datetime | None = None) -> str:
    """Sortable by time, unique: ``20260301T120000Z-1a2b3c4d`` (also the form of a write id)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


class OfflineStore:
    """Snapshots of the feature views' Parquet files on any pyarrow filesystem (S3 in production)."""

    def __init__(self, fs: pafs.FileSystem, root: str, *, spark_prefix: str = "") -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.spark_prefix = spark_prefix  # how Spark names ``root``: "s3a://" for the lake

    @classmethod
    def for_lake(cls, conns: LakeConnection) -> OfflineStore:
        return cls(s3_filesystem(conns), f"{conns.lake_bucket}/features/offline", spark_prefix="s3a://")

    def view_uri(self, view: str) -> str:
        """The folder of a view's files (every write's)."""
        return f"{self.spark_prefix}{self.root}/{view}"

    def write_uri(self, view: str, write_id: str) -> str:
        """Where Spark writes one write's files of a view: a folder no other write uses.

        Why a folder per write: the lake bucket is versioned (object lock), and MinIO goes on listing
        a prefix whose objects are all delete markers. Hadoop's FileOutputCommitter (algorithm 1,
        Spark's default) commits a job by listing ``<output>/_temporary/0/``; in a folder written
        before, that listing also returns the task folders of earlier jobs, deleted long ago, and the
        commit fails with FileNotFoundException. In a folder of its own the listing holds only this
        job's tasks, so the plain committer is safe, and S3A's magic or staging committers are not
        needed: they avoid the commit's copy and make output appear at once in folders that readers
        list, and no reader lists these folders (a snapshot names its files)."""
        return f"{self.view_uri(view)}/write={write_id}"

    def _abs(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    # ---- files ----
    def list_files(self, view: str, write_id: str | None = None) -> dict[str, DataFile]:
        """The view's data files (only one write's with ``write_id``), by path relative to the root."""
        base = self._abs(view if write_id is None else f"{view}/write={write_id}")
        sel = pafs.FileSelector(base, allow_not_found=True, recursive=True)
        out = {}
        for info in self.fs.get_file_info(sel):
            if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
                continue
            rel = info.path[len(self.root) + 1 :]
            date = next((p.removeprefix("date=") for p in rel.split("/") if p.startswith("date=")), "")
            out[rel] = DataFile(rel, int(info.size or 0), date)
        return out

    # ---- snapshots ----
    def latest_id(self) -> str | None:
        try:
            with self.fs.open_input_stream(self._abs(f"{SNAPSHOTS}/LATEST")) as f:
                return bytes(f.read()).decode().strip() or None
        except FileNotFoundError:
            return None

    def snapshot(self, snapshot_id: str | None = None) -> Snapshot:
        snapshot_id = snapshot_id or self.latest_id()
        if snapshot_id is None:
            raise SnapshotNotFound(f"the offline store at {self.root} has no snapshot yet: run the featurizer")
        try:
            with self.fs.open_input_stream(self._abs(f"{SNAPSHOTS}/{snapshot_id}.json")) as f:
                raw = json.loads(bytes(f.read()))
        except FileNotFoundError:
            raise SnapshotNotFound(f"no snapshot {snapshot_id!r} in {self.root}") from None
        return Snapshot(**raw)

    def commit(
        self, added: Mapping[str, Iterable[DataFile]], *, now: datetime | None = None, inputs: str = ""
    ) -> Snapshot:
        """A new snapshot: the parent's files, where each added file's (view, date) replaces the
        parent's files of that partition, recording ``inputs`` (what its writer read). Written
        first, then published through LATEST."""
        parent_id = self.latest_id()
        parent = self.snapshot(parent_id) if parent_id else None
        views: dict[str, dict[str, object]] = dict(parent.views) if parent else {}
        for view, files in added.items():
            new = sorted(files, key=lambda f: f.path)
            replaced = {f.date for f in new}
            kept = [f for f in (parent.files(view) if parent else []) if f.date not in replaced]
            schema_id = FEATURE_VIEWS[view].schema_id if view in FEATURE_VIEWS else ""
            views[view] = {
                "schema_id": schema_id,
                "files": [asdict(f) for f in sorted([*kept, *new], key=lambda f: f.path)],
            }
        snap = Snapshot(new_snapshot_id(now), parent_id, (now or datetime.now(UTC)).isoformat(), views, inputs)
        self._put(f"{SNAPSHOTS}/{snap.snapshot_id}.json", snap.to_json().encode())
        self._put(f"{SNAPSHOTS}/LATEST", snap.snapshot_id.encode())
        return snap

    def _put(self, rel: str, body: bytes) -> None:
        self.fs.create_dir(self._abs(rel).rsplit("/", 1)[0], recursive=True)  # a no-op on S3
        with self.fs.open_output_stream(self._abs(rel)) as f:
            f.write(body)

    # ---- reads ----
    def read(
        self,
        view: FeatureView,
        snapshot: Snapshot,
        columns: Iterable[str] | None = None,
        *,
        dates: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The view's rows in the snapshot (optionally only some date partitions), in file order."""
        wanted = set(dates) if dates is not None else None
        files = [f for f in snapshot.files(view.name) if wanted is None or f.date in wanted or f.date == WHOLE_VIEW]
        cols = list(dict.fromkeys([*view.columns[:3], *(columns if columns is not None else view.feature_names)]))
        if not files:
            return _empty_view(view, cols)
        dataset = ds.dataset([self._abs(f.path) for f in files], filesystem=self.fs, format="parquet")
        table = dataset.to_table(columns=cols)
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        for ts in cols[1:3]:
            frame[ts] = utc(frame[ts])
        return frame


_PANDAS = {"float64": "float64", "int64": "Int64", "bool": "boolean", "string": "object"}


def _empty_view(view: FeatureView, cols: list[str]) -> pd.DataFrame:
    data: dict[str, pd.Series] = {
        view.entity.join_key: pd.Series([], dtype=object),
        view.timestamp_field: pd.Series([], dtype="datetime64[ns, UTC]"),
        view.created_timestamp_field: pd.Series([], dtype="datetime64[ns, UTC]"),
    }
    for c in cols[3:]:
        data[c] = pd.Series([], dtype=_PANDAS[view.feature(c).dtype])
    return pd.DataFrame(data)[cols]
