"""The clinops model package: one format for what the trainer registers and the scorer loads.

``ModelPackage`` (feature service, schema ids, feature order, preprocessing, thresholds, ONNX model)
scores on CPU through onnxruntime; torch is never needed to load or score a model. ``save``/``load``
write and read a package folder; ``load_registered`` fetches ``models:/<name>@<alias>`` from MLflow
through a local cache; ``load_reference`` reads the training reference logged with a version.
``mlflow_model.log_package`` logs a package as an MLflow pyfunc model (from code, no pickle).
Needs the ``model`` extra of clinops-common (onnxruntime, onnx, mlflow-skinny).
"""

from clinops_common.model.package import (
    ONNX_INPUT,
    ONNX_OUTPUT,
    ModelInputError,
    ModelPackage,
    RiskLevel,
    Thresholds,
    order_id,
    service_schema_ids,
)
from clinops_common.model.preprocessing import FeatureSpec, Preprocessing, fit_preprocessing
from clinops_common.model.reference import Reference, build_reference
from clinops_common.model.registry import (
    ModelNotFound,
    default_cache_dir,
    load_reference,
    load_registered,
    load_version,
    resolve_alias,
)
from clinops_common.model.store import ModelPackageError, load, save

__all__ = [
    "ONNX_INPUT",
    "ONNX_OUTPUT",
    "FeatureSpec",
    "ModelInputError",
    "ModelNotFound",
    "ModelPackage",
    "ModelPackageError",
    "Preprocessing",
    "Reference",
    "RiskLevel",
    "Thresholds",
    "build_reference",
    "default_cache_dir",
    "fit_preprocessing",
    "load",
    "load_reference",
    "load_registered",
    "load_version",
    "order_id",
    "resolve_alias",
    "save",
    "service_schema_ids",
]
