"""``generate(config)``: the whole synthetic data set, deterministic by seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clinops_common.lake import BatchTable
from clinops_common.synthetic import cohort, latent, stream
from clinops_common.synthetic.config import GeneratorConfig


@dataclass
class Dataset:
    """Everything one generator run made."""

    config: GeneratorConfig
    patients: list[cohort.Patient]
    batch: dict[BatchTable, list[dict[str, Any]]]
    oracle: list[dict[str, Any]]
    messages: list[stream.Message]
    ledger: stream.Ledger
    truths: list[stream.Truth] = field(default_factory=list)


def clean_history(cfg: GeneratorConfig) -> tuple[Dataset, list[stream.Clean], random.Random]:
    """Patients, batch tables, latent trajectories, oracle and the fault-free events in time order.

    Returns the data set without wire messages, the clean events, and the random stream of the
    faults (so ``generate`` injects exactly the faults it always did). Separate random streams per
    part keep each part stable when another changes size.
    """
    seeds = random.Random(cfg.seed)  # noqa: S311 (synthetic data, not security)
    rng_cohort, rng_batch, rng_latent, rng_events, rng_faults = (
        random.Random(seeds.getrandbits(64))  # noqa: S311
        for _ in range(5)
    )
    patients = cohort.make_patients(cfg, rng_cohort)
    batch = cohort.batch_rows(cfg, patients, rng_batch)
    ledger = stream.Ledger()
    oracle: list[dict[str, Any]] = []
    clean: list[stream.Clean] = []
    for bed, p in enumerate(patients[: cfg.patients]):
        traj = latent.simulate(p, cfg.hours, rng_latent, cfg.scenario)
        for h in range(cfg.hours):
            oracle.append(
                {
                    "patient_id": p.patient_id,
                    "time": cfg.start + timedelta(hours=h),
                    "p_adverse_event_24h": traj.p_event_24h(h),
                    "severity": traj.severity[h],
                    "hazard_per_hour": traj.hazard[h],
                }
            )
        events, adverse = stream.patient_events(cfg, p, traj, bed, rng_events)
        ledger.adverse_events += adverse
        clean.extend(events)
    clean.sort(key=lambda c: (c.event_ms, c.event["patient_id"]))
    return Dataset(cfg, patients, batch, oracle, [], ledger), clean, rng_faults


def generate(cfg: GeneratorConfig, *, keep_truth: bool = False) -> Dataset:
    """Patients, batch tables, latent trajectories, oracle, wire messages (with faults) and ledger."""
    ds, clean, rng_faults = clean_history(cfg)
    truths: list[stream.Truth] | None = [] if keep_truth else None
    ds.messages = stream.inject(cfg, clean, rng_faults, ds.ledger, truths)
    ds.truths = truths or []
    return ds


def window(cfg: GeneratorConfig) -> tuple[datetime, datetime]:
    return cfg.start, cfg.start + timedelta(hours=cfg.hours)
