"""Small silver and batch tables whose features are known by heart: the tests' fixture and `make demo-features`' input when no processor has written silver yet."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def measurement(pid: str, minutes: float, name: str, value: float, unit: str, *, kind: str = "vitals", late_h: float = 0) -> dict[str, Any]:
    return {
        "event_id": f"{pid}-{name}-{minutes}",
        "patient_id": pid,
        "event_time": at(minutes),
        "source": "monitor-1",
        "kind": kind,
        "measurement": name,
        "value": float(value),
        "unit": unit,
        "ingested_at": at(minutes + 1 + late_h * 60),
    }


def tables() -> dict[str, list[dict[str, Any]]]:
    """Two patients. PT1: heart rate 60, 70, 80 at 10, 20, 30 min (after T0), sbp 120 / dbp 80 at 30 min,
    temperature 37 at 30 min, heart rate 75 at 150 min, a creatinine backfilled 5 hours late, heparin + aspirin, an admission, an
    adverse event at 3h. PT2: one heart rate at 90 min, nothing else."""
    meas = [
        measurement("PT1", 10, "heart_rate", 60, "bpm"),
        measurement("PT1", 20, "heart_rate", 70, "bpm"),
        measurement("PT1", 30, "heart_rate", 80, "bpm"),
        measurement("PT1", 30, "systolic_bp", 120, "mmHg"),
        measurement("PT1", 30, "diastolic_bp", 80, "mmHg"),
        measurement("PT1", 30, "temperature", 37.0, "degC"),
        measurement("PT1", 40, "creatinine", 2.5, "mg/dL", kind="labs", late_h=5),
        measurement("PT1", 150, "heart_rate", 75, "bpm"),
        measurement("PT2", 90, "heart_rate", 110, "bpm"),
    ]
    meds = [
        {"event_id": f"m{i}", "patient_id": "PT1", "event_time": at(m), "source": "emar", "drug": d, "dose": 1.0,
         "dose_unit": "mg", "route": "iv", "ingested_at": at(m + 1)}
        for i, (m, d) in enumerate([(15, "Heparin"), (25, "aspirin")])
    ]
    adm = [
        {"event_id": "a1", "patient_id": "PT1", "event_time": at(5), "source": "adt", "event_type": "admit",
         "hospital_id": "H1", "department": "ICU", "discharge_status": None, "trial_arm": "treatment",
         "ingested_at": at(6)},
    ]
    outcomes = [
        {"event_id": "o1", "patient_id": "PT1", "event_time": at(180), "source": "ehr", "outcome_type": "adverse_event",
         "severity": "high", "prediction_id": None, "ingested_at": at(181)},
    ]
    return {"measurements": meas, "medications": meds, "admissions": adm, "outcomes": outcomes}


def demographics() -> list[dict[str, Any]]:
    return [
        {"patient_id": "PT1", "date_of_birth": date(1950, 3, 1), "gender": "F", "blood_type": "A+", "province": "ON",
         "city": "Ottawa", "postal_code": "K1A", "healthcare_region": "East", "insurance_type": "public",
         "registration_date": date(2020, 1, 1)},
    ]
