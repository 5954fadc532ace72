"""Registered models in MLflow: resolve an alias, load a version through a local cache, and read the
training reference logged with it.

The cache (``cache_dir``, default ``$CLINOPS_MODEL_CACHE`` or ``~/.cache/clinops/models``) keeps one
folder per name and version: a registered version never changes, so it is downloaded once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from clinops_common.model.package import ModelPackage
from clinops_common.model.reference import BINS_FILE, REFERENCE_DIR, SAMPLE_FILE, Reference
from clinops_common.model.store import load


class ModelNotFound(LookupError):
    """No such registered model, version or alias."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("CLINOPS_MODEL_CACHE", Path.home() / ".cache" / "clinops" / "models"))


def _client(tracking_uri: str):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve_alias(tracking_uri: str, name: str, alias: str = "champion") -> str | None:
    """The version the alias points at, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client(tracking_uri).get_model_version_by_alias(name, alias).version)
    except MlflowException as err:
        if getattr(err, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def _safe(part: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in part)


def _download(uri: str, target: Path, tracking_uri: str) -> Path:
    """Download into a temporary sibling, then rename: a half-written cache entry is never seen."""
    import mlflow
    import mlflow.artifacts

    # A models:/ URI is resolved through the registry URI, not the tracking_uri argument: unset, MLflow
    # falls back to a local database of its own and finds no such model.
    mlflow.set_registry_uri(tracking_uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp), tracking_uri=tracking_uri)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_version(tracking_uri: str, name: str, version: str, cache_dir: str | Path | None = None) -> ModelPackage:
    target = Path(cache_dir or default_cache_dir()) / _safe(name) / _safe(str(version))
    if not target.is_dir():
        _download(f"models:/{name}/{version}", target, tracking_uri)
    return load(target)


def load_registered(
    tracking_uri: str, name: str, alias: str = "champion", cache_dir: str | Path | None = None
) -> tuple[ModelPackage, str]:
    """The package of ``models:/<name>@<alias>`` and its version (downloaded once per version)."""
    version = resolve_alias(tracking_uri, name, alias)
    if version is None:
        raise ModelNotFound(f"registered model {name!r} has no alias {alias!r} (or does not exist) at {tracking_uri}")
    return load_version(tracking_uri, name, version, cache_dir), version


def load_reference(tracking_uri: str, name: str, version: str, cache_dir: str | Path | None = None) -> Reference:
    """The training reference logged with the run that produced ``name`` version ``version``."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client(tracking_uri).get_model_version(name, str(version))
    except MlflowException as err:
        raise ModelNotFound(f"no version {version!r} of registered model {name!r}: {err.message}") from None
    if not mv.run_id:
        raise ModelNotFound(f"version {version} of {name!r} has no run, so no training reference")
    target = Path(cache_dir or default_cache_dir()) / _safe(name) / f"{_safe(str(version))}-reference"
    if not target.is_dir():
        _download(f"runs:/{mv.run_id}/{REFERENCE_DIR}", target, tracking_uri)
    folder = next((p.parent for p in target.rglob(BINS_FILE)), None)
    if folder is None:
        raise ModelNotFound(f"the run of {name!r} version {version} logged no {REFERENCE_DIR}/{BINS_FILE}")
    return Reference(pd.read_parquet(folder / SAMPLE_FILE), json.loads((folder / BINS_FILE).read_text()))
