"""What a featurize run reads, as one fingerprint: equal fingerprints, equal snapshots.

A featurize run is a function of the silver tables it reads (measurements, medications, admissions,
outcomes), the batch demographics, its arguments and the code that computes (this package,
``clinops_common``, PySpark), and of nothing else: it reads no clock, and the hourly grid ends where
the data ends. Each snapshot it commits records the fingerprint of those inputs
(``Snapshot.inputs``); a run whose fingerprint equals the latest snapshot's reuses that snapshot
instead of computing the same files again (``job.reusable``). A retraining run the monitor asks for
between two ingests, or a scheduled run after an hour without data, therefore costs a listing of the
lake, not a Spark job. The fingerprint is conservative: any object added, replaced or removed under
those prefixes, any argument, any edit of the code's sources gives another one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from clinops_common.contracts import FeaturizeArgs
from clinops_common.lake import BatchTable, SilverTable, key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# What a featurize run reads (``job._featurize`` reads exactly these tables), as lake prefixes.
SILVER_TABLES: tuple[SilverTable, ...] = ("measurements", "medications", "admissions", "outcomes")
BATCH_TABLE: BatchTable = "demographics"
SOURCES = (*(key("silver", t) + "/" for t in SILVER_TABLES), key("batch", BATCH_TABLE) + "/")
# The packages whose code decides a snapshot's rows (their sources are hashed: ``code_identity``).
CODE_PACKAGES = ("clinops_featurizer", "clinops_common")

LakeObject = tuple[str, str, int]  # key, ETag, size


def fingerprint(args: FeaturizeArgs, objects: Iterable[LakeObject], code: str) -> str:
    """``sha256:<hex>`` of the arguments that shape the rows (not the pipeline, the run id or
    ``recompute``), the code identity and every (key, ETag, size) read. Pure; order-independent."""
    shaping = args.model_dump(mode="json", exclude={"pipeline", "run_id", "recompute"})
    h = hashlib.sha256(json.dumps({"args": shaping, "code": code}, sort_keys=True).encode())
    for k, etag, size in sorted(objects):
        h.update(f"\n{k}\t{etag}\t{size}".encode())
    return f"sha256:{h.hexdigest()}"


def sources_digest(files: Iterable[tuple[str, bytes]], versions: Iterable[tuple[str, str]]) -> str:
    """``sha256:<hex>`` of source files (relative path, content) and distribution versions. Pure."""
    h = hashlib.sha256()
    for name, body in sorted(files):
        h.update(f"{name}\0{len(body)}\0".encode())
        h.update(body)
    for dist, version in sorted(versions):
        h.update(f"{dist}=={version}\n".encode())
    return f"sha256:{h.hexdigest()}"


@cache
def code_identity() -> str:
    """The digest of every ``.py`` file of ``CODE_PACKAGES`` as installed, and PySpark's version."""
    import importlib

    files = []
    for name in CODE_PACKAGES:
        root = Path(importlib.import_module(name).__file__ or "").parent
        files += [(f"{name}/{p.relative_to(root)}", p.read_bytes()) for p in sorted(root.rglob("*.py"))]
    return sources_digest(files, [("pyspark", metadata.version("pyspark"))])


def lake_objects(s3: S3Client, bucket: str) -> list[LakeObject]:
    """Every current object under ``SOURCES`` (a versioned bucket lists no deleted one)."""
    found: list[LakeObject] = []
    pages = s3.get_paginator("list_objects_v2")
    for prefix in SOURCES:
        for page in pages.paginate(Bucket=bucket, Prefix=prefix):
            found += [(o["Key"], o.get("ETag", ""), int(o.get("Size", 0))) for o in page.get("Contents", [])]
    return found
