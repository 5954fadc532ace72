"""Evidently's data-drift report on the monitor's drift sample, timed in its own pinned environment.

The same columns, the same reference sample and the same current sample our drift sees; Evidently
0.7.23's ``DataDriftPreset`` run twice, once with KS and once with PSI on every numeric column (the two
tests ours computes in one pass). Only ``Report.run`` is timed: reading the data and importing
Evidently are not.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SCRIPT = """
import json, sys, time
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
data = np.load(sys.argv[1])
columns = [n[4:] for n in data.files if n.startswith("ref_")]
ref = pd.DataFrame({c: data["ref_" + c] for c in columns})
cur = pd.DataFrame({c: data["cur_" + c] for c in columns})
seconds = {}
for method in ("ks", "psi"):
    report = Report([DataDriftPreset(columns=columns, num_method=method)])
    t0 = time.perf_counter()
    report.run(current_data=cur, reference_data=ref)
    seconds[method] = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "columns": len(columns), "rows": len(cur)}))
"""


def evidently_drift_seconds(
    python: Path, reference: dict[str, np.ndarray], current: dict[str, np.ndarray]
) -> dict[str, float]:
    """Seconds Evidently's KS and PSI reports take on these columns (present in both)."""
    columns = [c for c in reference if c in current and len(current[c]) == len(current["probability"])]
    with tempfile.TemporaryDirectory(prefix="clinops-evidently-") as tmp:
        data = Path(tmp) / "drift.npz"
        arrays = {f"ref_{c}": reference[c] for c in columns} | {f"cur_{c}": current[c] for c in columns}
        np.savez(data, **arrays)  # type: ignore[arg-type]
        proc = subprocess.run([str(python), "-c", SCRIPT, str(data)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"Evidently's report failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    seconds: dict[str, float] = out["seconds"]
    return seconds
