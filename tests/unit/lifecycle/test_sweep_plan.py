"""The sweep's plan and the retention rules, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clinops_common.features.offline import DataFile, Snapshot
from clinops_common.lifecycle import rules
from clinops_common.lifecycle.sweep import StoredFile, plan

NOW = datetime(2026, 12, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=800)


def _snap(sid: str, created: datetime, *paths: str) -> Snapshot:
    files = [{"path": p, "size": 1, "date": "2024-01-01"} for p in paths]
    return Snapshot(sid, None, created.isoformat(), {"v": {"schema_id": "", "files": files}})


def test_plan_keeps_newest_named_and_young_snapshots_and_their_files() -> None:
    snaps = [
        _snap("a", OLD, "v/a", "v/shared"),
        _snap("b", OLD, "v/b", "v/shared"),
        _snap("c", OLD, "v/c"),
        _snap("d", NOW - timedelta(days=3), "v/d"),
    ]
    files = [StoredFile(p, OLD) for p in ("v/a", "v/b", "v/c", "v/d", "v/shared", "v/orphan")]
    files.append(StoredFile("v/fresh", NOW - timedelta(minutes=5)))
    p = plan(snaps, "c", {"a": "m v1"}, files, now=NOW, retention=timedelta(days=730), grace=timedelta(hours=24))
    assert p.kept == {"a": "m v1", "c": "newest", "d": "young"}
    assert p.expired == ["b"]
    assert p.deleted == ["v/b", "v/orphan"]
    assert p.spared_young == ["v/fresh"]
    assert DataFile("v/a", 1, "2024-01-01") in snaps[0].files("v")


def test_plan_without_latest_pointer_still_keeps_the_newest_snapshot() -> None:
    p = plan([_snap("x1", OLD, "v/1"), _snap("x2", OLD, "v/2")], None, {}, [StoredFile("v/1", OLD)],
             now=NOW, retention=timedelta(days=1), grace=timedelta(0))  # fmt: skip
    assert p.kept == {"x2": "newest"}
    assert p.deleted == ["v/1"]


def test_rules_for_each_layer_and_the_merge_keeps_foreign_rules() -> None:
    layer = {r.layer: r for r in rules.layer_rules(rules.RetentionSettings())}
    assert layer["bronze"].to_s3()["Expiration"] == {"Days": 90}
    assert "Expiration" not in layer["offline-features"].to_s3()
    foreign = {"ID": "x", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 2}}
    stale = {"ID": "clinops-old", "Filter": {"Prefix": "old/"}, "Status": "Enabled"}
    merged = rules.merged([foreign, stale], list(layer.values()))
    assert foreign in merged
    assert all(r["ID"] != "clinops-old" for r in merged)
    assert rules.normalise({**foreign, "Expiration": {"Days": 2, "ExpiredObjectDeleteMarker": False}}) == foreign
