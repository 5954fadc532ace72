"""Idempotent provisioning of the local stack's components (buckets, databases) and checked commands."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from botocore.exceptions import ClientError
from pydantic import SecretStr

from clinops_common.settings import Connections
from clinops_common.storage import s3_client


class CommandError(RuntimeError):
    """A set-up command failed; the message carries its output."""


def run_checked(argv: list[str], user: str | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, user=user, group=user)
    if proc.returncode != 0:
        raise CommandError(f"{argv[0]} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")


def ensure_buckets(conns: Connections, buckets: Iterable[str]) -> None:
    s3 = s3_client(conns)
    for bucket in buckets:
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError:
            s3.create_bucket(Bucket=bucket)


def ensure_lake(conns: Connections) -> None:
    """The lake bucket with object lock (created so if missing) and the retention rules applied.

    A lake bucket created before object lock existed here cannot be converted: it is left as it is,
    with a warning (``make clean`` starts afresh)."""
    from clinops_common.lifecycle.bucket import LakeNotLockable, apply_rules, create_lake_bucket
    from clinops_common.lifecycle.rules import RetentionSettings, layer_rules

    s3 = s3_client(conns)
    try:
        create_lake_bucket(s3, conns.lake_bucket)
    except LakeNotLockable as err:
        print(f"warning: {err}", file=sys.stderr)
    apply_rules(s3, conns.lake_bucket, layer_rules(RetentionSettings()))


def ensure_lake_users(conns: Connections, bucket: str, users: Mapping[str, tuple[str, SecretStr]]) -> None:
    """One MinIO user per component (``users``: component -> access key, secret key), each with its
    own policy on ``bucket`` (``clinops_common.lifecycle.access``); idempotent (a repeat rewrites the
    same policy and secret), through MinIO's admin API with the admin credentials of ``conns``."""
    from urllib.parse import urlsplit

    from minio import MinioAdmin
    from minio.credentials.providers import StaticProvider

    from clinops_common.lifecycle.access import policy

    url = urlsplit(conns.s3_endpoint_url)
    admin = MinioAdmin(
        endpoint=url.netloc,
        credentials=StaticProvider(conns.s3_access_key.get_secret_value(), conns.s3_secret_key.get_secret_value()),
        secure=url.scheme == "https",
    )
    for component, (access_key, secret_key) in users.items():
        name = f"{bucket}-{component}"
        admin.policy_add(name, policy=policy(component, bucket))  # type: ignore[arg-type]
        admin.user_add(access_key, secret_key.get_secret_value())
        admin.policy_set(name, user=access_key)


def ensure_schema(owner_url: str, passwords: Mapping[str, SecretStr]) -> None:
    """Migrate the clinops database to head, give each component's role its login and create the
    months ahead of ``predictions`` (what the chart's hook Job and CronJob do on a cluster)."""
    from clinops_common.db import migrate, partitions, roles

    migrate.upgrade(owner_url)
    for role, password in passwords.items():
        roles.grant_login(owner_url, role, password.get_secret_value())
    partitions.maintain(owner_url)


def ensure_databases(admin_url: str, databases: Iterable[str]) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            existing = set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
            for db in databases:
                if db not in existing:
                    if not db.isidentifier():
                        raise ValueError(f"refusing to create database with name {db!r}")
                    conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    finally:
        engine.dispose()
