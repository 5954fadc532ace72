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
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from clinops_common.synthetic.cohort import Patient

HAZARD_INTERCEPT = -7.0
HAZARD_STATE = 1.1
HAZARD_TREND = 1.4
TREND_HOURS = 6
HORIZON_HOURS = 24


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


def simulate(p: Patient, hours: int, rng: random.Random) -> Trajectory:
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
