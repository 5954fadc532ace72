"""kubeconform in strict mode against the offline schemas (the built-in kinds and our CRDs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from clinops_devstack import toolchain
from clinops_devstack.schemas import SCHEMA_KUBERNETES_VERSION


def kubeconform(cache: Path, crd_schema_dir: Path, files: list[str], stdin: str | None = None) -> str:
    """Run kubeconform in strict mode with offline schemas only; raise with its report on failure."""
    binary = toolchain.require(toolchain.KUBECONFORM, cache) / "bin" / "kubeconform"
    kube = toolchain.require(toolchain.KUBERNETES_SCHEMAS, cache)
    argv = [
        str(binary),
        "-strict",
        "-summary",
        "-kubernetes-version",
        SCHEMA_KUBERNETES_VERSION,
        "-schema-location",
        f"{kube}/{{{{ .NormalizedKubernetesVersion }}}}-local{{{{ .StrictSuffix }}}}/"
        "{{ .ResourceKind }}{{ .KindSuffix }}.json",
        "-schema-location",
        f"{crd_schema_dir}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
        *(files or ["-"]),
    ]
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise toolchain.ToolError(f"kubeconform rejected the manifests:\n{proc.stdout}{proc.stderr}")
    return proc.stdout
