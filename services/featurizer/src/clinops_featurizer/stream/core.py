"""Pure core of the streaming featurizer: judge an event, keep a patient's recent readings, and
compute the vitals and labs rows of an hourly step exactly as the batch featurizer defines them.

The batch path (``clinops_featurizer.core``, Spark) and this one compute the same statistics by
the same update formulas and in the same order (readings sorted by event time): mean = running
sum / count; std = sample standard deviation from Welford's running mean and M2 (Spark's
``CentralMomentAgg``); slope = covariance / variance of (hours since 2020-01-01, value) from the
running co-moment (Spark's ``Covariance``, ``regr_slope``); last = the latest reading (ties: later
arrival, then larger value). A step ``t`` covers readings in (t - w, t]; the row of step ``t``
describes the hour that ends at ``t``. ``tests/integration/features/test_stream_batch_equality.py``
holds the two engines equal to 1e-9 relative on generator data with every fault.

Events pass the same gates as on the batch path, from the same shared code: the topic's schema
(``clinops_common.events.parse_event``, as ingest), an ``event_time`` that is a timestamp string
(the processor quarantines anything else as ``invalid_record``), the silver dedup key
(``clinops_common.rules.DEDUP_KEYS``: the first copy wins) and the measurement rules and unit
conversions (``clinops_common.rules.check_measurement``).

Lateness: the watermark is the latest event time accepted so far. An event older than the
watermark minus the allowed lateness is *too late*: the stream drops it and the next batch run
(whose rows carry a later created time) corrects the rows it would have changed.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pandas as pd

from clinops_common.events import InvalidEvent, MeasurementEvent, parse_event
from clinops_common.features.definitions import LABS_VIEW, VITALS_VIEW, WINDOWS, FeatureView
from clinops_common.rules import DEDUP_KEYS, INVALID_RECORD, check_measurement
from clinops_common.vocabulary import LABS, VITALS

HOUR_US = 3_600_000_000
SLOPE_ORIGIN_US = 1_577_836_800_000_000  # 2020-01-01, as the batch featurizer's slope x
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WINDOW_US: dict[str, int] = {w: int(td / timedelta(microseconds=1)) for w, td in WINDOWS.items()}
RETENTION_US = max(WINDOW_US.values())
STREAMED_VIEWS: tuple[FeatureView, ...] = (VITALS_VIEW, LABS_VIEW)
assert DEDUP_KEYS["measurements"] == ("patient_id", "event_time", "source", "measurement")


def to_us(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


def step_of(t_us: int) -> int:
    """The first hourly step whose windows hold a reading at ``t_us`` as the batch grid makes it:
    the hour after the reading's hour."""
    return (t_us // HOUR_US + 1) * HOUR_US


@dataclass(frozen=True, slots=True)
class Reading:
    """One accepted measurement in its canonical unit."""

    patient_id: str
    measurement: str
    source: str
    t_us: int  # event time
    value: float
    arrival_us: int  # when the stream received it (the Kafka record time): its created time


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # a dead-letter reason or a quarantine rule


Verdict = Reading | Rejected


def judge(topic: str, raw: bytes | None, arrival_ms: int) -> Verdict:
    """The batch path's verdict on one message of ``vitals`` or ``labs``: a reading, or why not."""
    if raw is None:
        return Rejected("malformed_json")
    try:
        event = parse_event(topic, raw)
    except InvalidEvent as err:
        return Rejected(err.reason)
    assert isinstance(event, MeasurementEvent)
    if not _time_is_text(raw):
        return Rejected(INVALID_RECORD)  # e.g. Unix seconds: the schema takes them, silver does not
    verdict = check_measurement(topic, event.measurement, event.value, event.unit)  # type: ignore[arg-type]
    if verdict.rule is not None or verdict.value is None:
        return Rejected(verdict.rule or INVALID_RECORD)
    return Reading(
        event.patient_id, event.measurement, event.source, to_us(event.event_time), verdict.value, arrival_ms * 1000
    )


def _time_is_text(raw: bytes) -> bool:
    if b'"event_time":"' in raw:  # the compact wire form: no need to parse twice
        return True
    doc: Any = json.loads(raw)
    return isinstance(doc.get("event_time"), str)


Stat = float | None


@dataclass(frozen=True, slots=True)
class WindowStats:
    mean: Stat
    std: Stat
    min: Stat
    max: Stat
    last: Stat
    count: float
    slope: Stat
    created_us: int | None  # latest arrival among the window's readings


EMPTY = WindowStats(None, None, None, None, None, 0.0, None, None)


def window_stats(readings: Iterable[Reading]) -> WindowStats:
    """Every statistic of one window, by the batch engine's update formulas, in event-time order."""
    n = 0.0
    total = 0.0
    avg = m2 = 0.0  # value: Welford
    xavg = yavg = ck = 0.0  # (x, value): co-moment
    xm = xm2 = 0.0  # x: Welford
    lo = hi = None
    last_key: tuple[int, int, float] | None = None
    created: int | None = None
    for r in readings:
        v = r.value
        x = (r.t_us - SLOPE_ORIGIN_US) / HOUR_US
        n += 1.0
        total += v
        delta = v - avg
        delta_n = delta / n
        avg += delta_n
        m2 += delta * (delta - delta_n)
        dx = x - xavg
        xavg += dx / n
        yavg += (v - yavg) / n
        ck += dx * (v - yavg)
        dxm = x - xm
        dxm_n = dxm / n
        xm += dxm_n
        xm2 += dxm * (dxm - dxm_n)
        lo = v if lo is None or v < lo else lo
        hi = v if hi is None or v > hi else hi
        key = (r.t_us, r.arrival_us, v)
        if last_key is None or key > last_key:
            last_key = key
        created = r.arrival_us if created is None or r.arrival_us > created else created
    if n == 0:
        return EMPTY
    var_x = xm2 / n
    slope = None if var_x == 0.0 else (ck / n) / var_x
    std = None if n == 1.0 else (m2 / (n - 1.0)) ** 0.5
    assert last_key is not None
    return WindowStats(total / n, std, lo, hi, last_key[2], n, slope, created)


@dataclass
class Series:
    """One patient's readings of one measurement, sorted by (event time, arrival)."""

    keys: list[tuple[int, int]] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    version: int = 0
    cached: tuple[int, int, dict[str, WindowStats]] | None = None  # (step, version, per window)

    def add(self, r: Reading) -> None:
        i = bisect.bisect_right(self.keys, (r.t_us, r.arrival_us))
        self.keys.insert(i, (r.t_us, r.arrival_us))
        self.readings.insert(i, r)
        self.version += 1

    def stats(self, step: int) -> dict[str, WindowStats]:
        if self.cached and self.cached[0] == step and self.cached[1] == self.version:
            return self.cached[2]
        hi = bisect.bisect_right(self.keys, (step, 1 << 62))
        out = {}
        for w, span in WINDOW_US.items():
            lo = bisect.bisect_right(self.keys, (step - span, 1 << 62))
            out[w] = window_stats(self.readings[lo:hi])
        self.cached = (step, self.version, out)
        return out

    def evict(self, before_us: int) -> None:
        """Drop readings at or before ``before_us``."""
        i = bisect.bisect_right(self.keys, (before_us, 1 << 62))
        if i:
            del self.keys[:i], self.readings[:i]
            self.version += 1


@dataclass
class Patient:
    series: dict[str, Series] = field(default_factory=dict)
    seen: dict[tuple[int, str, str], int] = field(default_factory=dict)  # dedup key -> event time
    latest_us: int = -1

    @property
    def step(self) -> int:
        return step_of(self.latest_us)


Outcome = Literal["accepted", "duplicate", "too_late"]


@dataclass
class StreamState:
    """Every patient's readings within the longest window (plus the allowed lateness) of the
    watermark, and the watermark itself."""

    lateness_us: int
    future_skew_us: int = 300_000_000  # an event time this far past its arrival does not move the watermark
    patients: dict[str, Patient] = field(default_factory=dict)
    watermark_us: int = -(1 << 62)
    evicted_to_us: int = -(1 << 62)

    def add(self, r: Reading) -> Outcome:
        if r.t_us < self.watermark_us - self.lateness_us:
            return "too_late"
        p = self.patients.get(r.patient_id)
        if p is None:
            p = self.patients[r.patient_id] = Patient()
        key = (r.t_us, r.source, r.measurement)
        if key in p.seen:
            return "duplicate"
        p.seen[key] = r.t_us
        s = p.series.get(r.measurement)
        if s is None:
            s = p.series[r.measurement] = Series()
        s.add(r)
        p.latest_us = max(p.latest_us, r.t_us)
        self.watermark_us = max(self.watermark_us, min(r.t_us, r.arrival_us + self.future_skew_us))
        return "accepted"

    def closed_before(self) -> int:
        """Steps at or before this time are final: no reading the stream still accepts lands in them."""
        return self.watermark_us - self.lateness_us

    def evict(self) -> int:
        """Forget readings no open step's windows can hold; returns patients forgotten."""
        horizon = self.closed_before() - RETENTION_US
        if horizon - self.evicted_to_us < 60_000_000:  # at most once a minute of event time
            return 0
        self.evicted_to_us = horizon
        gone = []
        for pid, p in self.patients.items():
            for s in p.series.values():
                s.evict(horizon)
            p.seen = {k: t for k, t in p.seen.items() if t > horizon}
            if not p.seen:
                gone.append(pid)
        for pid in gone:
            del self.patients[pid]
        return len(gone)

    def row(self, view: FeatureView, patient_id: str, step: int) -> dict[str, Any]:
        """The view's row of one patient at ``step``: the batch featurizer's columns."""
        p = self.patients.get(patient_id) or Patient()
        names = VITALS if view.name == VITALS_VIEW.name else LABS
        row: dict[str, Any] = {}
        created: list[int] = []
        for m in names:
            s = p.series.get(m)
            per = s.stats(step) if s else dict.fromkeys(WINDOW_US, EMPTY)
            for w, st in per.items():
                for stat in ("mean", "std", "min", "max", "last", "count", "slope"):
                    row[f"{m}_{stat}_{w}"] = getattr(st, stat)
            if per["24h"].created_us is not None:
                created.append(per["24h"].created_us)
        if view.name == VITALS_VIEW.name:
            row.update(derived_vitals(row))
        out = {"patient_id": patient_id, "event_us": step, "created_us": max(created) if created else step}
        out.update((f, row[f]) for f in view.feature_names)
        return out


def _sub(a: Stat, b: Stat) -> Stat:
    return None if a is None or b is None else a - b


def derived_vitals(row: dict[str, Any]) -> dict[str, Stat]:
    """The vitals view's derived measures, as ``clinops_featurizer.core.vitals_view`` defines them."""
    sys_, dia, hr, temp = (row[f"{m}_last_1h"] for m in ("systolic_bp", "diastolic_bp", "heart_rate", "temperature"))
    out: dict[str, Stat] = {
        "pulse_pressure": _sub(sys_, dia),
        "mean_arterial_pressure": None if sys_ is None or dia is None else (sys_ + 2 * dia) / 3,
        "shock_index": hr / sys_ if hr is not None and sys_ is not None and sys_ > 0 else None,
        "hr_x_temperature": None if hr is None or temp is None else hr * temp,
    }
    for v in VITALS:
        out[f"{v}_trend_1h_24h"] = _sub(row[f"{v}_mean_1h"], row[f"{v}_mean_24h"])
    return out


def frame(view: FeatureView, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of ``StreamState.row`` as the view's offline/online columns (what ``OnlineStore.write`` takes)."""
    df = pd.DataFrame(rows, columns=["patient_id", "event_us", "created_us", *view.feature_names])
    df.insert(1, view.timestamp_field, pd.to_datetime(df.pop("event_us"), unit="us", utc=True))
    df.insert(2, view.created_timestamp_field, pd.to_datetime(df.pop("created_us"), unit="us", utc=True))
    return df.astype({f: "float64" for f in view.feature_names})
