"""The lake bucket's lifecycle configuration and object lock, through the S3 API (MinIO or AWS)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from clinops_common.lifecycle.rules import LayerRule, merged, normalise

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class LakeNotLockable(RuntimeError):
    """The lake bucket has no object lock (it can only be enabled when the bucket is created)."""


def current_rules(s3: S3Client, bucket: str) -> list[dict[str, Any]]:
    try:
        return list(s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", []))  # type: ignore[arg-type]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise


def apply_rules(s3: S3Client, bucket: str, rules: list[LayerRule]) -> bool:
    """Make the bucket's ``clinops-*`` rules these (other rules are kept). Returns whether anything
    changed: a second run with the same settings writes nothing."""
    current = current_rules(s3, bucket)
    wanted = merged(current, rules)
    key = lambda r: r["ID"]  # noqa: E731
    if sorted(map(normalise, current), key=key) == sorted(wanted, key=key):
        return False
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": wanted})  # type: ignore[typeddict-item]
    return True


@dataclass(frozen=True)
class LockState:
    enabled: bool
    versioning: str  # Enabled | Suspended | "" (never enabled)


def lock_state(s3: S3Client, bucket: str) -> LockState:
    versioning = str(s3.get_bucket_versioning(Bucket=bucket).get("Status", ""))
    try:
        conf = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        enabled = conf.get("ObjectLockEnabled") == "Enabled"
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in (
            "ObjectLockConfigurationNotFoundError",
            "NoSuchObjectLockConfiguration",
        ):
            enabled = False
        else:
            raise
    return LockState(enabled, versioning)


def create_lake_bucket(s3: S3Client, bucket: str) -> bool:
    """Create the lake bucket with object lock (hence versioning) if it does not exist; returns
    whether it was created. An existing bucket without lock is an error (``LakeNotLockable``)."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        return True
    if not lock_state(s3, bucket).enabled:
        raise LakeNotLockable(
            f"bucket {bucket!r} exists without object lock; bronze immutability needs a bucket created with it"
            " (move its objects to a new bucket created by `python -m clinops_common.lifecycle create-bucket`)"
        )
    return False


@dataclass(frozen=True)
class FirstVersion:
    """The first version ever written under a name: the record (bronze's guarantee)."""

    key: str
    version_id: str
    current: bool  # it is still the current version: a plain GET (or an s3a read) of the name returns it


def oldest_versions(entries: Iterable[Mapping[str, Any]]) -> dict[str, FirstVersion]:
    """Each name's oldest object version (delete markers skipped), from ListObjectVersions ``Versions``
    entries in the order S3 lists them (per name, newest first): on equal ``LastModified`` the one
    listed later is the older."""
    oldest: dict[str, tuple[Any, int, Mapping[str, Any]]] = {}
    for i, v in enumerate(entries):
        rank = (v["LastModified"], -i)
        if v["Key"] not in oldest or rank < oldest[v["Key"]][:2]:
            oldest[v["Key"]] = (*rank, v)
    return {k: FirstVersion(k, str(v["VersionId"]), bool(v.get("IsLatest"))) for k, (_, _, v) in oldest.items()}


def first_versions(s3: S3Client, bucket: str, prefix: str) -> dict[str, FirstVersion]:
    """The first version of every name under ``prefix``, names whose current version is a delete
    marker or a later PUT included (what a plain listing hides or replaces)."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    return oldest_versions(v for page in pages for v in page.get("Versions", []))


def versions(s3: S3Client, bucket: str, key: str) -> list[dict[str, Any]]:
    """Every version of ``key`` (delete markers included, flagged ``DeleteMarker``), oldest first."""
    out: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        out += [{**v, "DeleteMarker": False} for v in page.get("Versions", []) if v["Key"] == key]
        out += [{**m, "DeleteMarker": True} for m in page.get("DeleteMarkers", []) if m["Key"] == key]
    return sorted(out, key=lambda v: v["LastModified"])


def read_first(s3: S3Client, bucket: str, first: FirstVersion) -> bytes:
    """The bytes of ``first`` (by its version id, whatever was put or deleted under the name since)."""
    return s3.get_object(Bucket=bucket, Key=first.key, VersionId=first.version_id)["Body"].read()


def original(s3: S3Client, bucket: str, key: str) -> bytes:
    """The bytes of the first version ever written under ``key`` (what ingest wrote), whatever was
    put or deleted since: how a reader gets the original of a rewritten bronze name."""
    first = first_versions(s3, bucket, key).get(key)
    if first is None:
        raise FileNotFoundError(f"s3://{bucket}/{key} has no version")
    return read_first(s3, bucket, first)
