"""Streaming events of one inpatient stay, and the faults injected into them on the wire."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from clinops_common.events import SCHEMA_VERSION, utc_iso
from clinops_common.lake import Topic
from clinops_common.synthetic.cohort import Patient
from clinops_common.synthetic.config import FAULT_KINDS, GeneratorConfig
from clinops_common.synthetic.latent import Trajectory
from clinops_common.vocabulary import GLUCOSE_MG_DL_PER_MMOL_L, LABS, MEASUREMENTS, VITALS

DRUGS: tuple[tuple[str, float, str, str], ...] = (
    # drug, typical dose, unit, route
    ("acetaminophen", 1000, "mg", "PO"),
    ("heparin", 5000, "units", "SC"),
    ("vancomycin", 1250, "mg", "IV"),
    ("furosemide", 40, "mg", "IV"),
    ("metoprolol", 25, "mg", "PO"),
    ("insulin", 6, "units", "SC"),
    ("norepinephrine", 0.08, "mcg/kg/min", "IV"),
)
SEVERITIES = ("mild", "moderate", "severe")

Status = Literal["silver", "quarantine", "deadletter"]


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka record as the producer sends it (the key is the patient id)."""

    topic: Topic
    key: bytes
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Truth:
    """Where a distinct generated event must end up, and its canonical value for measurements."""

    event_id: str
    topic: Topic
    patient_id: str
    event_time_ms: int
    status: Status
    reason: str | None  # dead-letter reason or quarantine rule
    fault: str | None
    measurement: str | None = None
    canonical_value: float | None = None


@dataclass
class Ledger:
    """What the generator produced: messages per topic, distinct valid events per topic (what silver
    must hold), each fault by kind, and the dead letters and quarantine rows to expect."""

    sent: Counter[str] = field(default_factory=Counter)
    valid: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    deadletter: Counter[str] = field(default_factory=Counter)
    quarantine: Counter[str] = field(default_factory=Counter)
    adverse_events: int = 0

    def silver_rows(self) -> dict[str, int]:
        """Rows each silver table must hold."""
        return {
            "measurements": self.valid["vitals"] + self.valid["labs"],
            "medications": self.valid["medications"],
            "admissions": self.valid["admissions"],
            "outcomes": self.valid["outcomes"],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": dict(sorted(self.sent.items())),
            "valid": dict(sorted(self.valid.items())),
            "faults": {k: self.faults.get(k, 0) for k in FAULT_KINDS},
            "deadletter": dict(sorted(self.deadletter.items())),
            "quarantine": dict(sorted(self.quarantine.items())),
            "silver_rows": self.silver_rows(),
            "adverse_events": self.adverse_events,
            "messages": sum(self.sent.values()),
        }


def _ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


def _clip(name: str, v: float) -> float:
    lo, hi = MEASUREMENTS[name].valid
    return min(hi, max(lo, v))


def vital_values(s: float, hour_of_day: float, base: dict[str, float], rng: random.Random) -> dict[str, float]:
    """Vital signs (canonical units) for severity ``s``: circadian rhythm plus noise."""
    circ = math.sin(2 * math.pi * (hour_of_day - 10) / 24)  # peaks mid-afternoon
    g = rng.gauss
    values = {
        "heart_rate": base["heart_rate"] + 18 * s + 4 * circ + g(0, 3),
        "systolic_bp": base["systolic_bp"] - 14 * s + 5 * circ + g(0, 5),
        "diastolic_bp": base["diastolic_bp"] - 8 * s + 3 * circ + g(0, 4),
        "temperature": 36.8 + 0.45 * s + 0.25 * circ + g(0, 0.12),
        "spo2": min(100.0, 98.0 - 2.5 * s + g(0, 0.8)),
        "respiratory_rate": 15 + 4 * s + g(0, 1.5),
        "glucose": base["glucose"] + 18 * s + g(0, 8),
    }
    return {k: round(_clip(k, v), 1) for k, v in values.items()}


def lab_values(s: float, base: dict[str, float], rng: random.Random) -> dict[str, float]:
    g = rng.gauss
    values = {
        "creatinine": base["creatinine"] + 0.35 * s + g(0, 0.06),
        "alt": 24 + 14 * s + g(0, 5),
        "ast": 22 + 16 * s + g(0, 5),
        "lactate": 1.0 + 1.3 * s + g(0, 0.2),
        "wbc": 7.0 + 2.4 * s + g(0, 0.9),
        "potassium": 4.2 + 0.2 * s + g(0, 0.25),
        "troponin": 6 + 18 * s * s + abs(g(0, 3)),
    }
    return {k: round(_clip(k, v), 2) for k, v in values.items()}


@dataclass
class Clean:
    topic: Topic
    event: dict[str, Any]
    event_ms: int


def patient_events(
    cfg: GeneratorConfig, p: Patient, traj: Trajectory, bed: int, rng: random.Random
) -> tuple[list[Clean], int]:
    """The distinct (fault-free) events of one stay, and the number of adverse events."""
    start = cfg.start
    end = start + timedelta(hours=cfg.hours)
    admit = start + timedelta(minutes=rng.uniform(0, 30))
    discharge = end - timedelta(minutes=rng.uniform(0, 30))
    out: list[Clean] = []
    topics = set(cfg.topics)
    last: list[Any] = [None, ""]  # readings share a timestamp: format it once

    def emit(topic: Topic, ts: datetime, source: str, **fields: Any) -> None:
        if topic not in topics:
            return
        if last[0] != ts:
            last[0], last[1] = ts, utc_iso(ts)
        h = f"{rng.getrandbits(128):032x}"
        event = {
            "schema_version": SCHEMA_VERSION,
            "event_id": f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}",
            "patient_id": p.patient_id,
            "event_time": last[1],
            "source": source,
            **fields,
        }
        out.append(Clean(topic, event, _ms(ts)))

    emit(
        "admissions",
        admit,
        "adt",
        event_type="admit",
        hospital_id=p.hospital_id,
        department=p.department,
        trial_arm=p.trial_arm,
    )
    base = {
        "heart_rate": rng.gauss(74, 7),
        "systolic_bp": rng.gauss(132 if p.hypertension else 118, 8),
        "diastolic_bp": rng.gauss(78, 5),
        "glucose": p.avg_glucose,
        "creatinine": max(0.5, rng.gauss(0.9, 0.15)),
    }

    def hours_of(ts: datetime) -> float:
        return (ts - start).total_seconds() / 3600

    step = timedelta(minutes=cfg.vitals_interval_min)
    t = admit + timedelta(seconds=rng.uniform(0, step.total_seconds()))
    monitor, shifted = f"monitor-bed{bed:03d}", cfg.scenario.kind == "covariate_shift"
    meter = f"glucometer-{bed % 7:02d}"
    while t < discharge and "vitals" in topics:
        ts = t + timedelta(seconds=rng.uniform(-20, 20))
        values = vital_values(traj.severity_at(hours_of(ts)), ts.hour + ts.minute / 60, base, rng)
        if shifted and hours_of(ts) >= cfg.scenario.at_hours:  # covariate shift: the monitors read high
            values["temperature"] = round(values["temperature"] + cfg.scenario.temperature_offset_c, 1)
        for name in VITALS:
            source = meter if name == "glucose" else monitor
            emit("vitals", ts, source, measurement=name, value=values[name], unit=MEASUREMENTS[name].unit)
        t += step
    t = admit + timedelta(hours=rng.uniform(0.2, 2))
    while t < discharge and "labs" in topics:
        values = lab_values(traj.severity_at(hours_of(t)), base, rng)
        for name in LABS:
            emit("labs", t, "lab-lis", measurement=name, value=values[name], unit=MEASUREMENTS[name].unit)
        t += timedelta(hours=rng.uniform(0.5, 1.5) * cfg.labs_interval_h)
    t = admit + timedelta(hours=rng.uniform(0.5, 3))
    while t < discharge:
        s = traj.severity_at(hours_of(t))
        drug, dose, unit, route = DRUGS[-1] if s > 1.8 and rng.random() < 0.5 else rng.choice(DRUGS[:-1])
        emit(
            "medications",
            t,
            "emar",
            drug=drug,
            dose=round(dose * rng.uniform(0.8, 1.2), 3),
            dose_unit=unit,
            route=route,
        )
        t += timedelta(hours=rng.expovariate(1 / cfg.meds_interval_h))
    if cfg.hours >= 12 and rng.random() < 0.3:
        emit(
            "admissions",
            admit + (discharge - admit) / 2,
            "adt",
            event_type="transfer",
            hospital_id=p.hospital_id,
            department=rng.choice(("ICU", "Step-down", "General Medicine")),
            trial_arm=p.trial_arm,
        )
    adverse = 0
    for h in range(cfg.hours):
        if rng.random() < 1 - math.exp(-traj.hazard[h]):
            ts = start + timedelta(hours=h + rng.random())
            sev = SEVERITIES[min(2, int(traj.severity[h]))]
            emit("outcomes", ts, "ehr-outcomes", outcome_type="adverse_event", severity=sev)
            adverse += 1
    emit(
        "admissions",
        discharge,
        "adt",
        event_type="discharge",
        hospital_id=p.hospital_id,
        department=p.department,
        discharge_status=rng.choices(("home", "rehab", "transferred"), weights=(0.7, 0.2, 0.1))[0],
        trial_arm=p.trial_arm,
    )
    return out, adverse


REQUIRED: dict[str, tuple[str, ...]] = {
    "vitals": ("measurement", "value", "unit"),
    "labs": ("measurement", "value", "unit"),
    "medications": ("drug", "dose", "dose_unit", "route"),
    "admissions": ("event_type",),
    "outcomes": ("outcome_type",),
}
COMMON_REQUIRED = ("event_id", "patient_id", "event_time", "source")


# A unit each canonical unit is confused with on the wire, accepted for no measurement that uses it.
WRONG_UNITS: dict[str, str] = {
    "bpm": "Hz",
    "mmHg": "kPa",
    "degC": "K",
    "%": "fraction",
    "/min": "/h",
    "mg/dL": "mg/dl",
    "U/L": "ukat/L",
    "mmol/L": "mEq/dL",
    "10^9/L": "/uL",
    "ng/L": "ug/L",
}


def _eligible(c: Clean) -> list[str]:
    kinds = ["duplicate", "late", "out_of_order", "malformed_json", "missing_field", "unknown_field"]
    if c.topic in ("vitals", "labs"):
        kinds.append("out_of_range")
        name = c.event["measurement"]
        if name == "temperature":
            kinds.append("fahrenheit")
        if name == "glucose":
            kinds.append("mmol_l")
        kinds += ["unknown_measurement", "unknown_unit"]  # appended last: rate 0 leaves the draws unchanged
    if c.topic == "medications":
        kinds.append("dose_not_positive")
    kinds.append("epoch_time")
    return kinds


# Valid events a processor rule rejects: the wire form of each such fault.
REJECTED: dict[str, Any] = {
    "unknown_measurement": lambda c, rng: {**c.event, "measurement": f"{c.event['measurement']}_unvalidated"},
    "unknown_unit": lambda c, rng: {**c.event, "unit": WRONG_UNITS[c.event["unit"]]},
    "dose_not_positive": lambda c, rng: {**c.event, "dose": rng.choice((0.0, -c.event["dose"]))},
    "epoch_time": lambda c, rng: {**c.event, "event_time": c.event_ms // 1000},
}


def _dumps(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def _pick_fault(c: Clean, rates: dict[str, float], rng: random.Random) -> str | None:
    u = rng.random()
    acc = 0.0
    for kind in _eligible(c):
        acc += rates[kind]
        if u < acc:
            return kind
    return None


def _apply(fault: str | None, c: Clean, rng: random.Random) -> tuple[bytes, int, Status, str | None]:
    """(wire value, send time in ms, where it must end up, dead-letter reason or quarantine rule)."""
    ev = c.event
    send = c.event_ms + rng.randint(200, 3000)
    wire = ev
    status: Status = "silver"
    if fault == "late":
        send = c.event_ms + rng.randint(3_600_000, 8 * 3_600_000)
    elif fault == "out_of_order":
        send = c.event_ms + rng.randint(5 * 60_000, 30 * 60_000)
    elif fault == "fahrenheit":
        wire = {**ev, "value": round(ev["value"] * 9 / 5 + 32, 3), "unit": "degF"}
    elif fault == "mmol_l":
        wire = {**ev, "value": round(ev["value"] / GLUCOSE_MG_DL_PER_MMOL_L, 4), "unit": "mmol/L"}
    elif fault == "out_of_range":
        lo, hi = MEASUREMENTS[ev["measurement"]].valid
        bad = hi * rng.uniform(1.5, 4) + 1 if rng.random() < 0.7 else lo - abs(lo) * rng.uniform(0.5, 2) - 1
        wire = {**ev, "value": round(bad, 2)}
        status = "quarantine"
    elif fault == "missing_field":
        drop = rng.choice(COMMON_REQUIRED + REQUIRED[c.topic])
        wire = {k: v for k, v in ev.items() if k != drop}
        status = "deadletter"
    elif fault == "unknown_field":
        wire = {**ev, "device_firmware": f"{rng.randint(1, 9)}.{rng.randint(0, 9)}"}
        status = "deadletter"
    elif fault == "malformed_json":
        status = "deadletter"
    elif fault in REJECTED:
        wire = REJECTED[fault](c, rng)
        status = "quarantine"
    value = _dumps(wire)
    if fault == "malformed_json":
        value = value[: rng.randint(1, len(value) - 2)]  # a proper prefix of an object is never JSON
    reason = "invalid_record" if fault == "epoch_time" else fault
    return value, send, status, (reason if status != "silver" else None)


def inject(
    cfg: GeneratorConfig, clean: list[Clean], rng: random.Random, ledger: Ledger, truths: list[Truth] | None
) -> list[Message]:
    """Turn distinct events into wire messages, with at most one fault each; record it all."""
    rates = cfg.faults.model_dump()
    messages: list[Message] = []
    for c in clean:
        ev = c.event
        fault = _pick_fault(c, rates, rng)
        value, send, status, reason = _apply(fault, c, rng)
        key = ev["patient_id"].encode()
        messages.append(Message(c.topic, key, value, send))
        if fault == "duplicate":
            messages.append(Message(c.topic, key, value, send + rng.randint(100, 120_000)))
        if fault:
            ledger.faults[fault] += 1
        ledger.sent[c.topic] += 2 if fault == "duplicate" else 1
        {"silver": ledger.valid, "deadletter": ledger.deadletter, "quarantine": ledger.quarantine}[status][
            c.topic if status == "silver" else reason or ""
        ] += 1
        if truths is not None:
            measurement = ev.get("measurement")
            canonical = ev.get("value") if measurement else None
            # the time as it is on the wire (whole milliseconds), which is what silver must hold
            sent_ms = _ms(datetime.fromisoformat(ev["event_time"]))
            truths.append(
                Truth(ev["event_id"], c.topic, ev["patient_id"], sent_ms, status, reason, fault, measurement, canonical)
            )
    messages.sort(key=lambda m: m.timestamp_ms)
    return messages
