"""Pinned infrastructure built by ``make setup``, cached outside the repository by version.

Each ``Tool`` knows where its pinned build lives in the cache, whether it is there, and how to
build it from the package registries (Maven Central, the Go module proxy). A second ``make setup``
finds everything present and only checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
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


def _requirements_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


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
TOOLS: tuple[Tool, ...] = (KAFKA, MINIO, SPARK_S3A, FEAST_REFERENCE)


def feast_python(cache: Path) -> Path:
    """The Python of the pinned Feast environment (the point-in-time join's reference)."""
    return require(FEAST_REFERENCE, cache) / "venv" / "bin" / "python"


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
