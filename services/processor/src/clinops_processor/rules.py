"""The processor's validation rules and unit conversions: defined once in ``clinops_common.rules``
(the streaming featurizer applies the same ones), re-exported here for the processor's modules."""

from clinops_common.rules import (
    DEDUP_KEYS,
    DOSE_NOT_POSITIVE,
    INVALID_RECORD,
    OUT_OF_RANGE,
    RULES,
    UNKNOWN_MEASUREMENT,
    UNKNOWN_UNIT,
    NotAffine,
    UnitRule,
    Verdict,
    affine,
    check_measurement,
    unit_rules,
)

__all__ = [
    "DEDUP_KEYS",
    "DOSE_NOT_POSITIVE",
    "INVALID_RECORD",
    "OUT_OF_RANGE",
    "RULES",
    "UNKNOWN_MEASUREMENT",
    "UNKNOWN_UNIT",
    "NotAffine",
    "UnitRule",
    "Verdict",
    "affine",
    "check_measurement",
    "unit_rules",
]
