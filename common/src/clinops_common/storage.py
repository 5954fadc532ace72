"""Clients for the lake (S3) built from the lake's connection: the one place they are constructed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from clinops_common.settings import LakeConnection

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pyarrow.fs import S3FileSystem


def s3_client(conns: LakeConnection) -> S3Client:
    """An S3 client for the configured endpoint (path-style addressing, which MinIO needs)."""
    return boto3.client(
        "s3",
        endpoint_url=conns.s3_endpoint_url,
        aws_access_key_id=conns.s3_access_key.get_secret_value(),
        aws_secret_access_key=conns.s3_secret_key.get_secret_value(),
        region_name=conns.s3_region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )


def s3_filesystem(conns: LakeConnection) -> S3FileSystem:
    """A pyarrow filesystem on the same endpoint (for Parquet without Spark)."""
    from pyarrow import fs

    scheme, _, host = conns.s3_endpoint_url.partition("://")
    return fs.S3FileSystem(
        access_key=conns.s3_access_key.get_secret_value(),
        secret_key=conns.s3_secret_key.get_secret_value(),
        endpoint_override=host,
        scheme=scheme,
        region=conns.s3_region,
    )
