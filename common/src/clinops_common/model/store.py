"""Save and load a ``ModelPackage`` as a folder: ``clinops-model.json`` and ``model.onnx``.

No pickle anywhere: the manifest is JSON and the model an ONNX graph, so loading a package runs no
code from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clinops_common.model.package import ModelPackage, Thresholds
from clinops_common.model.preprocessing import Preprocessing

MANIFEST = "clinops-model.json"
ONNX_FILE = "model.onnx"
FORMAT_VERSION = 1


class ModelPackageError(ValueError):
    """A folder that does not hold a readable clinops model package."""


def manifest(pkg: ModelPackage) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "name": pkg.name,
        "feature_service": pkg.feature_service,
        "schema_ids": dict(sorted(pkg.schema_ids.items())),
        "feature_order": list(pkg.feature_order),
        "feature_order_id": pkg.feature_order_id,
        "preprocessing": pkg.preprocessing.to_json(),
        "thresholds": {"medium": pkg.thresholds.medium, "high": pkg.thresholds.high, "rule": pkg.thresholds.rule},
        "model_family": pkg.model_family,
        "label": pkg.label,
        "metadata": pkg.metadata,
    }


def save(pkg: ModelPackage, directory: str | Path) -> Path:
    """Write the package into ``directory`` (created if needed); returns the folder."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / ONNX_FILE).write_bytes(pkg.onnx_model)
    (out / MANIFEST).write_text(json.dumps(manifest(pkg), indent=1, sort_keys=True))
    return out


def find_package(directory: str | Path) -> Path:
    """The folder holding ``clinops-model.json`` at or below ``directory`` (a downloaded MLflow model)."""
    root = Path(directory)
    if (root / MANIFEST).is_file():
        return root
    found = sorted(root.rglob(MANIFEST))
    if not found:
        raise ModelPackageError(f"no {MANIFEST} under {root}: not a clinops model package")
    return found[0].parent


def load(directory: str | Path) -> ModelPackage:
    """Read a package written by ``save`` (also found one level down, as MLflow lays it out)."""
    folder = find_package(directory)
    try:
        raw = json.loads((folder / MANIFEST).read_text())
        onnx_model = (folder / ONNX_FILE).read_bytes()
    except (OSError, json.JSONDecodeError) as err:
        raise ModelPackageError(f"cannot read the model package in {folder}: {err}") from None
    if raw.get("format_version") != FORMAT_VERSION:
        raise ModelPackageError(f"{folder}: package format {raw.get('format_version')!r}, expected {FORMAT_VERSION}")
    pre = Preprocessing.from_json(raw["preprocessing"])
    th = raw["thresholds"]
    pkg = ModelPackage(
        name=raw["name"],
        feature_service=raw["feature_service"],
        schema_ids=dict(raw["schema_ids"]),
        preprocessing=pre,
        thresholds=Thresholds(float(th["medium"]), float(th["high"]), str(th.get("rule", ""))),
        onnx_model=onnx_model,
        model_family=raw.get("model_family", ""),
        label=raw.get("label", ""),
        metadata=dict(raw.get("metadata", {})),
    )
    if list(pkg.feature_order) != list(raw["feature_order"]) or pkg.feature_order_id != raw["feature_order_id"]:
        raise ModelPackageError(f"{folder}: the feature order does not match its preprocessing")
    return pkg
