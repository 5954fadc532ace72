"""Least-privilege lake access per component: the S3 (IAM) policy each component's credentials get.

One user per component, each with one policy on the lake bucket. Object actions are granted per
prefix (a layer); listing the bucket is granted to every reader (s3a and the offline store list
folders), naming keys but reading none. Nobody but the lifecycle tool may delete a version
(``s3:DeleteObjectVersion``) and nobody may touch bronze or dead letters except to add to them: ingest
may only PUT there (the conditional, object-locked write), and a DELETE of a bronze name by any
component is refused by the policy before object lock is even asked.

``python -m clinops_common.lifecycle policy <component>`` prints a policy for a platform team's
S3 or MinIO admin (``mc admin policy create``); the local stack creates the users with these.
"""

from __future__ import annotations

from typing import Any, Literal

Component = Literal["ingest", "processor", "featurizer", "trainer", "scorer", "monitor", "operator", "lifecycle"]
COMPONENTS: tuple[Component, ...] = (
    "ingest",
    "processor",
    "featurizer",
    "trainer",
    "scorer",
    "monitor",
    "operator",
    "lifecycle",
)

READ = ("s3:GetObject",)
ADD = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
# Replacing a Spark output (a silver date, an offline-store file) deletes the current version; the
# replaced version stays until the layer's noncurrent-version rule removes it.
REPLACE = (*READ, *ADD, "s3:DeleteObject")

# prefix -> object actions, per component (run results under runs/ are every stage's own report)
GRANTS: dict[Component, dict[str, tuple[str, ...]]] = {
    # bronze and dead letters: add only, under COMPLIANCE retention; never read back, never deleted
    "ingest": {
        "bronze/": (*ADD, "s3:PutObjectRetention"),
        "deadletter/": (*ADD, "s3:PutObjectRetention"),
        "runs/": ADD,
    },
    # reads every version of bronze (the first is the record), writes silver and quarantine
    "processor": {
        "bronze/": (*READ, "s3:GetObjectVersion"),
        "silver/": REPLACE,
        "state/processor/": REPLACE,
        "runs/": ADD,
    },
    # the batch and streaming featurizers, the materializer and the stroke stage
    "featurizer": {"silver/": READ, "batch/": READ, "features/": REPLACE, "runs/": ADD},
    "trainer": {"features/": READ, "batch/": READ, "synthetic/oracle/": READ, "runs/": ADD},
    "scorer": {"features/offline/": READ},  # batch scoring of past hours from the offline store
    "monitor": {"silver/outcomes/": READ, "features/offline/": READ},
    "operator": {"runs/": READ},  # the stage result documents
    # retention rules, object lock state, the offline-store sweep (expires snapshots, deletes files)
    "lifecycle": {"features/offline/": (*REPLACE, "s3:GetObjectVersion")},
}
BUCKET_ACTIONS: dict[Component, tuple[str, ...]] = {
    "ingest": ("s3:ListBucket", "s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning"),
    "processor": ("s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"),
    "featurizer": ("s3:ListBucket", "s3:ListBucketMultipartUploads"),
    "trainer": ("s3:ListBucket",),
    "scorer": ("s3:ListBucket",),
    "monitor": ("s3:ListBucket",),
    "operator": ("s3:ListBucket",),
    "lifecycle": (
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketVersioning",
    ),
}


def policy(component: Component, bucket: str) -> dict[str, Any]:
    """The IAM policy document of ``component`` on the lake ``bucket``."""
    if component not in GRANTS:
        raise ValueError(f"unknown component {component!r}: one of {', '.join(COMPONENTS)}")
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": list(BUCKET_ACTIONS[component]), "Resource": [f"arn:aws:s3:::{bucket}"]}
    ]
    by_actions: dict[tuple[str, ...], list[str]] = {}
    for prefix, actions in GRANTS[component].items():
        by_actions.setdefault(tuple(sorted(set(actions))), []).append(f"arn:aws:s3:::{bucket}/{prefix}*")
    statements += [
        {"Effect": "Allow", "Action": list(actions), "Resource": sorted(resources)}
        for actions, resources in sorted(by_actions.items())
    ]
    return {"Version": "2012-10-17", "Statement": statements}
