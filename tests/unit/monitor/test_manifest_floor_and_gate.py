"""The example manifests' AUROC floor (monitor) and promotion gate (trainer) make sense together:
a model the gate accepts must not trip the floor at once, so the floor sits below the gate, and both
below the generator's oracle AUROC that the trainer's benchmark reports for this world (0.717,
README "Benchmark figures" of the trainer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CRD = ROOT / "charts" / "clinops" / "crds" / "featurepipelines.clinops.io.yaml"
ORACLE_AUROC = 0.717  # `make bench-train`: the oracle's AUROC on the test rows of the generator's world
INTERVAL_ROOM = 0.02  # a 7-day window's AUROC interval is a few hundredths wide


def _crd_default(*path: str) -> float:
    node: Any = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for key in ("spec", *path):
        node = node["properties"][key]
    return float(node["default"])


def _monitored() -> list[Path]:
    """Manifests of the adverse-event model (the model whose outcomes the monitor labels)."""
    out = []
    for path in sorted((ROOT / "manifests").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        if (body.get("spec") or {}).get("features", {}).get("service", "adverse_event_v1") == "adverse_event_v1":
            out.append(path)
    return out


@pytest.mark.parametrize("path", _monitored(), ids=lambda p: p.name)
def test_floor_below_gate_below_oracle(path: Path) -> None:
    spec = yaml.safe_load(path.read_text())["spec"]
    floor = (spec.get("monitoring") or {}).get("aurocFloor", _crd_default("monitoring", "aurocFloor"))
    gate = ((spec.get("training") or {}).get("promotionGate") or {}).get(
        "minAuroc", _crd_default("training", "promotionGate", "minAuroc")
    )
    assert floor + INTERVAL_ROOM <= gate < ORACLE_AUROC, (floor, gate)


def test_the_adverse_event_manifest_is_checked() -> None:
    assert "adverse-event.yaml" in {p.name for p in _monitored()}
