"""The scorer's HTTP contract: typed request and response models (the OpenAPI page shows them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from clinops_scorer.config import ScorerSettings

# A random surrogate key (never an MRN): letters, digits, '-', '_' and '.', at most 64 characters.
PatientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", min_length=1, max_length=64)]
MAX_BATCH = ScorerSettings().max_batch


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: PatientId = Field(description="The patient's surrogate key.", examples=["PT00042"])


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_ids: list[PatientId] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} patient keys (CLINOPS_SCORER_MAX_BATCH), read in one pipelined round trip.",
        examples=[["PT00042", "PT00043"]],
    )


class ViewFreshness(BaseModel):
    status: Literal["fresh", "stale", "missing"]
    event_timestamp: datetime | None = Field(description="The time step the view's row describes.")
    age_seconds: float | None = Field(description="Prediction time minus the row's event time.")


class Prediction(BaseModel):
    prediction_id: UUID = Field(description="The audit row's id in the predictions table.")
    patient_id: str
    adverse_event_probability: float = Field(
        ge=0, le=1, description="P(outcome) from the model; the outcome is named in `outcome`."
    )
    risk_level: Literal["LOW", "MEDIUM", "HIGH"]
    model_name: str
    model_version: str
    outcome: str = Field(description="What the probability is of (the model's label).")
    predicted_at: datetime
    degraded: bool = Field(description="True when a stale or missing view was imputed (feature_policy=degrade).")
    degraded_views: list[str] = Field(description="The views imputed when degraded.")
    feature_freshness: dict[str, ViewFreshness] = Field(description="Per feature view: the age of its row.")


class Refusal(BaseModel):
    patient_id: str
    status: int = Field(description="The HTTP status /predict would answer for this patient (404, 409).")
    error: str
    stale_views: list[str] = []
    missing_views: list[str] = []


class BatchResponse(BaseModel):
    predictions: list[Prediction]
    refused: list[Refusal] = Field(description="Patients not scored, and why (unknown, stale or missing views).")


class ErrorBody(BaseModel):
    error: str
    stale_views: list[str] | None = None
    missing_views: list[str] | None = None
