"""Pinned infrastructure built by ``make setup``, cached outside the repository by version.

Each ``Tool`` knows where its pinned build lives in the cache, whether it is there, and how to
build it from the package registries (Maven Central, the Go module proxy). A second ``make setup``
finds everything present and only checks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

KAFKA_VERSION = "3.9.1"
SLF4J_VERSION = "1.7.36"
RELOAD4J_VERSION = "1.2.25"
# The MinIO repository was archived in February 2026; the module proxy serves its final commit
# only as this pseudo-version (the RELEASE.* tags are not valid module versions).
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
# hadoop-aws must match the Hadoop that pyspark bundles (pyspark/jars/hadoop-client-api-*.jar);
# the AWS SDK v2 bundle is the one hadoop-aws declares in its pom.
HADOOP_VERSION = "3.4.2"
AWS_SDK_BUNDLE_VERSION = "2.29.52"
MAVEN_DEPENDENCY_PLUGIN = "3.8.1"
# Feast, the reference for the point-in-time join (tests and bench-features only), in its own
# virtualenv: its caps (pandas<3, redis<8, prometheus_client<0.25) clash with the project's lock.
FEAST_VERSION = "0.67.0"
FEAST_REQUIREMENTS = Path(__file__).with_name("feast-reference.txt")
# Evidently, the reference for the monitor's drift tests (tests and bench-monitor only), in its own
# environment for the same reason.
EVIDENTLY_VERSION = "0.7.23"
EVIDENTLY_REQUIREMENTS = Path(__file__).with_name("evidently-reference.txt")

# The local Kubernetes control plane (`make cluster-up`, the operator's tests), all from the Go module proxy.
KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.7.0"
HELM_VERSION = "v3.19.5"
# crictl: the real node's CRI client (cluster-down removes every pod sandbox through it).
CRICTL_VERSION = "v1.34.0"
KUBECONFORM_VERSION = "v0.7.0"
# The real SparkApplication CRD (sparkoperator.k8s.io/v1beta2), from the spark-operator Go module.
SPARK_OPERATOR_VERSION = "v2.5.2"
SPARK_OPERATOR_MODULE = "github.com/kubeflow/spark-operator/v2"
# The real PrometheusRule CRD (monitoring.coreos.com/v1), from the prometheus-operator Go module.
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
# The stroke cohort's document store: FerretDB (MongoDB wire protocol, SQLite backend), from the Go
# module proxy. ``go install .../cmd/ferretdb`` of v1.24.x panics at start-up (the module zip has no
# build/version/version.txt), so a small main of ours (ferretdb/main.go) embeds its ``ferretdb`` package.
FERRETDB_VERSION = "v1.24.2"
FERRETDB_MAIN = Path(__file__).with_name("ferretdb") / "main.go"
# The stroke job's source connectors, from Maven Central: the MongoDB Spark connector (Scala 2.13;
# 10.5.0 is the newest on Maven Central and runs on Spark 4.1), the PostgreSQL and SQL Server JDBC drivers.
MONGO_SPARK_VERSION = "10.5.0"
POSTGRES_JDBC_VERSION = "42.7.14"
MSSQL_JDBC_VERSION = "13.6.2.jre11"


class ToolError(RuntimeError):
    """A pinned tool could not be built or found."""


@dataclass(frozen=True)
class Tool:
    """One pinned piece of infrastructure in the cache."""

    name: str
    version: str
    marker: str  # path relative to the tool's cache folder whose presence means "built"
    build: Callable[[Path], None]

    def home(self, cache: Path) -> Path:
        return cache / f"{self.name}-{self.version}"

    def ready(self, cache: Path) -> bool:
        return (self.home(cache) / self.marker).exists()

    def ensure(self, cache: Path) -> bool:
        """Build into the cache if missing. Returns True when it had to build."""
        if self.ready(cache):
            return False
        home = self.home(cache)
        staging = home.with_name(home.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.build(staging)
        shutil.rmtree(home, ignore_errors=True)
        staging.rename(home)  # atomic: a half-built tool never looks ready
        if not self.ready(cache):
            raise ToolError(f"{self.name} {self.version}: built, but {self.marker} is missing")
        return True


def _pom(dependencies: list[tuple[str, str, str]]) -> str:
    deps = "\n".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in dependencies
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.clinops</groupId><artifactId>toolchain</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>{deps}</dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
    <version>{MAVEN_DEPENDENCY_PLUGIN}</version>
  </plugin></plugins></build>
</project>
"""


def maven_copy(dependencies: list[tuple[str, str, str]], out: Path, *, transitive: bool) -> None:
    """Copy artifacts (and, if asked, their runtime dependencies) from Maven Central into ``out``."""
    with tempfile.TemporaryDirectory(prefix="clinops-mvn-") as tmp:
        Path(tmp, "pom.xml").write_text(_pom(dependencies))
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(Path(tmp, "pom.xml")),
            f"org.apache.maven.plugins:maven-dependency-plugin:{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={out}",
            f"-DexcludeTransitive={'false' if transitive else 'true'}",
        ]
        _run(cmd)


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise ToolError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")


def _build_kafka(home: Path) -> None:
    maven_copy(
        [
            ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
            ("org.apache.kafka", "kafka-tools", KAFKA_VERSION),
            ("org.slf4j", "slf4j-reload4j", SLF4J_VERSION),
            ("ch.qos.reload4j", "reload4j", RELOAD4J_VERSION),
        ],
        home / "libs",
        transitive=True,
    )


def _build_minio(home: Path) -> None:
    env = {**os.environ, "GOBIN": str(home / "bin"), "GOFLAGS": "-trimpath", "CGO_ENABLED": "0"}
    _run(["go", "install", f"github.com/minio/minio@{MINIO_VERSION}"], env=env)


def _build_spark_s3a(home: Path) -> None:
    maven_copy(
        [
            ("org.apache.hadoop", "hadoop-aws", HADOOP_VERSION),
            ("software.amazon.awssdk", "bundle", AWS_SDK_BUNDLE_VERSION),
        ],
        home,
        transitive=False,
    )


def _build_spark_sources(home: Path) -> None:
    maven_copy(
        [
            ("org.mongodb.spark", "mongo-spark-connector_2.13", MONGO_SPARK_VERSION),
            ("org.postgresql", "postgresql", POSTGRES_JDBC_VERSION),
            ("com.microsoft.sqlserver", "mssql-jdbc", MSSQL_JDBC_VERSION),
        ],
        home,
        transitive=True,  # the connector's MongoDB driver and bson; Spark itself is a provided dependency
    )


def _build_ferretdb(home: Path) -> None:
    env = _go_env(home)
    with tempfile.TemporaryDirectory(prefix="clinops-ferretdb-") as tmp:
        wrapper = Path(tmp)
        _run(["go", "mod", "init", "clinops.io/ferretdb"], env=env, cwd=wrapper)
        shutil.copyfile(FERRETDB_MAIN, wrapper / "main.go")
        _run(["go", "get", f"github.com/FerretDB/FerretDB@{FERRETDB_VERSION}"], env=env, cwd=wrapper)
        _run(["go", "mod", "tidy"], env=env, cwd=wrapper)
        (home / "bin").mkdir(parents=True, exist_ok=True)
        _run(["go", "build", "-ldflags", "-s -w", "-o", str(home / "bin" / "ferretdb"), "."], env=env, cwd=wrapper)


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    return found


def _build_feast_reference(home: Path) -> None:
    venv = home / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(venv)}
    env.pop("UV_FROZEN", None)
    _run([_uv(), "venv", "--quiet", "--python", "python3.11", str(venv)], env=env)
    _run(
        [_uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-r", str(FEAST_REQUIREMENTS)],
        env=env,
    )


def _build_evidently_reference(home: Path) -> None:
    venv = home / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(venv)}
    env.pop("UV_FROZEN", None)
    _run([_uv(), "venv", "--quiet", "--python", "python3.11", str(venv)], env=env)
    _run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(EVIDENTLY_REQUIREMENTS),
        ],
        env=env,
    )


def _requirements_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def _go_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GOBIN": str(home / "bin"),
        "GOFLAGS": "-trimpath -buildvcs=false",
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",
    }


def _go_install(home: Path, package: str, ldflags: str = "-s -w") -> None:
    _run(["go", "install", "-ldflags", ldflags, package], env=_go_env(home))


def _module_source(module: str, version: str) -> dict[str, str]:
    """``go mod download -json``: where the module proxy's copy of a module lies (Dir, GoMod, ...)."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        env=_go_env(Path(tempfile.gettempdir())),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ToolError(f"go mod download {module}@{version} failed:\n{proc.stdout}{proc.stderr}")
    info: dict[str, str] = json.loads(proc.stdout)
    return info


def kubernetes_staging_replaces(gomod: str, version: str) -> dict[str, str]:
    """The staging modules k8s.io/kubernetes replaces with local paths, mapped to their published version.

    ``v1.34.4`` publishes its staging modules as ``v0.34.4``.
    """
    published = "v0." + version.removeprefix("v1.")
    names = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", gomod, flags=re.MULTILINE)
    return {name: published for name in names}


def kubernetes_ldflags(version: str) -> str:
    """Version stamps that ``--version`` and clients read."""
    major, minor = version.removeprefix("v").split(".")[:2]
    stamps = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{key}={value}" for key, value in stamps.items()]
    return " ".join(flags)


KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def _build_kubernetes(home: Path) -> None:
    _build_kubernetes_commands(home, KUBERNETES_COMMANDS)


def _build_kubernetes_commands(home: Path, commands: tuple[str, ...]) -> None:
    source = _module_source("k8s.io/kubernetes", KUBERNETES_VERSION)
    replaces = kubernetes_staging_replaces(Path(source["GoMod"]).read_text(), KUBERNETES_VERSION)
    env = _go_env(home)
    with tempfile.TemporaryDirectory(prefix="clinops-k8s-") as tmp:
        wrapper = Path(tmp)
        _run(["go", "mod", "init", "clinops.io/toolchain"], env=env, cwd=wrapper)
        edits = [f"-require=k8s.io/kubernetes@{KUBERNETES_VERSION}"]
        edits += [f"-replace={name}={name}@{v}" for name, v in replaces.items()]
        _run(["go", "mod", "edit", *edits], env=env, cwd=wrapper)
        packages = [f"k8s.io/kubernetes/cmd/{cmd}" for cmd in commands]
        # Each package at the pinned version: a bare `go get pkg` would upgrade to the latest release.
        _run(["go", "get", *(f"{pkg}@{KUBERNETES_VERSION}" for pkg in packages)], env=env, cwd=wrapper)
        (home / "bin").mkdir(parents=True, exist_ok=True)
        for pkg in packages:  # one at a time: each link needs a few GB
            _run(
                ["go", "build", "-ldflags", kubernetes_ldflags(KUBERNETES_VERSION), "-o", f"{home / 'bin'}/", pkg],
                env=env,
                cwd=wrapper,
            )


ETCD_MAIN = """package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""


def _build_kubelet(home: Path) -> None:
    """The kubelet of the real local node, built like the control plane (same wrapper module recipe)."""
    _build_kubernetes_commands(home, ("kubelet",))


PAUSE_MAIN = """package main

// The pod sandbox's first process: holds the pod's namespaces, reaps orphans, exits on SIGINT/SIGTERM.
import (
\t"os"
\t"os/signal"
\t"syscall"
)

func main() {
\tsignals := make(chan os.Signal, 8)
\tsignal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
\tfor sig := range signals {
\t\tif sig != syscall.SIGCHLD {
\t\t\tos.Exit(0)
\t\t}
\t\tfor {
\t\t\tif pid, _ := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); pid <= 0 {
\t\t\t\tbreak
\t\t\t}
\t\t}
\t}
}
"""


def _build_pause(home: Path) -> None:
    env = _go_env(home)
    with tempfile.TemporaryDirectory(prefix="clinops-pause-") as tmp:
        wrapper = Path(tmp)
        _run(["go", "mod", "init", "clinops.io/pause"], env=env, cwd=wrapper)
        (wrapper / "main.go").write_text(PAUSE_MAIN)
        (home / "bin").mkdir(parents=True, exist_ok=True)
        _run(["go", "build", "-ldflags", "-s -w", "-o", str(home / "bin" / "pause"), "."], env=env, cwd=wrapper)


def _build_etcd(home: Path) -> None:
    env = _go_env(home)
    with tempfile.TemporaryDirectory(prefix="clinops-etcd-") as tmp:
        wrapper = Path(tmp)
        _run(["go", "mod", "init", "clinops.io/etcd"], env=env, cwd=wrapper)
        (wrapper / "main.go").write_text(ETCD_MAIN)
        _run(["go", "get", f"go.etcd.io/etcd/server/v3@{ETCD_VERSION}"], env=env, cwd=wrapper)
        _run(["go", "mod", "tidy"], env=env, cwd=wrapper)
        (home / "bin").mkdir(parents=True, exist_ok=True)
        _run(["go", "build", "-ldflags", "-s -w", "-o", str(home / "bin" / "etcd"), "."], env=env, cwd=wrapper)


def go_mod_replaces(gomod: str) -> dict[str, str]:
    """A go.mod's module-to-module ``replace`` directives as ``{old: new@version}`` (local paths left out)."""
    found: dict[str, str] = {}
    for old, new, version in re.findall(
        r"^\s*(?:replace\s+)?([\w./-]+)\s*=>\s*([\w./-]+)\s+(v[\w.+-]+)\s*$", gomod, re.M
    ):
        found[old] = f"{new}@{version}"
    return found


def _build_spark_operator(home: Path) -> None:
    """The spark-operator binary (controller and webhook: ``spark-operator controller|webhook start``).

    Its go.mod pins the k8s.io modules with ``replace`` directives, so ``go install`` refuses it: a
    wrapper module requires it and repeats those directives, as for the control plane."""
    source = _module_source(SPARK_OPERATOR_MODULE, SPARK_OPERATOR_VERSION)
    replaces = go_mod_replaces(Path(source["GoMod"]).read_text())
    env = _go_env(home)
    package = f"{SPARK_OPERATOR_MODULE}/cmd/operator"
    with tempfile.TemporaryDirectory(prefix="clinops-spark-operator-") as tmp:
        wrapper = Path(tmp)
        _run(["go", "mod", "init", "clinops.io/spark-operator"], env=env, cwd=wrapper)
        edits = [f"-require={SPARK_OPERATOR_MODULE}@{SPARK_OPERATOR_VERSION}"]
        edits += [f"-replace={old}={new}" for old, new in replaces.items()]
        _run(["go", "mod", "edit", *edits], env=env, cwd=wrapper)
        _run(["go", "get", f"{package}@{SPARK_OPERATOR_VERSION}"], env=env, cwd=wrapper)
        (home / "bin").mkdir(parents=True, exist_ok=True)
        # `spark-operator version` reads its version where its own Makefile stamps it.
        stamps = "-s -w " + " ".join(
            f"-X k8s.io/component-base/version.{k}={v}"
            for k, v in (
                ("gitVersion", SPARK_OPERATOR_VERSION),
                ("gitTreeState", "clean"),
                ("buildDate", "1970-01-01T00:00:00Z"),
            )
        )
        _run(
            ["go", "build", "-ldflags", stamps, "-o", str(home / "bin" / "spark-operator"), package],
            env=env,
            cwd=wrapper,
        )


def _build_kwok(home: Path) -> None:
    _go_install(home, f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}")


def _build_helm(home: Path) -> None:
    _go_install(
        home,
        f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}",
        f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
    )


def _build_crictl(home: Path) -> None:
    _go_install(home, f"sigs.k8s.io/cri-tools/cmd/crictl@{CRICTL_VERSION}")


def _build_kubeconform(home: Path) -> None:
    _go_install(home, f"github.com/yannh/kubeconform/cmd/kubeconform@{KUBECONFORM_VERSION}")


def _build_kubernetes_schemas(home: Path) -> None:
    from clinops_devstack import schemas

    schemas.build_kubernetes_schemas(home)


def _kubernetes_validate_version() -> str:
    try:
        return metadata.version("kubernetes-validate")
    except metadata.PackageNotFoundError:
        return "missing"


SPARK_APPLICATION_CRD = "sparkoperator.k8s.io_sparkapplications.yaml"


def _fetch_spark_operator_crds(home: Path) -> None:
    source = _module_source(SPARK_OPERATOR_MODULE, SPARK_OPERATOR_VERSION)
    bases = Path(source["Dir"]) / "config" / "crd" / "bases"
    for crd in sorted(bases.glob("*.yaml")):
        shutil.copyfile(crd, home / crd.name)


PROMETHEUS_RULE_CRD = "monitoring.coreos.com_prometheusrules.yaml"


def _fetch_prometheus_operator_crds(home: Path) -> None:
    source = _module_source("github.com/prometheus-operator/prometheus-operator", PROMETHEUS_OPERATOR_VERSION)
    shutil.copyfile(
        Path(source["Dir"]) / "example" / "prometheus-operator-crd" / PROMETHEUS_RULE_CRD, home / PROMETHEUS_RULE_CRD
    )


KAFKA = Tool("kafka", KAFKA_VERSION, f"libs/kafka_2.13-{KAFKA_VERSION}.jar", _build_kafka)
MINIO = Tool("minio", MINIO_VERSION, "bin/minio", _build_minio)
SPARK_S3A = Tool(
    "spark-s3a",
    f"hadoop{HADOOP_VERSION}-sdk{AWS_SDK_BUNDLE_VERSION}",
    f"hadoop-aws-{HADOOP_VERSION}.jar",
    _build_spark_s3a,
)
FEAST_REFERENCE = Tool(
    "feast-reference",
    f"{FEAST_VERSION}-{_requirements_digest(FEAST_REQUIREMENTS)}",
    "venv/bin/python",
    _build_feast_reference,
)
EVIDENTLY_REFERENCE = Tool(
    "evidently-reference",
    f"{EVIDENTLY_VERSION}-{_requirements_digest(EVIDENTLY_REQUIREMENTS)}",
    "venv/bin/python",
    _build_evidently_reference,
)
SPARK_SOURCES = Tool(
    "spark-sources",
    f"mongo{MONGO_SPARK_VERSION}-pg{POSTGRES_JDBC_VERSION}-mssql{MSSQL_JDBC_VERSION}",
    f"mongo-spark-connector_2.13-{MONGO_SPARK_VERSION}.jar",
    _build_spark_sources,
)
FERRETDB = Tool("ferretdb", FERRETDB_VERSION, "bin/ferretdb", _build_ferretdb)
ETCD = Tool("etcd", ETCD_VERSION, "bin/etcd", _build_etcd)
KUBERNETES = Tool("kubernetes", KUBERNETES_VERSION, "bin/kubectl", _build_kubernetes)
# The real local node's kubelet (a Tool of its own: adding it does not rebuild the control plane).
KUBELET = Tool("kubelet", KUBERNETES_VERSION, "bin/kubelet", _build_kubelet)
PAUSE_VERSION = "1"  # bump when PAUSE_MAIN changes
PAUSE = Tool("pause", PAUSE_VERSION, "bin/pause", _build_pause)
CRICTL = Tool("crictl", CRICTL_VERSION, "bin/crictl", _build_crictl)
KWOK = Tool("kwok", KWOK_VERSION, "bin/kwok", _build_kwok)
HELM = Tool("helm", HELM_VERSION, "bin/helm", _build_helm)
KUBECONFORM = Tool("kubeconform", KUBECONFORM_VERSION, "bin/kubeconform", _build_kubeconform)
# Offline JSON schemas of the built-in kinds for kubeconform, from the kubernetes-validate wheel.
KUBERNETES_SCHEMAS = Tool(
    "kubernetes-schemas",
    f"v1.34.0-kv{_kubernetes_validate_version()}",
    "v1.34.0-local-strict/deployment-apps-v1.json",
    _build_kubernetes_schemas,
)
SPARK_OPERATOR_CRDS = Tool(
    "spark-operator-crds", SPARK_OPERATOR_VERSION, SPARK_APPLICATION_CRD, _fetch_spark_operator_crds
)
# The real spark-operator (controller and mutating webhook) of the local cluster's real Spark stages.
SPARK_OPERATOR = Tool("spark-operator", SPARK_OPERATOR_VERSION, "bin/spark-operator", _build_spark_operator)
PROMETHEUS_OPERATOR_CRDS = Tool(
    "prometheus-operator-crds", PROMETHEUS_OPERATOR_VERSION, PROMETHEUS_RULE_CRD, _fetch_prometheus_operator_crds
)
TOOLS: tuple[Tool, ...] = (
    KAFKA,
    MINIO,
    SPARK_S3A,
    SPARK_SOURCES,
    FERRETDB,
    SPARK_OPERATOR_CRDS,
    PROMETHEUS_OPERATOR_CRDS,
    KUBERNETES_SCHEMAS,
    KUBECONFORM,
    KWOK,
    ETCD,
    HELM,
    KUBERNETES,
    KUBELET,
    PAUSE,
    CRICTL,
    SPARK_OPERATOR,
    FEAST_REFERENCE,
    EVIDENTLY_REFERENCE,
)


def feast_python(cache: Path) -> Path:
    """The Python of the pinned Feast environment (the point-in-time join's reference)."""
    return require(FEAST_REFERENCE, cache) / "venv" / "bin" / "python"


def evidently_python(cache: Path) -> Path:
    """The Python of the pinned Evidently environment (the monitor's drift reference)."""
    return require(EVIDENTLY_REFERENCE, cache) / "venv" / "bin" / "python"


def spark_s3a_jars(cache: Path) -> list[Path]:
    """The jars that give Spark ``s3a://`` (pass them as ``spark.jars``)."""
    home = SPARK_S3A.home(cache)
    jars = sorted(home.glob("*.jar"))
    if not SPARK_S3A.ready(cache) or not jars:
        raise ToolError(f"Spark s3a jars missing in {home}: run `make setup`")
    return jars


def require(tool: Tool, cache: Path) -> Path:
    """The tool's cache folder, or a clear error that says how to get it."""
    if not tool.ready(cache):
        raise ToolError(f"{tool.name} {tool.version} is not built in {tool.home(cache)}: run `make setup`")
    return tool.home(cache)
