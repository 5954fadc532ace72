"""Our KS and PSI against Evidently's (0.7.23, in its own pinned environment) on the same data.

KS: Evidently's ``ks_stat_test`` p-value equals ours. PSI: Evidently bins reference and current
together (Sturges' rule) and replaces empty shares by 1e-4; our PSI, given the same edges, gives the
same figure (ours then uses the training reference's decile bins, which Evidently cannot know).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clinops_devstack import toolchain
from clinops_devstack.settings import StackSettings
from clinops_monitor.core.drift import Bins, column_drift, proportions, psi

SCRIPT = """
import json, sys
import numpy as np, pandas as pd
from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.core import ColumnType
data = np.load(sys.argv[1])
out = {}
for name in data.files:
    if not name.startswith("ref_"):
        continue
    col = name[4:]
    ref, cur = pd.Series(data[name]), pd.Series(data["cur_" + col])
    p, _ = _ks_stat_test(ref, cur, ColumnType.Numerical, 0.05)
    value, _ = _psi(ref, cur, ColumnType.Numerical, 0.1)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    out[col] = {"ks_p": float(p), "psi": float(value), "edges": edges.tolist()}
print(json.dumps(out))
"""


def test_ks_and_psi_match_evidently(tmp_path: Path) -> None:
    try:
        python = toolchain.evidently_python(StackSettings().cache)
    except toolchain.ToolError as exc:
        pytest.fail(f"the Evidently reference environment is missing: {exc}")
    rng = np.random.default_rng(7)
    columns = {
        "same": (rng.normal(0, 1, 5000), rng.normal(0, 1, 3000)),
        "shifted": (rng.normal(0, 1, 5000), rng.normal(0.4, 1, 3000)),
        "wider": (rng.normal(37, 0.3, 20_000), rng.normal(37, 0.6, 50_000)),
        "skewed": (rng.beta(1, 9, 20_000), rng.beta(1, 6, 20_000)),
    }
    data = tmp_path / "data.npz"
    np.savez(
        data, **{f"ref_{k}": r for k, (r, _) in columns.items()}, **{f"cur_{k}": c for k, (_, c) in columns.items()}
    )
    script = tmp_path / "evidently_drift.py"
    script.write_text(SCRIPT)
    run = subprocess.run([str(python), str(script), str(data)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    for name, (ref, cur) in columns.items():
        ours = column_drift(name, ref, cur, None, psi_threshold=0.2, ks_p_value=0.01)
        assert ours.ks_p_value == pytest.approx(theirs[name]["ks_p"], rel=1e-6, abs=1e-300), name
        edges = np.asarray(theirs[name]["edges"])
        same_bins = psi(Bins(edges, proportions(ref, edges)), cur)
        assert same_bins == pytest.approx(theirs[name]["psi"], rel=1e-9, abs=1e-12), name
    assert theirs["same"]["psi"] < 0.1 < theirs["shifted"]["psi"]
