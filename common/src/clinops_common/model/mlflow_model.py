"""Log a ``ModelPackage`` to MLflow as a pyfunc model (from code: nothing pickled).

The logged model holds the package folder as its artifact ``package`` (``clinops-model.json`` and
``model.onnx``), the pyfunc wrapper as code, a signature inferred from the input example and the
package's predictions, the input example itself and explicit ``pip_requirements`` (MLflow would
otherwise guess them from the training environment and name torch). ``load_registered`` reads the
package folder directly; ``mlflow.pyfunc.load_model`` also works.
"""

from __future__ import annotations

import json
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from clinops_common.model.package import ModelPackage
from clinops_common.model.reference import BINS_FILE, REFERENCE_DIR, SAMPLE_FILE, Reference
from clinops_common.model.store import save

SCORING_DISTRIBUTIONS = ("onnxruntime", "numpy", "pandas", "pyarrow", "mlflow-skinny", "pydantic")


def scoring_requirements() -> list[str]:
    """What scoring a package needs, pinned to the versions installed here (never torch)."""
    reqs = [f"clinops-common[model]=={metadata.version('clinops-common')}"]
    for dist in SCORING_DISTRIBUTIONS:
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs


def log_package(
    pkg: ModelPackage,
    input_example: pd.DataFrame,
    *,
    name: str = "model",
    registered_model_name: str | None = None,
    pip_requirements: list[str] | None = None,
    tags: dict[str, Any] | None = None,
) -> Any:
    """Log ``pkg`` in the active MLflow run; returns MLflow's ``ModelInfo``."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    example = input_example[list(pkg.feature_order)].head(5).reset_index(drop=True)
    signature = infer_signature(example, pkg.predict_frame(example))
    code = Path(__file__).with_name("pyfunc_model.py")
    with tempfile.TemporaryDirectory(prefix="clinops-model-") as tmp:
        folder = save(pkg, Path(tmp) / "package")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(code),
            artifacts={"package": str(folder)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements or scoring_requirements(),
            registered_model_name=registered_model_name,
            tags=tags,
        )


def log_reference(reference: Reference) -> None:
    """Log the training reference in the active run under ``reference/`` (sample.parquet, bins.json)."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="clinops-reference-") as tmp:
        reference.sample.to_parquet(Path(tmp) / SAMPLE_FILE, index=False)
        (Path(tmp) / BINS_FILE).write_text(json.dumps(reference.bins, indent=1, sort_keys=True))
        mlflow.log_artifacts(tmp, REFERENCE_DIR)
