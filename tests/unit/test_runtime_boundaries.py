"""Runtime code stands without the dev member: no import of it, and every CLI starts where it is absent.

Imports run one way: services and the operator import clinops_common; clinops_devstack may import
anything; nothing imports clinops_devstack, and clinops_common imports neither a service nor the operator.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "processor", "featurizer", "trainer", "scorer", "monitor")
RUNTIME = {
    "clinops_common": REPO / "common" / "src" / "clinops_common",
    "clinops_operator": REPO / "operator" / "src" / "clinops_operator",
    **{f"clinops_{s}": REPO / "services" / s / "src" / f"clinops_{s}" for s in SERVICES},
}
DEV_ONLY = ("clinops_devstack", "port_for", "pytest")


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module a file imports (anywhere in it, lazily or not)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def forbidden_imports(package: str, root: Path) -> list[str]:
    forbidden = set(DEV_ONLY)
    if package == "clinops_common":
        forbidden |= {f"clinops_{s}" for s in SERVICES} | {"clinops_operator"}
    if package == "clinops_operator":
        forbidden |= {f"clinops_{s}" for s in SERVICES}
    return [
        f"{package}/{path.relative_to(root)} imports {name}"
        for path in sorted(root.rglob("*.py"))
        for name in sorted(imported_modules(path) & forbidden)
    ]


@pytest.mark.parametrize("package", sorted(RUNTIME))
def test_runtime_code_never_imports_dev_tooling(package: str) -> None:
    assert forbidden_imports(package, RUNTIME[package]) == []


def test_the_check_finds_a_forbidden_import(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f():\n    from clinops_devstack.settings import StackSettings\n")
    (tmp_path / "n.py").write_text("import clinops_operator.core\n")
    assert forbidden_imports("clinops_ingest", tmp_path) == ["clinops_ingest/m.py imports clinops_devstack"]
    assert forbidden_imports("clinops_common", tmp_path) == [
        "clinops_common/m.py imports clinops_devstack",
        "clinops_common/n.py imports clinops_operator",
    ]


# Run a module as ``python -m`` with the dev-only packages unimportable, as in an image built without them.
BLOCKED_RUN = (
    "import runpy, sys\n"
    "for name in {blocked!r}: sys.modules[name] = None\n"
    "sys.argv = [{module!r}, '--help']\n"
    "runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
)


def help_without_dev(module: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINOPS_")}  # and no settings at all
    code = BLOCKED_RUN.format(blocked=DEV_ONLY, module=module)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_every_service_and_the_operator_answer_help_without_the_dev_member() -> None:
    modules = [f"clinops_{s}" for s in (*SERVICES, "operator")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(modules, pool.map(help_without_dev, modules), strict=True))
    failed = {m: r.stderr[-1500:] for m, r in results.items() if r.returncode != 0 or "Usage" not in r.stdout}
    assert failed == {}


def test_blocking_works_a_module_that_needs_the_dev_member_fails() -> None:
    result = help_without_dev("clinops_devstack")
    assert result.returncode != 0
    assert "clinops_devstack" in result.stderr
