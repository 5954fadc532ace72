"""Calls Feast (in its pinned environment, a subprocess) on the same Parquet files as our join."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd

from clinops_devstack import toolchain
from clinops_devstack.settings import StackSettings

SCRIPT = Path(__file__).with_name("feast_reference_script.py")


@dataclass(frozen=True)
class ReferenceView:
    name: str
    rows: pd.DataFrame  # patient_id, event_timestamp, created_timestamp, features...
    ttl: timedelta
    dtypes: dict[str, str]  # feature -> float64 | int64 | bool | string


class FeastReferenceError(RuntimeError):
    pass


def feast_historical_features(
    entity_df: pd.DataFrame,
    views: list[ReferenceView],
    *,
    guard: bool,
    store: str = "duckdb",
    workdir: Path | None = None,
) -> tuple[pd.DataFrame, float]:
    """Feast's ``get_historical_features`` for ``entity_df`` and the seconds its join took."""
    python = toolchain.feast_python(StackSettings().cache)
    with tempfile.TemporaryDirectory(prefix="clinops-feast-", dir=workdir) as tmp:
        d = Path(tmp)
        entity_df.to_parquet(d / "entity.parquet", index=False)
        spec_views = []
        for v in views:
            path = d / f"{v.name}.parquet"
            v.rows.to_parquet(path, index=False)
            spec_views.append(
                {"name": v.name, "path": str(path), "ttl_s": int(v.ttl.total_seconds()), "features": v.dtypes}
            )
        spec: dict[str, object] = {
            "entity": str(d / "entity.parquet"),
            "out": str(d / "out.parquet"),
            "guard": guard,
            "store": store,
        }
        spec["views"] = spec_views
        (d / "spec.json").write_text(json.dumps(spec))
        proc = subprocess.run(
            [str(python), "-W", "ignore", str(SCRIPT), str(d / "spec.json")],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise FeastReferenceError(f"feast reference failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        seconds = next(
            float(line.split("=", 1)[1]) for line in proc.stdout.splitlines() if line.startswith("feast_pit_join_s=")
        )
        return pd.read_parquet(d / "out.parquet"), seconds
