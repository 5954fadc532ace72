"""``ModelPackage``: everything needed to score a clinops model on CPU, without torch.

A package holds the feature service and the schema id of each view it reads, the raw feature order
(and a stable hash of it), the preprocessing fitted on the training part, the risk-level
thresholds and the model as an ONNX graph (input ``features``: float32 ``[n, width]`` after
preprocessing; output ``probability``: float32 ``[n, 1]``). ``predict_proba`` runs preprocessing
then the graph through onnxruntime.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from clinops_common.model.preprocessing import Preprocessing

if TYPE_CHECKING:
    import onnxruntime

RiskLevel = Literal["LOW", "MEDIUM", "HIGH"]
Value = float | int | bool | str | None
ONNX_INPUT = "features"
ONNX_OUTPUT = "probability"


class ModelInputError(ValueError):
    """A feature vector or matrix the model cannot score: wrong shape, names or schema ids."""


def service_schema_ids(service: str) -> dict[str, str]:
    """View -> schema id of every view a feature service reads (what a package records)."""
    from clinops_common.features.definitions import feature_service, feature_view

    return {v: feature_view(v).schema_id for v in feature_service(service).views_used}


def order_id(feature_order: Sequence[str]) -> str:
    """A stable 16-hex-digit digest of the feature order (names joined by newlines)."""
    return hashlib.sha256("\n".join(feature_order).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Thresholds:
    """Probability cut points: ``p >= high`` -> HIGH, ``p >= medium`` -> MEDIUM, else LOW."""

    medium: float
    high: float
    rule: str = ""

    def __post_init__(self) -> None:
        if not (0.0 <= self.medium <= self.high <= 1.0):
            raise ValueError(f"thresholds must satisfy 0 <= medium <= high <= 1, got {self.medium}, {self.high}")


@dataclass
class ModelPackage:
    name: str
    feature_service: str
    schema_ids: dict[str, str]
    preprocessing: Preprocessing
    thresholds: Thresholds
    onnx_model: bytes = field(repr=False)
    model_family: str = ""
    label: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    _session: onnxruntime.InferenceSession | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _codes: dict[str, dict[str, float]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {n: i for i, n in enumerate(self.feature_order)}
        self._codes = {
            f.name: {c: float(i) for i, c in enumerate(f.categories)}
            for f in self.preprocessing.features
            if f.kind == "categorical"
        }

    # ---- identity ----
    @property
    def feature_order(self) -> tuple[str, ...]:
        return self.preprocessing.feature_order

    @property
    def feature_order_id(self) -> str:
        return order_id(self.feature_order)

    # ---- risk levels ----
    def risk_level(self, p: float) -> RiskLevel:
        if p >= self.thresholds.high:
            return "HIGH"
        if p >= self.thresholds.medium:
            return "MEDIUM"
        return "LOW"

    def risk_levels(self, probabilities: np.ndarray) -> list[RiskLevel]:
        return [self.risk_level(float(p)) for p in probabilities]

    # ---- input checks and encoding ----
    def check_schema_ids(self, schema_ids: Mapping[str, str]) -> None:
        """Refuse values read under another schema of a view than the model was trained on."""
        wrong = {v: (schema_ids.get(v), s) for v, s in self.schema_ids.items() if schema_ids.get(v) != s}
        if wrong:
            detail = ", ".join(f"{v}: got {got!r}, model expects {want!r}" for v, (got, want) in sorted(wrong.items()))
            raise ModelInputError(f"schema id mismatch for model {self.name!r} ({detail})")

    def _encode(self, name: str, value: Value) -> float:
        spec = self.preprocessing.features[self._index[name]]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.nan
        if spec.kind == "categorical":
            return self._codes[name].get(str(value), math.nan)
        if isinstance(value, str):
            raise ModelInputError(f"feature {name!r} is numeric, got the string {value!r}")
        return float(value)

    def vectorize(self, values: Mapping[str, Value], schema_ids: Mapping[str, str] | None = None) -> np.ndarray:
        """One raw row (float32, the package's feature order) from feature name -> value.

        ``None`` (or NaN) is a missing value: preprocessing imputes it. A categorical value is its
        category's index; an unseen category counts as missing. Unknown or absent feature names, a
        string for a numeric feature, or (when given) schema ids other than the model's raise
        ``ModelInputError``."""
        if schema_ids is not None:
            self.check_schema_ids(schema_ids)
        expected = set(self.feature_order)
        unknown = sorted(set(values) - expected)
        absent = sorted(expected - set(values))
        if unknown or absent:
            parts = []
            if unknown:
                parts.append(f"unknown features {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
            if absent:
                parts.append(f"missing features {absent[:5]}{' ...' if len(absent) > 5 else ''}")
            raise ModelInputError(
                f"model {self.name!r} expects the {len(expected)} features of {self.feature_service!r}: "
                + "; ".join(parts)
            )
        return np.array([self._encode(n, values[n]) for n in self.feature_order], dtype=np.float32)

    def vectorize_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """The raw matrix (float32, n x features) of a data frame holding the feature columns."""
        absent = [n for n in self.feature_order if n not in frame.columns]
        if absent:
            raise ModelInputError(f"model {self.name!r}: the frame lacks features {absent[:5]}")
        out = np.empty((len(frame), len(self.feature_order)), dtype=np.float32)
        for j, spec in enumerate(self.preprocessing.features):
            col = frame[spec.name]
            if spec.kind == "categorical":
                lookup = self._codes[spec.name]
                out[:, j] = col.map(lambda v, lk=lookup: lk.get(str(v), math.nan) if pd.notna(v) else math.nan)
            else:
                try:
                    out[:, j] = pd.to_numeric(col.astype("float64"), errors="raise").to_numpy(dtype=np.float64)
                except (TypeError, ValueError) as err:
                    raise ModelInputError(f"feature {spec.name!r} is numeric: {err}") from None
        return out

    # ---- inference ----
    def session(self) -> onnxruntime.InferenceSession:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                self._session = ort.InferenceSession(self.onnx_model, opts, providers=["CPUExecutionProvider"])
            return self._session

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """P(label = 1) per row of a raw matrix (n x features, NaN = missing); preprocessing inside."""
        matrix = np.asarray(matrix)
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.feature_order):
            raise ModelInputError(
                f"model {self.name!r} expects a matrix of shape (n, {len(self.feature_order)}) in feature order "
                f"{self.feature_order_id}, got shape {matrix.shape}"
            )
        if matrix.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        try:
            raw = matrix.astype(np.float32)
        except (TypeError, ValueError) as err:
            raise ModelInputError(f"model {self.name!r}: the matrix is not numeric ({err})") from None
        x = self.preprocessing.transform(raw)
        out = self.session().run([ONNX_OUTPUT], {ONNX_INPUT: x})[0]
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(self.vectorize_frame(frame))
