"""The trainer's settings (``CLINOPS_TRAINER_*``); endpoints and credentials: ``TrainingConnections``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINOPS_TRAINER_", extra="ignore")

    label_horizon_hours: int = Field(24, gt=0, description="Label horizon; also the purge between split parts.")
    bootstrap_samples: int = Field(1000, ge=100, description="Bootstrap resamples for AUROC intervals.")
    reference_rows: int = Field(20_000, gt=0, description="Validation rows kept in the training reference.")
    importance_rows: int = Field(5_000, gt=0, description="Validation rows for permutation importance (MLP).")
    threads: int = Field(2, gt=0, description="CPU threads for torch and XGBoost.")
    model_cache_dir: Path | None = Field(None, description="Local cache of registered models (champion re-scoring).")
    oracle_key: str = Field(
        "synthetic/oracle/oracle.parquet", description="Object key of the generator's oracle in the lake (optional)."
    )
    onnx_tolerance: float = Field(1e-6, gt=0, description="Largest |ONNX - native| probability allowed on test rows.")
    log_level: str = Field("INFO")
