"""Readiness probes: does a server answer? Used by every service's ``check`` and by the local stack.

Each returns True or False and never raises for an unreachable server.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import redis as redis_lib
import sqlalchemy as sa


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


def mongodb_ready(url: str) -> bool:
    """True once a MongoDB-wire server (FerretDB locally) answers ``ping``."""
    import pymongo
    from pymongo.errors import PyMongoError

    try:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            url, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000
        )
        try:
            return bool(client.admin.command("ping").get("ok"))
        finally:
            client.close()
    except PyMongoError:
        return False


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
