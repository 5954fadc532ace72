"""Clients for the lake (S3) built from ``Connections``: the one place they are constructed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from clinops_common.settings import Connections

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def s3_client(conns: Connections) -> S3Client:
    """An S3 client for the configured endpoint (path-style addressing, which MinIO needs)."""
    return boto3.client(
        "s3",
        endpoint_url=conns.s3_endpoint_url,
        aws_access_key_id=conns.s3_access_key.get_secret_value(),
        aws_secret_access_key=conns.s3_secret_key.get_secret_value(),
        region_name=conns.s3_region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )
