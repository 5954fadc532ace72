"""Readiness probes and idempotent provisioning for the local stack's components."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterable

import httpx
import redis as redis_lib
import sqlalchemy as sa
from botocore.exceptions import ClientError

from clinops_common.settings import Connections
from clinops_common.storage import s3_client


class CommandError(RuntimeError):
    """A set-up command failed; the message carries its output."""


def run_checked(argv: list[str], user: str | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, user=user, group=user)
    if proc.returncode != 0:
        raise CommandError(f"{argv[0]} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def redis_ready(url: str) -> bool:
    try:
        client = redis_lib.Redis.from_url(url, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis_lib.RedisError:
        return False


def postgres_ready(url: str) -> bool:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 2}, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def kafka_ready(bootstrap: str) -> bool:
    """True once the broker answers metadata requests and has an active controller."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "unable to connect" while starting

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) >= 0
        except (TimeoutError, KafkaError, OSError):
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())


def ensure_buckets(conns: Connections, buckets: Iterable[str]) -> None:
    s3 = s3_client(conns)
    for bucket in buckets:
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError:
            s3.create_bucket(Bucket=bucket)


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
