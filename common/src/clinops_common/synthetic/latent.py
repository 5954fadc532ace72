"""The latent risk model behind the streaming data, and the oracle it yields.

Each inpatient has a hidden severity ``s`` (0 = stable, 4 = crashing), simulated hour by hour:

    s[h+1] = clip(s[h] + 0.10 * (mu - s[h]) + drift[h] + 0.12 * N(0, 1), 0, 4)

``mu`` is the patient's baseline (older, hypertensive, cardiac and diabetic patients sit higher);
``drift`` is +0.08..0.20 per hour during deterioration episodes (which start with probability
1.2 % per hour and last 6 to 36 hours). Vital signs and labs are drawn around values that move with
``s`` (heart rate, respiratory rate, temperature, lactate, creatinine, WBC and troponin rise;
blood pressure and SpO2 fall), plus a circadian rhythm and measurement noise.

The hazard of an adverse event during hour ``h`` depends on the state and its 6-hour trend:

    lambda[h] = exp(-7.0 + 1.1 * s[h] + 1.4 * max(s[h] - s[h-6], 0))   (events per hour)

An adverse event happens in hour ``h`` with probability ``1 - exp(-lambda[h])``, independently
given the path, so the true probability of an event in the next 24 hours after hour mark ``t`` is

    p24[t] = 1 - exp(-(lambda[t] + ... + lambda[t+23]))

which the generator writes for every patient and hour as the oracle. The path is simulated 24 hours
past the window so the oracle is defined for the last hours too (their events fall outside the
window, so labels of the last 24 hours are right-censored in the stream).

Scenario switches (``GeneratorConfig.scenario``) change the world from hour ``at_hours`` on (before
it the rules are the stable ones, and a seed gives the same patients and severity paths):

- ``stable``: nothing changes;
- ``concept_drift``: the hazard follows a second severity path ``s'`` (the same dynamics around a
  baseline of 0.6 for everyone, with its own noise and episodes, drawn from a generator seeded by
  the patient id) instead of ``s``; the vitals and labs still show ``s``, so what they say about the
  risk is lost while their distribution does not change:
  ``lambda[h] = exp(-7.0 + 1.1 * s'[h] + 1.4 * max(s'[h] - s'[h-6], 0))``;
- ``covariate_shift``: the bedside monitors (sources ``monitor-bed*``) read temperature
  ``temperature_offset_c`` (1 degC) high; nothing else changes, the risk included;
- ``calibration_drift``: ``lambda[h]`` is multiplied by ``hazard_factor`` (2): the base rate of
  events about doubles, the ranking of patients by risk stays the same.

The oracle always gives the true probability of the world as it is at each hour.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from clinops_common.synthetic.cohort import Patient
from clinops_common.synthetic.config import Scenario

HAZARD_INTERCEPT = -7.0
HAZARD_STATE = 1.1
HAZARD_TREND = 1.4
TREND_HOURS = 6
HORIZON_HOURS = 24
CONCEPT_BASELINE = 0.6  # concept_drift: the hidden path's baseline, the same for every patient


def baseline_severity(p: Patient) -> float:
    return max(0.0, 0.2 + 0.012 * (p.age - 55) + 0.35 * p.hypertension + 0.45 * p.heart_disease + 0.3 * p.diabetes)


@dataclass(frozen=True)
class Trajectory:
    """Hourly latent severity and hazard of one patient (``hours + 24`` values)."""

    severity: list[float]
    hazard: list[float]

    def p_event_24h(self, hour: int) -> float:
        """True probability of an adverse event in (t, t + 24h] for hour mark ``hour``."""
        return 1.0 - math.exp(-sum(self.hazard[hour : hour + HORIZON_HOURS]))

    def severity_at(self, hours: float) -> float:
        """Severity at a fractional hour, linearly interpolated."""
        h = min(max(hours, 0.0), len(self.severity) - 1.000001)
        i = int(h)
        frac = h - i
        return self.severity[i] * (1 - frac) + self.severity[i + 1] * frac


def hazard(severity: float, trend: float) -> float:
    return math.exp(HAZARD_INTERCEPT + HAZARD_STATE * severity + HAZARD_TREND * max(trend, 0.0))


def _path(mu: float, total: int, rng: random.Random) -> list[float]:
    s = max(0.0, rng.gauss(mu, 0.3))
    drift, left = 0.0, 0
    severity = []
    for _ in range(total + 1):
        severity.append(s)
        if left == 0 and rng.random() < 0.012:
            drift, left = rng.uniform(0.08, 0.20), rng.randint(6, 36)
        step = 0.10 * (mu - s) + (drift if left > 0 else 0.0) + 0.12 * rng.gauss(0, 1)
        left = max(0, left - 1)
        s = min(4.0, max(0.0, s + step))
    return severity


def _scenario_hazard(p: Patient, severity: list[float], haz: list[float], scenario: Scenario) -> list[float]:
    start = math.ceil(scenario.at_hours)
    if scenario.kind == "calibration_drift":
        return [h * scenario.hazard_factor if i >= start else h for i, h in enumerate(haz)]
    if scenario.kind == "concept_drift":
        rng = random.Random(f"concept-{p.patient_id}")  # noqa: S311 (synthetic data)
        hidden = _path(CONCEPT_BASELINE, len(severity) - 1, rng)
        return [
            hazard(hidden[i], hidden[i] - hidden[max(0, i - TREND_HOURS)]) if i >= start else h
            for i, h in enumerate(haz)
        ]
    return haz


def simulate(p: Patient, hours: int, rng: random.Random, scenario: Scenario | None = None) -> Trajectory:
    traj = _simulate(p, hours, rng)
    if scenario is None or scenario.kind in ("stable", "covariate_shift"):
        return traj
    return Trajectory(traj.severity, _scenario_hazard(p, traj.severity, traj.hazard, scenario))


def _simulate(p: Patient, hours: int, rng: random.Random) -> Trajectory:
    total = hours + HORIZON_HOURS
    mu = baseline_severity(p)
    s = max(0.0, rng.gauss(mu, 0.3))
    drift, left = 0.0, 0
    severity = []
    for _ in range(total + 1):
        severity.append(s)
        if left == 0 and rng.random() < 0.012:
            drift, left = rng.uniform(0.08, 0.20), rng.randint(6, 36)
        step = 0.10 * (mu - s) + (drift if left > 0 else 0.0) + 0.12 * rng.gauss(0, 1)
        left = max(0, left - 1)
        s = min(4.0, max(0.0, s + step))
    haz = [hazard(severity[h], severity[h] - severity[max(0, h - TREND_HOURS)]) for h in range(total)]
    return Trajectory(severity=severity, hazard=haz)
