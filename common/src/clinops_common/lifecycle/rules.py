"""Retention per lake layer, as S3 lifecycle rules (pure: settings in, rules out).

S3 counts a rule's days from an object's write time (its last modification), never from the date
in its key: a late event that the processor writes into an old ``date=`` partition rewrites that
partition, which then lives ``silver_days`` from the rewrite. Bronze objects are named by the hour
of their Kafka timestamp but expire ``bronze_days`` after ingest wrote them, as their object lock
does.

The lake bucket is versioned (object lock needs it): an expiry makes the current version noncurrent
(a delete marker), and noncurrent versions go ``noncurrent_days`` later, once any lock on them has
passed (the server never removes a locked version). ``features/offline/``, whose current objects
must never expire by age, keeps only the noncurrent rule: which files are still needed is known only
from the snapshot manifests; the sweep (``sweep.py``) deletes what no kept snapshot lists, and the
rule then removes the noncurrent versions it leaves.

``features/stroke/`` holds one folder per stroke run (``<pipeline>/run=<run id>/write=<id>/``: its
Parquet, CSV sample and quarantine), written once and named by the run's result; each folder expires
``stroke_days`` after its write, the newest one too when no run has come for that long (the views
themselves are in the offline store's snapshots, kept by the sweep).

``state/``, ``runs/``, ``batch/`` and ``synthetic/`` have no rule: bookkeeping, run results, the batch
sources' copies and the generator's truth are kept until someone deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

RULE_PREFIX = "clinops-"


class RetentionSettings(BaseSettings):
    """Days each layer is kept (``CLINOPS_RETENTION_*``)."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_RETENTION_", extra="ignore")

    bronze_days: int = Field(90, ge=1, description="Raw events as received; also their object lock.")
    deadletter_days: int = Field(
        90, ge=1, description="Messages refused at ingest: raw input like bronze, kept (and locked) as long."
    )
    silver_days: int = Field(730, ge=1, description="Cleaned tables and silver/quarantine (why a row is missing).")
    offline_features_days: int = Field(
        730, ge=1, description="Offline snapshots older than this are expired by the sweep (never a named one)."
    )
    stroke_days: int = Field(
        730, ge=1, description="Each stroke run's output folder (features/stroke/), counted from its write."
    )
    noncurrent_days: int = Field(1, ge=1, description="Noncurrent versions (after expiry or a sweep) go this later.")
    sweep_grace_hours: int = Field(
        24, ge=0, description="The sweep leaves files younger than this (a featurizer may be writing them)."
    )


@dataclass(frozen=True)
class LayerRule:
    layer: str
    prefix: str
    expire_days: int | None  # current versions; None: never by age
    noncurrent_days: int
    why: str

    @property
    def rule_id(self) -> str:
        return f"{RULE_PREFIX}{self.layer}"

    def to_s3(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "ID": self.rule_id,
            "Filter": {"Prefix": self.prefix},
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": self.noncurrent_days},
        }
        if self.expire_days is not None:
            rule["Expiration"] = {"Days": self.expire_days}
        return rule


def layer_rules(s: RetentionSettings) -> list[LayerRule]:
    return [
        LayerRule("bronze", "bronze/", s.bronze_days, s.noncurrent_days, "raw events, locked at write"),
        LayerRule("deadletter", "deadletter/", s.deadletter_days, s.noncurrent_days, "refused raw messages, locked"),
        LayerRule("silver", "silver/", s.silver_days, s.noncurrent_days, "cleaned tables and quarantine"),
        LayerRule(
            "offline-features", "features/offline/", None, s.noncurrent_days, "sweep expires snapshots and files"
        ),
        LayerRule("stroke", "features/stroke/", s.stroke_days, s.noncurrent_days, "one folder per run, by age"),
    ]


def normalise(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as the server returns it, reduced to what ``LayerRule.to_s3`` sets (for comparison)."""
    prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
    out: dict[str, Any] = {
        "ID": rule.get("ID", ""),
        "Filter": {"Prefix": prefix},
        "Status": rule.get("Status", ""),
    }
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpiration"].get("NoncurrentDays")
        }
    expiration = rule.get("Expiration", {})
    if "Days" in expiration:
        out["Expiration"] = {"Days": expiration["Days"]}
    elif "Date" in expiration:
        out["Expiration"] = {"Date": expiration["Date"]}
    return out


def merged(current: list[dict[str, Any]], ours: list[LayerRule]) -> list[dict[str, Any]]:
    """The bucket's rules with ours in place of any earlier ``clinops-*`` rules; others kept as they are."""
    foreign = [normalise(r) for r in current if not str(r.get("ID", "")).startswith(RULE_PREFIX)]
    return foreign + [r.to_s3() for r in ours]
