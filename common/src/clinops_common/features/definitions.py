"""Feature definitions, once: the entity, the feature views per source, the feature services.

The featurizer computes exactly these columns, the offline store stores them, the point-in-time
join and the online store read them by these names, dtypes and TTLs. Nothing else in the code base
lists feature names.

Every feature view is keyed by ``patient_id`` and carries two timestamps: ``event_timestamp`` (the
time step the values describe) and ``created_timestamp`` (when the inputs behind them were first
written to the lake: the latest ``ingested_at`` among them). The second is what the point-in-time
leakage guard compares with a training row's timestamp.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from clinops_common.vocabulary import LABS, MEASUREMENTS, VITALS

DType = Literal["float64", "int64", "bool", "string"]

EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"


@dataclass(frozen=True)
class Entity:
    name: str
    join_key: str
    description: str


PATIENT = Entity("patient", "patient_id", "A patient, identified by a random surrogate id (never an MRN).")


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: DType
    description: str


@dataclass(frozen=True)
class FeatureView:
    """Features from one source, one row per patient per time step, valid for ``ttl`` after it."""

    name: str
    source: str
    ttl: timedelta
    features: tuple[Feature, ...]
    description: str
    entity: Entity = PATIENT
    timestamp_field: str = EVENT_TIMESTAMP
    created_timestamp_field: str = CREATED_TIMESTAMP
    online: bool = True
    # The source column the view's event_timestamp comes from (batch views; streaming views: the step).
    source_timestamp: str = "time step"

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column of the view's offline table, in order."""
        return (self.entity.join_key, self.timestamp_field, self.created_timestamp_field, *self.feature_names)

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature view {self.name!r} has no feature {name!r}")

    @property
    def schema_id(self) -> str:
        """A short digest of names and dtypes: online values written under one schema are never
        decoded under another."""
        text = ";".join(f"{f.name}:{f.dtype}" for f in self.features)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class FeatureService:
    """A named subset of features, possibly from several views (what one model consumes)."""

    name: str
    description: str
    refs: tuple[tuple[str, str], ...]  # (view, feature)
    views_used: tuple[str, ...] = field(default=())

    def by_view(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for view, feat in self.refs:
            out.setdefault(view, []).append(feat)
        return {v: tuple(fs) for v, fs in out.items()}

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f for _, f in self.refs)


# ---- streaming views (silver -> hourly steps) ------------------------------------------------------

# The label looks this many hours ahead: adverse_event_24h is an event in (t, t + 24h].
LABEL_HORIZON_HOURS = 24
WINDOWS: dict[str, timedelta] = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24)}
STATS: dict[str, str] = {
    "mean": "mean",
    "std": "sample standard deviation",
    "min": "minimum",
    "max": "maximum",
    "last": "latest value",
    "count": "number of values",
    "slope": "least-squares slope per hour",
}
STEP = timedelta(hours=1)
STREAMING_TTL = timedelta(hours=2)  # one missed hourly run is tolerated, two are not

# Drug classes behind the medication flags (drug names compared lower-case).
DRUG_CLASSES: dict[str, tuple[str, ...]] = {
    "anticoagulant": ("heparin", "enoxaparin", "warfarin", "apixaban", "rivaroxaban"),
    "antiplatelet": ("aspirin", "clopidogrel", "ticagrelor"),
    "vasopressor": ("norepinephrine", "epinephrine", "vasopressin", "dopamine", "phenylephrine"),
    "antibiotic": ("vancomycin", "piperacillin-tazobactam", "ceftriaxone", "meropenem", "cefazolin"),
    "insulin": ("insulin",),
    "opioid": ("morphine", "fentanyl", "hydromorphone", "oxycodone"),
    "nephrotoxic": ("vancomycin", "gentamicin", "ibuprofen", "ketorolac"),
}
# Outcome types that count as an adverse event for the label.
ADVERSE_EVENT_TYPES: tuple[str, ...] = ("adverse_event",)
ADMISSION_EVENTS = ("admit", "transfer", "discharge")


def window_feature_name(measurement: str, stat: str, window: str) -> str:
    return f"{measurement}_{stat}_{window}"


def _window_features(measurements: Iterable[str]) -> list[Feature]:
    out = []
    for m in measurements:
        unit = MEASUREMENTS[m].unit
        for w in WINDOWS:
            for stat, words in STATS.items():
                per = f"{unit}/h" if stat == "slope" else ("" if stat == "count" else unit)
                desc = f"{MEASUREMENTS[m].description}: {words} over the last {w}" + (f" ({per})" if per else "")
                out.append(Feature(window_feature_name(m, stat, w), "float64", desc))
    return out


DERIVED_VITALS: tuple[Feature, ...] = (
    Feature("pulse_pressure", "float64", "Latest systolic minus latest diastolic BP in the last 1h (mmHg)"),
    Feature("mean_arterial_pressure", "float64", "(systolic + 2 x diastolic) / 3 from the latest 1h values (mmHg)"),
    Feature("shock_index", "float64", "Latest heart rate / latest systolic BP in the last 1h"),
    Feature("hr_x_temperature", "float64", "Latest heart rate x latest temperature in the last 1h"),
    *(Feature(f"{v}_trend_1h_24h", "float64", f"Mean over 1h minus mean over 24h of {v}") for v in VITALS),
)

VITALS_VIEW = FeatureView(
    "vitals",
    "silver/measurements (kind=vitals)",
    STREAMING_TTL,
    (*_window_features(VITALS), *DERIVED_VITALS),
    "Rolling 1h/6h/24h statistics of each vital sign, and derived haemodynamic measures, per hour.",
)
LABS_VIEW = FeatureView(
    "labs",
    "silver/measurements (kind=labs)",
    STREAMING_TTL,
    tuple(_window_features(LABS)),
    "Rolling 1h/6h/24h statistics of each lab value, per hour.",
)
MEDICATIONS_VIEW = FeatureView(
    "medications",
    "silver/medications",
    STREAMING_TTL,
    (
        Feature("medications_24h", "float64", "Administrations in the last 24h"),
        Feature("distinct_drugs_24h", "float64", "Distinct drugs administered in the last 24h"),
        *(Feature(f"on_{c}_24h", "float64", f"1 if a {c} was given in the last 24h, else 0") for c in DRUG_CLASSES),
        Feature(
            "bleeding_risk_interaction_24h",
            "float64",
            "1 if an anticoagulant and an antiplatelet were both given in the last 24h (interaction flag)",
        ),
    ),
    "Medication counts, drug-class flags and interaction flags over the last 24h, per hour.",
)
CONTEXT_VIEW = FeatureView(
    "context",
    "silver/admissions, silver/measurements, batch/demographics",
    STREAMING_TTL,
    (
        Feature("age_years", "float64", "Age in years at the time step (from date_of_birth)"),
        Feature("gender", "string", "Gender from demographics"),
        Feature("trial_arm", "string", "Trial arm from the latest admission event"),
        Feature("department", "string", "Department from the latest admission or transfer"),
        Feature("is_admitted", "float64", "1 if the latest admission event is not a discharge"),
        Feature("hours_since_admission", "float64", "Hours since the latest admit event, while admitted"),
        Feature("hours_observed", "float64", "Hours since the patient's first measurement"),
        Feature("measurements_24h", "float64", "Vitals and labs recorded in the last 24h"),
        Feature("abnormal_vitals_24h", "float64", "Vital values outside the normal range in the last 24h"),
        Feature("abnormal_labs_24h", "float64", "Lab values outside the normal range in the last 24h"),
    ),
    "Patient context (demographics, trial arm, admission) and patient-level aggregates, per hour.",
)
LABEL_VIEW = FeatureView(
    "adverse_event_label",
    "silver/outcomes",
    STEP,
    (Feature("adverse_event_24h", "float64", "1 if an adverse event occurs in (t, t+24h], else 0 (the label)"),),
    "The training label. Looks into the future by construction: never served online, joined by exact step.",
    online=False,
)

# ---- the stroke cohort (five batch tables, each from its own system) ----------------------------------

YEAR = timedelta(days=365)


def _stroke_view(  # noqa: PLR0917 (one argument per view field)
    name: str, source: str, source_timestamp: str, ttl: timedelta, features: tuple[Feature, ...], description: str
) -> FeatureView:
    return FeatureView(name, source, ttl, features, description, source_timestamp=source_timestamp)


STROKE_DEMOGRAPHICS_VIEW = _stroke_view(
    "stroke_demographics",
    "document store (MongoDB wire): demographics",
    "registration_date",
    100 * YEAR,
    (
        Feature("gender", "string", "Gender"),
        Feature("province", "string", "Province of residence"),
        Feature("healthcare_region", "string", "Healthcare region"),
    ),
    "Demographics as registered; event time = registration_date.",
)
STROKE_CLINICAL_VIEW = _stroke_view(
    "stroke_clinical",
    "PostgreSQL: clinical_measurements",
    "visit_date",
    2 * YEAR,
    (
        Feature("avg_glucose_level", "float64", "Average glucose level at the visit (mg/dL)"),
        Feature("bmi", "float64", "Body-mass index at the visit (kg/m2)"),
        Feature("blood_pressure_systolic", "float64", "Systolic blood pressure at the visit (mmHg)"),
        Feature("heart_rate", "float64", "Heart rate at the visit (beats/min)"),
        Feature("cholesterol_level", "float64", "Total cholesterol at the visit (mg/dL)"),
    ),
    "One row per clinic visit; event time = visit_date.",
)
STROKE_HOSPITAL_VIEW = _stroke_view(
    "stroke_hospital",
    "SQL Server (JDBC): hospital administration",
    "admission_date",
    5 * YEAR,
    (
        Feature("hospital_id", "string", "Hospital of the admission"),
        Feature("department", "string", "Department of the admission"),
        Feature("discharge_status", "string", "Discharge status (null while admitted)"),
    ),
    "One row per admission; event time = admission_date (the attending physician is never read).",
)
STROKE_LIFESTYLE_VIEW = _stroke_view(
    "stroke_lifestyle",
    "Parquet on S3: lifestyle",
    "survey_date",
    3 * YEAR,
    (
        Feature("smoking_status", "string", "Smoking status"),
        Feature("exercise_frequency", "string", "Exercise frequency"),
        Feature("alcohol_consumption", "string", "Alcohol consumption"),
        Feature("diet_type", "string", "Diet"),
    ),
    "Lifestyle survey answers; event time = survey_date.",
)
STROKE_CONDITIONS_VIEW = _stroke_view(
    "stroke_conditions",
    "Parquet on S3: conditions",
    "recorded_at",
    3 * YEAR,
    (
        Feature("hypertension", "bool", "Hypertension diagnosed"),
        Feature("heart_disease", "bool", "Heart disease diagnosed"),
        Feature("diabetes", "bool", "Diabetes diagnosed"),
    ),
    "Diagnoses as recorded; event time = recorded_at (the stroke fields stay out: they encode the label).",
)
STROKE_SOURCE_VIEWS: dict[str, FeatureView] = {
    "demographics": STROKE_DEMOGRAPHICS_VIEW,
    "clinical_measurements": STROKE_CLINICAL_VIEW,
    "hospital_admin": STROKE_HOSPITAL_VIEW,
    "lifestyle": STROKE_LIFESTYLE_VIEW,
    "conditions": STROKE_CONDITIONS_VIEW,
}
STROKE_VIEW = FeatureView(
    "stroke_risk",
    "computed from the five stroke views, as of each row's time",
    2 * YEAR,
    (
        Feature("age", "float64", "Age in whole years at the row's time"),
        Feature("age_group", "string", "0-17, 18-39, 40-59, 60-79 or 80+"),
        Feature("condition_count", "int64", "Number of hypertension, heart disease and diabetes present"),
        Feature("has_multiple_conditions", "bool", "condition_count >= 2"),
        Feature("risk_score", "float64", "Stroke risk score 0-100 (README: the formula)"),
        Feature("risk_category", "string", "low (<30), moderate (<60) or high"),
        Feature("days_since_stroke", "float64", "Days from a stroke recorded at or before the row's time; else null"),
        Feature("was_hospitalized", "bool", "An admission at or before the row's time is on record"),
        Feature("days_since_admission", "float64", "Days from the latest admission to the row's time"),
        Feature("is_currently_admitted", "bool", "The latest admission has no discharge status"),
    ),
    "The computed-risk view: one row per patient at each clinic visit and at the run's as-of date, every "
    "value from the latest source rows at or before that time.",
    source_timestamp="visit_date, as_of",
)
# The stroke model's training rows (never served): one row per clinic visit before any stroke, labelled
# 1 if a stroke follows within STROKE_HORIZON of the visit.
STROKE_HORIZON = YEAR
STROKE_LABEL = "stroke_within_1y"
STROKE_LABEL_VIEW = FeatureView(
    "stroke_label",
    "computed from clinical_measurements and conditions",
    timedelta(days=1),
    (Feature(STROKE_LABEL, "float64", "1 if a stroke occurs in (visit, visit + 365 days], else 0 (the label)"),),
    "The stroke model's label per visit; visits on or after a patient's stroke are left out. Never served.",
    online=False,
    source_timestamp="visit_date",
)
# Deliberately never features: identifying or unfair-by-proxy fields.
STROKE_EXCLUDED: tuple[str, ...] = (
    "blood_type",
    "attending_physician",
    "insurance_type",
    "postal_code",
    "city",
)

FEATURE_VIEWS: dict[str, FeatureView] = {
    v.name: v
    for v in (
        VITALS_VIEW,
        LABS_VIEW,
        MEDICATIONS_VIEW,
        CONTEXT_VIEW,
        LABEL_VIEW,
        *STROKE_SOURCE_VIEWS.values(),
        STROKE_VIEW,
        STROKE_LABEL_VIEW,
    )
}
STREAMING_VIEWS: tuple[FeatureView, ...] = (VITALS_VIEW, LABS_VIEW, MEDICATIONS_VIEW, CONTEXT_VIEW)


def _service(name: str, description: str, refs: Iterable[tuple[str, str]]) -> FeatureService:
    refs = tuple(refs)
    for view, feat in refs:
        FEATURE_VIEWS[view].feature(feat)  # fails at import on a typo
    return FeatureService(name, description, refs, tuple(dict.fromkeys(v for v, _ in refs)))


FEATURE_SERVICES: dict[str, FeatureService] = {
    s.name: s
    for s in (
        _service(
            "adverse_event_v1",
            "Every streaming feature: inputs of the adverse-event-in-24h model.",
            ((v.name, f) for v in STREAMING_VIEWS for f in v.feature_names),
        ),
        _service(
            "stroke_risk_v1",
            "Stroke-risk model inputs; leaves out blood type, physician and insurance fields on purpose.",
            (
                ("stroke_risk", "age"),
                ("stroke_demographics", "gender"),
                ("stroke_clinical", "avg_glucose_level"),
                ("stroke_clinical", "bmi"),
                ("stroke_risk", "risk_score"),
                ("stroke_risk", "condition_count"),
                ("stroke_lifestyle", "smoking_status"),
                ("stroke_conditions", "hypertension"),
            ),
        ),
    )
}


class UnknownFeatureService(KeyError):
    pass


def feature_service(name: str) -> FeatureService:
    try:
        return FEATURE_SERVICES[name]
    except KeyError:
        raise UnknownFeatureService(f"unknown feature service {name!r}; known: {sorted(FEATURE_SERVICES)}") from None


def feature_view(name: str) -> FeatureView:
    return FEATURE_VIEWS[name]
