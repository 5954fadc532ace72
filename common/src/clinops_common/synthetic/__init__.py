"""Synthetic clinical data from a documented latent risk model, with faults and a ledger.

``generate(GeneratorConfig(...))`` returns a ``Dataset``: the stroke cohort's batch tables, wire
messages for the five topics (faults injected), the oracle (true probability of an adverse event in
the next 24 hours per patient and hour) and the ledger that reconciles every count.
``python -m clinops_common.synthetic --help`` writes it to files, the lake and Kafka.
"""

from clinops_common.synthetic.config import FAULT_KINDS, FaultRates, GeneratorConfig, Scenario, patient_id
from clinops_common.synthetic.generator import Dataset, generate
from clinops_common.synthetic.stream import Ledger, Message, Truth

__all__ = [
    "FAULT_KINDS",
    "Dataset",
    "FaultRates",
    "GeneratorConfig",
    "Ledger",
    "Message",
    "Scenario",
    "Truth",
    "generate",
    "patient_id",
]
