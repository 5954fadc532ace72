"""RFC 3339 UTC timestamps as the Kubernetes API writes them (``2026-01-01T00:00:00Z``)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
