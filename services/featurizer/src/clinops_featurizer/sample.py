"""Small silver and batch tables whose features are known by heart.

The tests' fixture, and ``make demo-features``' input where no processor has written silver yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from clinops_common.settings import Connections

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def measurement(
    pid: str, minutes: float, name: str, value: float, unit: str, *, kind: str = "vitals", late_h: float = 0
) -> dict[str, Any]:
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
    temperature 37 at 30 min, heart rate 75 at 150 min, a creatinine backfilled 5 hours late,
    heparin + aspirin, an admission, an
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
        {
            "event_id": f"m{i}",
            "patient_id": "PT1",
            "event_time": at(m),
            "source": "emar",
            "drug": d,
            "dose": 1.0,
            "dose_unit": "mg",
            "route": "iv",
            "ingested_at": at(m + 1),
        }
        for i, (m, d) in enumerate([(15, "Heparin"), (25, "aspirin")])
    ]
    adm = [
        {
            "event_id": "a1",
            "patient_id": "PT1",
            "event_time": at(5),
            "source": "adt",
            "event_type": "admit",
            "hospital_id": "H1",
            "department": "ICU",
            "discharge_status": None,
            "trial_arm": "treatment",
            "ingested_at": at(6),
        },
    ]
    outcomes = [
        {
            "event_id": "o1",
            "patient_id": "PT1",
            "event_time": at(180),
            "source": "ehr",
            "outcome_type": "adverse_event",
            "severity": "high",
            "prediction_id": None,
            "ingested_at": at(181),
        },
    ]
    return {"measurements": meas, "medications": meds, "admissions": adm, "outcomes": outcomes}


def demographics() -> list[dict[str, Any]]:
    return [
        {
            "patient_id": "PT1",
            "date_of_birth": date(1950, 3, 1),
            "gender": "F",
            "blood_type": "A+",
            "province": "ON",
            "city": "Ottawa",
            "postal_code": "K1A",
            "healthcare_region": "East",
            "insurance_type": "public",
            "registration_date": date(2020, 1, 1),
        },
    ]


def batch_tables() -> dict[str, list[dict[str, Any]]]:
    """The stroke cohort's five tables for three patients (S1 high risk, S2 low, S3 with a past stroke)."""
    d = date
    return {
        "demographics": [
            {
                "patient_id": p,
                "date_of_birth": dob,
                "gender": g,
                "blood_type": "O+",
                "province": "ON",
                "city": "Ottawa",
                "postal_code": "K1A",
                "healthcare_region": "East",
                "insurance_type": "public",
                "registration_date": d(2020, 1, 1),
            }
            for p, dob, g in [("S1", d(1944, 5, 1), "M"), ("S2", d(1995, 1, 1), "F"), ("S3", d(1960, 7, 1), "F")]
        ],
        "clinical_measurements": [
            {
                "patient_id": p,
                "visit_date": d(2026, 2, 1),
                "avg_glucose_level": gl,
                "bmi": b,
                "blood_pressure_systolic": 140.0,
                "heart_rate": 80.0,
                "cholesterol_level": 200.0,
            }
            for p, gl, b in [("S1", 230.0, 32.0), ("S2", 90.0, 22.0), ("S3", 150.0, 27.0)]
        ],
        "hospital_admin": [
            {
                "patient_id": "S1",
                "hospital_id": "H1",
                "department": "Neurology",
                "admission_date": d(2026, 2, 20),
                "discharge_status": None,
                "attending_physician": "Dr A",
            },
            {
                "patient_id": "S3",
                "hospital_id": "H1",
                "department": "Neurology",
                "admission_date": d(2025, 6, 1),
                "discharge_status": "home",
                "attending_physician": "Dr B",
            },
        ],
        "lifestyle": [
            {
                "patient_id": p,
                "survey_date": d(2025, 12, 1),
                "smoking_status": s,
                "exercise_frequency": "weekly",
                "alcohol_consumption": "none",
                "diet_type": "mixed",
            }
            for p, s in [("S1", "smokes"), ("S2", "never smoked"), ("S3", "formerly smoked")]
        ],
        "conditions": [
            {
                "patient_id": p,
                "recorded_at": d(2026, 1, 15),
                "hypertension": h,
                "heart_disease": hd,
                "diabetes": db,
                "stroke_occurred": so,
                "stroke_probability": 0.1,
                "stroke_severity": None,
                "stroke_date": sd,
                "recovery_status": None,
            }
            for p, h, hd, db, so, sd in [
                ("S1", True, True, True, False, None),
                ("S2", False, False, False, False, None),
                ("S3", True, False, False, True, d(2025, 6, 1)),
            ]
        ],
    }


def write_to_lake(spark: Any, conns: Connections, *, if_missing: bool) -> list[str]:
    """Write the sample silver and batch tables (each only where none is there, with ``if_missing``);
    returns what was written, e.g. ``silver/measurements: 12 rows``."""
    from pyspark.sql import functions as F

    from clinops_common.lake import BATCH_SCHEMAS, SILVER_SCHEMAS, batch_path, silver_path
    from clinops_common.storage import s3_client

    s3 = s3_client(conns)

    def exists(prefix: str) -> bool:
        return bool(s3.list_objects_v2(Bucket=conns.lake_bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"))

    todo = [
        (layer, table, rows)
        for layer, group in (("silver", tables()), ("batch", batch_tables()))
        for table, rows in group.items()
        if not (if_missing and exists(f"{layer}/{table}/"))
    ]
    written = []
    for layer, table, rows in todo:
        ddl = (SILVER_SCHEMAS if layer == "silver" else BATCH_SCHEMAS)[table].replace(" NOT NULL", "")  # type: ignore[index]
        df = spark.createDataFrame(rows, ddl)
        if layer == "silver":
            path = silver_path(conns.lake_bucket, table)  # type: ignore[arg-type]
            df.withColumn("date", F.to_date("event_time")).write.mode("overwrite").partitionBy("date").parquet(path)
        elif table == "demographics":
            df.write.mode("overwrite").json(batch_path(conns.lake_bucket, table))  # type: ignore[arg-type]
        else:
            df.write.mode("overwrite").parquet(batch_path(conns.lake_bucket, table))  # type: ignore[arg-type]
        written.append(f"{layer}/{table}: {len(rows)} rows")
    return written


def needed(conns: Connections) -> bool:
    """True when some sample table is not in the lake yet."""
    from clinops_common.storage import s3_client

    s3 = s3_client(conns)
    prefixes = [f"silver/{t}/" for t in tables()] + [f"batch/{t}/" for t in batch_tables()]
    return any(not s3.list_objects_v2(Bucket=conns.lake_bucket, Prefix=p, MaxKeys=1).get("KeyCount") for p in prefixes)
