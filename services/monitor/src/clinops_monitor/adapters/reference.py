"""MLflow: the champion version of a registered model and its training reference.

The reference is what the trainer logs with each version (``reference/sample.parquet``: up to 20,000
validation rows, the model's features plus ``probability`` and ``label``; ``reference/bins.json``:
per column bin edges, reference proportions and quantiles), read through the model package's
``load_reference``. Downloads are cached by model name and version.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from clinops_monitor.core.drift import Bins
from clinops_monitor.core.evaluation import Reference


class ReferenceUnavailable(RuntimeError):
    """The champion's training reference cannot be read (not logged, or MLflow unreachable)."""


def reference_from_parts(sample: Any, bins: dict[str, Any], features: tuple[str, ...] | None = None) -> Reference:
    """A Reference from the logged sample frame and ``bins.json`` (numeric columns only: categorical
    features have no KS or PSI on edges and are left out of drift)."""
    names = features if features is not None else tuple(c for c in sample.columns if c not in ("probability", "label"))
    numeric = [
        c for c in (*names, "probability") if c in sample and bins.get(c, {}).get("kind", "numeric") == "numeric"
    ]
    columns = {c: np.asarray(sample[c], dtype=np.float64) for c in numeric}
    parsed = {
        name: Bins(np.asarray(b["edges"], dtype=np.float64), np.asarray(b["proportions"], dtype=np.float64))
        for name, b in bins.items()
        if name in columns and len(b.get("edges", ())) >= 2
    }
    return Reference(features=tuple(f for f in names if f in columns), sample=columns, bins=parsed)


class MlflowReferences:
    """``ReferenceSource`` over the MLflow registry (alias ``champion`` by default)."""

    def __init__(self, tracking_uri: str, alias: str = "champion") -> None:
        self.tracking_uri = tracking_uri
        self.alias = alias

    def champion(self, model_name: str) -> str | None:
        try:
            from clinops_common.model import resolve_alias  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:  # the model package is not part of this build yet
            raise ReferenceUnavailable("clinops_common.model is not available in this build (not yet)") from exc
        version: str | None = resolve_alias(self.tracking_uri, model_name, self.alias)
        return version

    @lru_cache(maxsize=16)  # noqa: B019 (one source per process; versions are immutable)
    def reference(self, model_name: str, version: str) -> Reference:
        try:
            from clinops_common.model import load_reference  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ReferenceUnavailable("clinops_common.model is not available in this build (not yet)") from exc
        ref = load_reference(self.tracking_uri, model_name, version)
        return reference_from_parts(ref.sample, ref.bins)
