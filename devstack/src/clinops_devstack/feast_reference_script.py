"""Feast's ``get_historical_features`` on the same Parquet files: the reference for our join.

Run by the pinned Feast environment (``make setup`` builds it; Feast's version caps clash with the
project's lock), never imported by clinops itself::

    <feast venv>/bin/python feast_reference.py spec.json

``spec.json``: ``{"entity": <parquet>, "out": <parquet>, "guard": bool, "store": "duckdb" | "dask",
"views": [{"name", "path", "ttl_s", "features": {name: dtype}}]}``. Writes the joined rows (entity
columns, then features) to ``out`` and prints ``feast_pit_join_s=<seconds>`` for the join alone.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

DTYPES = {"float64": "Float64", "int64": "Int64", "bool": "Bool", "string": "String"}


def main(spec_path: str) -> None:
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType, types
    from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    with tempfile.TemporaryDirectory(prefix="feast-ref-") as tmp:
        store = FeatureStore(
            config=RepoConfig(
                project="clinops_reference",
                registry=str(Path(tmp, "registry.db")),
                provider="local",
                offline_store=DuckDBOfflineStoreConfig()
                if spec.get("store", "duckdb") == "duckdb"
                else DaskOfflineStoreConfig(),
                online_store=SqliteOnlineStoreConfig(path=str(Path(tmp, "online.db"))),
                entity_key_serialization_version=3,
            )
        )
        patient = Entity(name="patient", join_keys=["patient_id"], value_type=ValueType.STRING)
        views = []
        refs = []
        for v in spec["views"]:
            source = FileSource(
                name=f"{v['name']}_source",
                path=v["path"],
                timestamp_field="event_timestamp",
                created_timestamp_column="created_timestamp",
            )
            views.append(
                FeatureView(
                    name=v["name"],
                    entities=[patient],
                    ttl=timedelta(seconds=v["ttl_s"]),
                    schema=[Field(name=f, dtype=getattr(types, DTYPES[d])) for f, d in v["features"].items()],
                    source=source,
                    online=False,
                )
            )
            refs += [f"{v['name']}:{f}" for f in v["features"]]
        store.apply([patient, *views])
        entity_df = pd.read_parquet(spec["entity"])
        t0 = time.perf_counter()
        job = store.get_historical_features(
            entity_df=entity_df,
            features=refs,
            filter_by_created_timestamp=bool(spec["guard"]),
        )
        out = job.to_df()
        elapsed = time.perf_counter() - t0
    out.to_parquet(spec["out"], index=False)
    print(f"feast_pit_join_s={elapsed:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
