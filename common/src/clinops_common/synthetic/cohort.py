"""The stroke cohort: one row per patient in each of the five batch tables (lake.BATCH_SCHEMAS).

Stroke risk is a documented logistic model of age, hypertension, heart disease, glucose, BMI and
smoking (``stroke_probability`` is the true probability; ``stroke_occurred`` is drawn from it).
The same patients' baseline severity drives the streaming hazard (``latent.baseline_severity``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from clinops_common.lake import BatchTable
from clinops_common.synthetic.config import GeneratorConfig, patient_id

PROVINCES: dict[str, list[tuple[str, str, str]]] = {
    # province: [(city, postal prefix, healthcare region)]
    "Ontario": [("Toronto", "M5V", "Toronto Central"), ("Ottawa", "K1P", "Champlain"), ("Hamilton", "L8P", "HNHB")],
    "Quebec": [("Montreal", "H2X", "Montreal"), ("Quebec City", "G1R", "Capitale-Nationale")],
    "British Columbia": [("Vancouver", "V6B", "Vancouver Coastal"), ("Victoria", "V8W", "Island Health")],
    "Alberta": [("Calgary", "T2P", "Calgary Zone"), ("Edmonton", "T5J", "Edmonton Zone")],
    "Nova Scotia": [("Halifax", "B3H", "Central Zone")],
}
HOSPITALS = ("H001", "H002", "H003", "H004")
DEPARTMENTS = ("ICU", "Cardiology", "Neurology", "General Medicine", "Stroke Unit")
PHYSICIANS = ("Dr. Tremblay", "Dr. Nguyen", "Dr. Singh", "Dr. MacDonald", "Dr. Roy", "Dr. Chen", "Dr. Wilson")
BLOOD_TYPES = (("O+", 0.39), ("A+", 0.36), ("B+", 0.076), ("AB+", 0.025), ("O-", 0.07), ("A-", 0.06), ("B-", 0.014))


@dataclass(frozen=True)
class Patient:
    """What the generator knows about a patient (drives both the batch rows and the stream)."""

    patient_id: str
    age: float
    gender: str
    hypertension: bool
    heart_disease: bool
    diabetes: bool
    smoking_status: str
    bmi: float
    avg_glucose: float
    stroke_probability: float
    trial_arm: str
    hospital_id: str
    department: str


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def stroke_probability(
    *, age: float, hypertension: bool, heart_disease: bool, avg_glucose: float, bmi: float, smoking: str
) -> float:
    """The true stroke probability of the cohort (documented logistic model)."""
    logit = (
        -7.2
        + 0.065 * age
        + 0.9 * hypertension
        + 0.8 * heart_disease
        + 0.006 * (avg_glucose - 100)
        + 0.03 * (bmi - 27)
        + {"current": 0.6, "former": 0.25}.get(smoking, 0.0)
    )
    return _sigmoid(logit)


def make_patients(cfg: GeneratorConfig, rng: random.Random) -> list[Patient]:
    patients = []
    for i in range(cfg.cohort_size):
        age = 18 + 77 * rng.betavariate(2.6, 1.6)
        hypertension = rng.random() < _sigmoid(-3.5 + 0.05 * age)
        heart_disease = rng.random() < _sigmoid(-5.0 + 0.05 * age)
        bmi = min(60.0, max(15.0, rng.gauss(27.5, 5.5)))
        diabetes = rng.random() < _sigmoid(-4.0 + 0.02 * age + 0.08 * (bmi - 27))
        glucose = rng.lognormvariate(math.log(150 if diabetes else 95), 0.18)
        smoking = rng.choices(("never", "former", "current"), weights=(0.55, 0.28, 0.17))[0]
        patients.append(
            Patient(
                patient_id=patient_id(i),
                age=age,
                gender=rng.choices(("F", "M", "X"), weights=(0.5, 0.49, 0.01))[0],
                hypertension=hypertension,
                heart_disease=heart_disease,
                diabetes=diabetes,
                smoking_status=smoking,
                bmi=round(bmi, 1),
                avg_glucose=round(glucose, 1),
                stroke_probability=stroke_probability(
                    age=age,
                    hypertension=hypertension,
                    heart_disease=heart_disease,
                    avg_glucose=glucose,
                    bmi=bmi,
                    smoking=smoking,
                ),
                trial_arm=rng.choice(("control", "treatment")),
                hospital_id=rng.choice(HOSPITALS),
                department=rng.choice(DEPARTMENTS),
            )
        )
    return patients


def _day(ts: datetime, days_back: float) -> date:
    return (ts - timedelta(days=days_back)).date()


def _earlier_visits(latest: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """0-2 earlier visits, 60-400 days apart, glucose and BMI drifting towards the latest values."""
    out = []
    when: date = latest["visit_date"]
    for _ in range(rng.choice((0, 1, 1, 2))):
        when -= timedelta(days=rng.randint(60, 400))
        out.append(
            {
                **latest,
                "visit_date": when,
                "avg_glucose_level": round(latest["avg_glucose_level"] * rng.lognormvariate(0, 0.12), 1),
                "bmi": round(min(60.0, max(15.0, latest["bmi"] + rng.gauss(0, 1.2))), 1),
                "heart_rate": round(latest["heart_rate"] + rng.gauss(0, 6), 0),
            }
        )
    return out[::-1]


def batch_rows(
    cfg: GeneratorConfig, patients: list[Patient], rng: random.Random
) -> dict[BatchTable, list[dict[str, Any]]]:
    """Rows of the five batch tables, columns as lake.BATCH_SCHEMAS: one per patient each, except
    ``clinical_measurements`` (one to three visits per patient, oldest first)."""
    start = cfg.start
    tables: dict[BatchTable, list[dict[str, Any]]] = {
        "demographics": [],
        "clinical_measurements": [],
        "hospital_admin": [],
        "lifestyle": [],
        "conditions": [],
    }
    streaming = {p.patient_id for p in patients[: cfg.patients]}
    # Earlier clinic visits come from their own stream: the latest visit of each patient (and every
    # other column) stays what it was with one visit per patient.
    visits = random.Random(f"{cfg.seed}-visits")  # noqa: S311 (synthetic data)
    for p in patients:
        province = rng.choice(sorted(PROVINCES))
        city, prefix, region = rng.choice(PROVINCES[province])
        postal = f"{prefix} {rng.randint(1, 9)}{rng.choice('ABCEGHJKLMNPRSTVXY')}{rng.randint(1, 9)}"
        dob = _day(start, p.age * 365.25)
        tables["demographics"].append(
            {
                "patient_id": p.patient_id,
                "date_of_birth": dob,
                "gender": p.gender,
                "blood_type": rng.choices([b for b, _ in BLOOD_TYPES], weights=[w for _, w in BLOOD_TYPES])[0],
                "province": province,
                "city": city,
                "postal_code": postal,
                "healthcare_region": region,
                "insurance_type": rng.choices(("public", "private", "supplemental"), weights=(0.6, 0.25, 0.15))[0],
                "registration_date": _day(start, rng.uniform(30, 3650)),
            }
        )
        latest_visit = _day(start, rng.uniform(1, 365))
        latest = {
            "patient_id": p.patient_id,
            "visit_date": latest_visit,
            "avg_glucose_level": p.avg_glucose,
            "bmi": p.bmi,
            "blood_pressure_systolic": round(rng.gauss(142 if p.hypertension else 122, 12), 0),
            "heart_rate": round(rng.gauss(76, 10), 0),
            "cholesterol_level": round(rng.gauss(205, 35), 0),
        }
        tables["clinical_measurements"].extend([*_earlier_visits(latest, visits), latest])
        admitted = p.patient_id in streaming
        hospitalised = admitted or rng.random() < 0.4
        tables["hospital_admin"].append(
            {
                "patient_id": p.patient_id,
                "hospital_id": p.hospital_id if hospitalised else None,
                "department": p.department if hospitalised else None,
                "admission_date": (start.date() if admitted else _day(start, rng.uniform(20, 1500)))
                if hospitalised
                else None,
                "discharge_status": None
                if admitted or not hospitalised
                else rng.choices(("home", "rehab", "long-term care", "deceased"), weights=(0.7, 0.18, 0.1, 0.02))[0],
                "attending_physician": rng.choice(PHYSICIANS) if hospitalised else None,
            }
        )
        tables["lifestyle"].append(
            {
                "patient_id": p.patient_id,
                "survey_date": _day(start, rng.uniform(1, 720)),
                "smoking_status": p.smoking_status,
                "exercise_frequency": rng.choice(("never", "monthly", "weekly", "daily")),
                "alcohol_consumption": rng.choices(("none", "moderate", "heavy"), weights=(0.4, 0.5, 0.1))[0],
                "diet_type": rng.choice(("mixed", "vegetarian", "mediterranean", "high-fat")),
            }
        )
        stroke = rng.random() < p.stroke_probability
        tables["conditions"].append(
            {
                "patient_id": p.patient_id,
                "recorded_at": _day(start, rng.uniform(1, 180)),
                "hypertension": p.hypertension,
                "heart_disease": p.heart_disease,
                "diabetes": p.diabetes,
                "stroke_occurred": stroke,
                "stroke_probability": round(p.stroke_probability, 6),
                "stroke_severity": rng.choice(("minor", "moderate", "severe")) if stroke else None,
                # before the conditions record that notes it (1-180 days back), after some visits
                "stroke_date": _day(start, rng.uniform(181, 720)) if stroke else None,
                "recovery_status": rng.choice(("full", "partial", "ongoing")) if stroke else None,
            }
        )
    # A patient is registered by the first visit at the latest.
    first_visit: dict[str, date] = {}
    for v in tables["clinical_measurements"]:
        first_visit[v["patient_id"]] = min(v["visit_date"], first_visit.get(v["patient_id"], v["visit_date"]))
    for d in tables["demographics"]:
        d["registration_date"] = min(d["registration_date"], first_visit[d["patient_id"]])
    return tables
