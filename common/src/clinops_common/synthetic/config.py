"""What the generator makes: cohort size, time window, cadence and fault rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clinops_common.lake import Topic

FaultKind = str  # one of FAULT_KINDS

FAULT_KINDS: tuple[str, ...] = (
    "duplicate",  # the same message sent twice (the processor keeps one)
    "late",  # sent hours after it happened (lands in a later bronze hour, the right silver date)
    "out_of_order",  # sent minutes late, after newer events of the same patient
    "fahrenheit",  # temperature sent in degF (converted to degC)
    "mmol_l",  # glucose sent in mmol/L (converted to mg/dL)
    "out_of_range",  # a physiologically impossible value (quarantined: out_of_range)
    "malformed_json",  # not JSON (dead-lettered: malformed_json)
    "missing_field",  # a required field left out (dead-lettered: missing_field)
    "unknown_field",  # a field the schema does not know (dead-lettered: unknown_field)
    # Valid events a processor rule must reject (off by default, so default data sets stay as they were):
    "unknown_measurement",  # a measurement name the vocabulary does not know (quarantined: unknown_measurement)
    "unknown_unit",  # a unit not accepted for the measurement (quarantined: unknown_unit)
    "dose_not_positive",  # a medication dose of zero or less (quarantined: dose_not_positive)
    "epoch_time",  # event_time as Unix seconds: the schema accepts it, silver cannot (quarantined: invalid_record)
)


class FaultRates(BaseModel):
    """Probability that an eligible event gets each fault; at most one fault per event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duplicate: float = Field(0.01, ge=0, le=1)
    late: float = Field(0.01, ge=0, le=1)
    out_of_order: float = Field(0.01, ge=0, le=1)
    fahrenheit: float = Field(0.25, ge=0, le=1, description="Share of temperature readings sent in degF.")
    mmol_l: float = Field(0.25, ge=0, le=1, description="Share of glucose readings sent in mmol/L.")
    out_of_range: float = Field(0.005, ge=0, le=1, description="Vitals and labs only.")
    malformed_json: float = Field(0.003, ge=0, le=1)
    missing_field: float = Field(0.003, ge=0, le=1)
    unknown_field: float = Field(0.003, ge=0, le=1)
    unknown_measurement: float = Field(0.0, ge=0, le=1, description="Vitals and labs only.")
    unknown_unit: float = Field(0.0, ge=0, le=1, description="Vitals and labs only.")
    dose_not_positive: float = Field(0.0, ge=0, le=1, description="Medications only.")
    epoch_time: float = Field(0.0, ge=0, le=1)

    @classmethod
    def none(cls) -> FaultRates:
        return cls(**dict.fromkeys(FAULT_KINDS, 0.0))


ScenarioKind = Literal["stable", "concept_drift", "covariate_shift", "calibration_drift"]


class Scenario(BaseModel):
    """A change of the world at ``at_hours`` after the window start (see ``latent.py``): ``stable``
    (none), ``concept_drift`` (the hazard stops following the state the vitals show),
    ``covariate_shift`` (the bedside monitors read temperature ``temperature_offset_c`` high) or
    ``calibration_drift`` (the hazard, hence the base rate, is multiplied by ``hazard_factor``).
    Before ``at_hours`` the rules are those of ``stable``; with the same seed the patients and their
    latent severity paths are the same in every scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ScenarioKind = "stable"
    at_hours: float = Field(0.0, ge=0, description="When the change starts, in hours after the window start.")
    temperature_offset_c: float = Field(1.0, description="covariate_shift: degC added to monitor temperatures.")
    hazard_factor: float = Field(2.0, gt=0, description="calibration_drift: factor on the hourly hazard.")


def default_start() -> datetime:
    """Midnight UTC two days ago: recent enough for Kafka's retention, stable within a day."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=2)


class GeneratorConfig(BaseModel):
    """A synthetic data set: ``patients`` streaming inpatients over ``days`` from ``start``; the
    stroke cohort (batch tables) has ``cohort`` patients, the streaming ones first (same ids)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 7
    patients: int = Field(10, ge=1, le=99999)
    days: float = Field(1.0, gt=0, le=366)
    start: datetime = Field(default_factory=default_start, description="Window start (UTC).")
    cohort: int | None = Field(None, ge=1, le=999_999, description="Batch cohort size; default: patients.")
    vitals_interval_min: float = Field(5.0, gt=0, description="Minutes between vital-sign readings.")
    labs_interval_h: float = Field(6.0, gt=0, description="Mean hours between lab panels.")
    meds_interval_h: float = Field(6.0, gt=0, description="Mean hours between medication administrations.")
    topics: tuple[Topic, ...] = Field(
        ("vitals", "labs", "medications", "admissions", "outcomes"), description="Topics to emit."
    )
    faults: FaultRates = Field(default_factory=FaultRates)
    scenario: Scenario = Field(default_factory=Scenario)

    @model_validator(mode="after")
    def _check(self) -> GeneratorConfig:
        if self.start.tzinfo is None:
            object.__setattr__(self, "start", self.start.replace(tzinfo=UTC))
        if self.cohort is not None and self.cohort < self.patients:
            raise ValueError("cohort must be at least the number of streaming patients")
        return self

    @property
    def cohort_size(self) -> int:
        return self.cohort or self.patients

    @property
    def hours(self) -> int:
        return max(1, round(self.days * 24))


def patient_id(i: int) -> str:
    """``PT00001`` for i = 0 (``PT100000`` for i = 99999): shared by the streaming patients and the stroke cohort."""
    return f"PT{i + 1:05d}"
